// Drives a LIVE Flashsale through the typed client: an admin opens a sale, a shopper registers,
// logs in, buys with an Idempotency-Key (and replays it), is refused past the per-user limit with a
// typed problem, and reads the order until it is confirmed.
//
// Needs a running system at BASE_URL and its bootstrap admin in ADMIN_EMAIL / ADMIN_PASSWORD
// (scripts/client-test.sh starts one).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { createFlashsaleClient, problemName, type Order } from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run scripts/client-test.sh, or point it at a running system`);
  return value;
}

test("a shopper buys in a live sale through the typed client", { timeout: 60_000 }, async () => {
  const base = env("BASE_URL");
  const anonymous = createFlashsaleClient(base);

  // The admin logs in and opens a sale that started a minute ago.
  const adminLogin = await anonymous.POST("/v1/auth/login", {
    body: { email: env("ADMIN_EMAIL"), password: env("ADMIN_PASSWORD") },
  });
  assert.equal(adminLogin.response.status, 200, JSON.stringify(adminLogin.error));
  assert.ok(adminLogin.data);
  assert.equal(adminLogin.data.tokenType, "Bearer");
  const admin = createFlashsaleClient(base, { accessToken: adminLogin.data.accessToken });

  const now = Date.now();
  const created = await admin.POST("/v1/admin/sales", {
    body: {
      name: "TypeScript drop " + randomUUID().slice(0, 8),
      priceCents: 2500,
      currency: "EUR",
      totalStock: 5,
      perUserLimit: 2,
      startsAt: new Date(now - 60_000).toISOString(),
      endsAt: new Date(now + 3_600_000).toISOString(),
    },
  });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  assert.ok(created.data);
  const sale = created.data;
  assert.equal(created.response.headers.get("Location"), `/v1/sales/${sale.id}`);
  assert.equal(sale.remaining, 5);

  // A shopper registers and logs in.
  const email = `ts-client-${randomUUID()}@example.com`;
  const password = "typescript-Pa55word";
  const registered = await anonymous.POST("/v1/auth/register", { body: { email, password } });
  assert.equal(registered.response.status, 201, JSON.stringify(registered.error));
  assert.equal(registered.data?.role, "shopper");

  const wrong = await anonymous.POST("/v1/auth/login", { body: { email, password: "not-the-password" } });
  assert.equal(wrong.response.status, 401);
  assert.ok(wrong.error);
  assert.equal(problemName(wrong.error), "invalid-credentials");

  const login = await anonymous.POST("/v1/auth/login", { body: { email, password } });
  assert.ok(login.data, JSON.stringify(login.error));
  let token: string | undefined = login.data.accessToken;
  const shopper = createFlashsaleClient(base, { accessToken: () => token });
  const me = await shopper.GET("/v1/me");
  assert.equal(me.data?.email, email);

  // The shopper buys two; the same key again replays the first answer.
  const saleId = sale.id;
  const key = randomUUID();
  const buy = (idempotencyKey: string, quantity: number) =>
    shopper.POST("/v1/sales/{saleId}/orders", {
      params: { path: { saleId }, header: { "Idempotency-Key": idempotencyKey } },
      body: { quantity },
    });
  const first = await buy(key, 2);
  assert.equal(first.response.status, 202, JSON.stringify(first.error));
  assert.ok(first.data);
  const accepted: Order = first.data;
  assert.equal(accepted.status, "pending");
  assert.equal(accepted.quantity, 2);
  assert.equal(first.response.headers.get("Location"), `/v1/orders/${accepted.id}`);

  const replay = await buy(key, 2);
  assert.equal(replay.response.status, 202);
  assert.equal(replay.response.headers.get("Idempotent-Replayed"), "true");
  assert.equal(replay.data?.id, accepted.id);

  // A third unit is over the per-user limit: a typed problem, not an exception.
  const over = await buy(randomUUID(), 1);
  assert.equal(over.response.status, 409);
  assert.ok(over.error);
  assert.equal(over.response.headers.get("Content-Type"), "application/problem+json");
  assert.equal(problemName(over.error), "purchase-limit-exceeded");
  assert.equal(over.error.status, 409);

  // The worker makes the order durable: read it until it is confirmed.
  const deadline = Date.now() + 30_000;
  let order: Order | undefined;
  for (;;) {
    const read = await shopper.GET("/v1/orders/{orderId}", { params: { path: { orderId: accepted.id } } });
    assert.equal(read.response.status, 200, JSON.stringify(read.error));
    order = read.data;
    if (order?.status !== "pending" || Date.now() > deadline) break;
    await sleep(100);
  }
  assert.equal(order?.status, "confirmed");
  assert.equal(order?.amountCents, 5000);
  assert.equal(order?.currency, "EUR");

  const orders = await shopper.GET("/v1/orders", { params: { query: { limit: 10 } } });
  assert.deepEqual(orders.data?.items.map((o) => o.id), [accepted.id]);

  const inventory = await anonymous.GET("/v1/sales/{saleId}/inventory", { params: { path: { saleId } } });
  assert.equal(inventory.data?.remaining, 3);
  assert.equal(inventory.data?.status, "active");

  // Without a token a secured operation is a 401 problem.
  token = undefined;
  const anonymousMe = await shopper.GET("/v1/me");
  assert.equal(anonymousMe.response.status, 401);
  assert.equal(anonymousMe.error && problemName(anonymousMe.error), "unauthenticated");
});
