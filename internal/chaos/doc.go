// Package chaos is the fault-injection suite behind `flashsale chaos`: for each fault it starts
// private PostgreSQL and Redis servers and the system as child processes, drives a bounded load
// over the real HTTP API, injects the fault, and after convergence counts every broken
// invariant (lost orders, oversell, second orders per key, buyers above the limit, stock drift,
// events missing or applied twice per consumer group) with the load test's verifier.
package chaos
