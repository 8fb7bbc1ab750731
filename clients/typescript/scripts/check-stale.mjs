// Regenerates the types from ../../openapi/flashsale.yaml into a temporary file (exactly as
// `npm run generate` does) and compares it with the committed src/schema.ts: exit 1 if stale.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const committed = join(root, "src", "schema.ts");
const dir = mkdtempSync(join(tmpdir(), "flashsale-client-"));
const fresh = join(dir, "schema.ts");
try {
  const gen = spawnSync(join(root, "node_modules", ".bin", "openapi-typescript"),
    ["../../openapi/flashsale.yaml", "--output", fresh], { cwd: root, encoding: "utf8" });
  if (gen.status !== 0) {
    process.stderr.write(gen.stdout + gen.stderr);
    process.exit(1);
  }
  if (readFileSync(fresh, "utf8") === readFileSync(committed, "utf8")) {
    console.log("src/schema.ts is up to date with openapi/flashsale.yaml");
    process.exit(0);
  }
  const diff = spawnSync("diff", ["-u", committed, fresh], { encoding: "utf8" });
  process.stderr.write((diff.stdout || "").split("\n").slice(0, 80).join("\n") + "\n");
  console.error("src/schema.ts is stale: run `npm run generate` in clients/typescript and commit it.");
  process.exit(1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
