package testutil

import "github.com/google/uuid"

func newV7() uuid.UUID { return uuid.Must(uuid.NewV7()) }
