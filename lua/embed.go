// Package lua embeds the Redis scripts that keep inventory and sessions consistent. Each script
// touches the keys of one sale (sharing the sale's {hash tag}) or one session only, so it also
// runs on Redis Cluster.
package lua

import _ "embed"

var (
	// Reserve checks and takes stock for one purchase.
	//go:embed reserve.lua
	Reserve string
	// Release gives a failed order's stock back.
	//go:embed release.lua
	Release string
	// Rereserve takes a failed order's stock again.
	//go:embed rereserve.lua
	Rereserve string
	// Confirm marks a reservation durable.
	//go:embed confirm.lua
	Confirm string
	// SyncSale creates or changes a sale's inventory.
	//go:embed sync_sale.lua
	SyncSale string
	// GCRA limits a client's request rate.
	//go:embed gcra.lua
	GCRA string
	// Fence refuses a sale's purchases until a time.
	//go:embed fence.lua
	Fence string
	// Adopt takes the stock of an accepted order whose reservation the store lost.
	//go:embed adopt.lua
	Adopt string
	// Restore recreates a lost sale inventory from its durable orders, fenced.
	//go:embed restore.lua
	Restore string
	// Give moves stock out of a shard of a sharded sale, recording the transfer.
	//go:embed give.lua
	Give string
	// Take adds a transfer's stock to the shard it was given to, once.
	//go:embed take.lua
	Take string
	// Discard undoes a reservation that must leave no trace.
	//go:embed discard.lua
	Discard string
	// Lookup reads the answer a sale holds for an idempotency key.
	//go:embed lookup.lua
	Lookup string
	// RotateRefresh swaps a session's refresh token, revoking the session on reuse.
	//go:embed rotate_refresh.lua
	RotateRefresh string
	// RoomPlace joins a sale's waiting room or reads a place in it.
	//go:embed room_place.lua
	RoomPlace string
	// RoomAdmit runs an admission pass over a sale's waiting room.
	//go:embed room_admit.lua
	RoomAdmit string
	// RoomRestore puts back a waiting room's admissions that Redis lost.
	//go:embed room_restore.lua
	RoomRestore string
	// RoomUnspend gives back an admission spent by a purchase that then took nothing.
	//go:embed room_unspend.lua
	RoomUnspend string
	// RoomUse spends a shopper's admission for a purchase.
	//go:embed room_use.lua
	RoomUse string
)
