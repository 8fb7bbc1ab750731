-- +goose Up
-- A sale's waiting room (issue "A fair, inventory-aware waiting room"): off by default; when on,
-- purchases need an admission, given at room_admit_per_second, each valid for
-- room_admission_ttl_seconds.
ALTER TABLE sales ADD COLUMN IF NOT EXISTS room_enabled boolean NOT NULL DEFAULT false;
ALTER TABLE sales ADD COLUMN IF NOT EXISTS room_admit_per_second integer NOT NULL DEFAULT 0
  CHECK (room_admit_per_second >= 0);
ALTER TABLE sales ADD COLUMN IF NOT EXISTS room_admission_ttl_seconds integer NOT NULL DEFAULT 0
  CHECK (room_admission_ttl_seconds >= 0);

CREATE INDEX IF NOT EXISTS sales_waiting_room ON sales (ends_at) WHERE room_enabled;

-- +goose Down
DROP INDEX IF EXISTS sales_waiting_room;
ALTER TABLE sales DROP COLUMN IF EXISTS room_admission_ttl_seconds;
ALTER TABLE sales DROP COLUMN IF EXISTS room_admit_per_second;
ALTER TABLE sales DROP COLUMN IF EXISTS room_enabled;
