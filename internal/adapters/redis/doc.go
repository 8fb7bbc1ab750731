// Package redis implements the inventory, idempotency and sale-cache ports on Redis. Inventory
// changes go through the Lua scripts in lua/, one round trip and atomic each.
package redis
