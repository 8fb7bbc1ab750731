// Package asynq carries accepted orders to PostgreSQL through an Asynq (Redis) queue: the
// order:create task, the worker that runs it, and the dead-letter (archived) set.
package asynq
