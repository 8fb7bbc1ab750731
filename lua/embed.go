// Package lua embeds the Redis scripts that keep inventory consistent. Each script touches the
// keys of one sale only, all sharing the sale's {hash tag}, so it also runs on Redis Cluster.
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
)
