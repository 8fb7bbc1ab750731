// Drives the control room at /admin in headless Chromium like an operator: a shopper who logs
// in there is told it is for admins only; an admin sees a sale in progress move (purchases made
// during the test change the stock and the counts on the page), and retries a dead letter from
// the page. The dead letter is made the way a real one is: PostgreSQL refuses the order (a CHECK
// constraint on this run's own database) until the worker gives it up.
//
// Needs a running system at BASE_URL (scripts/browser-test.sh starts one), ADMIN_EMAIL /
// ADMIN_PASSWORD of its bootstrap admin, and DATABASE_URL of its database (psql is used on it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS_DIR || "test-results";

async function api(path, { token, body, method = body ? "POST" : "GET", headers = {} } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: "Bearer " + token } : {}), ...headers },
    body: body && JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const login = async (email, password) => (await api("/v1/auth/login", { body: { email, password } })).accessToken;
const minutes = (n) => new Date(Date.now() + n * 60_000).toISOString();
const psql = (sql) => execFileSync("psql", [process.env.DATABASE_URL, "-qc", sql], { stdio: "pipe" });

async function createSale(admin, name, totalStock, perUserLimit) {
  return api("/v1/admin/sales", {
    token: admin,
    body: { name, priceCents: 1999, currency: "EUR", totalStock, perUserLimit, startsAt: minutes(-5), endsAt: minutes(60) },
  });
}

async function buy(token, saleId, quantity) {
  return api(`/v1/sales/${saleId}/orders`, { token, body: { quantity }, headers: { "Idempotency-Key": crypto.randomUUID() } });
}

async function logInOnPage(page, email, password) {
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await page.getByTestId("login").click();
  await page.getByTestId("who").filter({ hasText: email }).waitFor();
}

test("the control room: admins only, a sale in progress moves, a dead letter is retried from the page", { timeout: 180_000 }, async () => {
  const admin = await login(process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
  const suffix = Math.random().toString(36).slice(2, 8);
  const hostile = `<img src=x onerror="window.__pwned=1"> Night runner ${suffix}`;
  const sale = await createSale(admin, hostile, 50, 5);
  const doomed = await createSale(admin, `Refused drop ${suffix}`, 10, 2);
  const shoppers = [];
  for (const i of [1, 2, 3]) {
    const who = { email: `op-${i}-${suffix}@example.com`, password: "control-room-Pa55word" };
    await api("/v1/auth/register", { body: who });
    shoppers.push({ ...who, token: await login(who.email, who.password) });
  }

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  try {
    // Not logged in, then a shopper: the page says it is for admins, and shows nothing else.
    await page.goto(base + "/admin");
    await page.getByTestId("gate").filter({ hasText: "Admins only" }).waitFor();
    await logInOnPage(page, shoppers[0].email, shoppers[0].password);
    await page.getByTestId("gate").filter({ hasText: `Admins only: ${shoppers[0].email} is a shopper account` }).waitFor();
    assert.ok(await page.locator("#room").isHidden(), "the room is hidden from a shopper");
    await page.locator("#logout").click();
    await page.getByTestId("login-form").waitFor();

    // The admin logs in on the same page.
    await logInOnPage(page, process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
    const row = page.locator(`#sale-${sale.id}`);
    await row.getByTestId("remaining").filter({ hasText: "50 of 50" }).waitFor();
    assert.equal(await row.locator(".name").textContent(), hostile, "a sale's name is shown as text");
    const accepted = page.getByTestId("total-accepted");
    await accepted.filter({ hasText: /in all/ }).waitFor();
    const count = async () => Number((await accepted.textContent()).match(/(\d+) in all/)[1]);
    const before = await count();

    // A sale in progress: three shoppers buy, in two rounds; the stock and the counts move.
    await Promise.all(shoppers.map((s) => buy(s.token, sale.id, 2)));
    await row.getByTestId("remaining").filter({ hasText: "44 of 50" }).waitFor({ timeout: 15_000 });
    await page.waitForFunction((n) => {
      const text = document.querySelector('[data-testid="total-accepted"]')?.textContent || "";
      return Number((text.match(/(\d+) in all/) || [])[1]) === n;
    }, before + 3, { timeout: 15_000 });
    await Promise.all(shoppers.map((s) => buy(s.token, sale.id, 1)));
    await row.getByTestId("remaining").filter({ hasText: "41 of 50" }).waitFor({ timeout: 15_000 });
    await page.waitForFunction((n) => {
      const text = document.querySelector('[data-testid="total-accepted"]')?.textContent || "";
      return Number((text.match(/(\d+) in all/) || [])[1]) === n;
    }, before + 6, { timeout: 15_000 });
    // The charts drew a line; the p99 and the time to durable have a value.
    await page.waitForFunction(() => document.querySelectorAll("#rate-chart polyline.c-accepted").length > 0 &&
      document.querySelectorAll("#latency-chart polyline").length > 0, null, { timeout: 15_000 });
    await page.getByTestId("durable-count").filter({ hasText: /^[1-9]\d*$/ }).waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId("durable-p99").textContent(), /\d+(\.\d)? (ms|s)$/);
    assert.match(await page.getByTestId("queue-pending").textContent(), /^\d+$/);
    await row.getByTestId("drift").filter({ hasText: /^(–|0)$/ }).waitFor();

    // Traffic goes on while the dead letter is made (the screenshot shows a sale in progress):
    // a purchase every 250 ms, turning to refusals at the shoppers' limit.
    let traffic = true;
    const stream = (async () => {
      for (let i = 0; traffic; i++) {
        await buy(shoppers[i % shoppers.length].token, sale.id, 1).catch(() => {});
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    // A dead letter: PostgreSQL refuses this sale's orders, the worker gives the order up after
    // its attempts, and it shows on the page with a retry button.
    psql(`ALTER TABLE orders ADD CONSTRAINT control_room_refuses CHECK (sale_id <> '${doomed.id}') NOT VALID`);
    let order;
    try {
      order = await buy(shoppers[0].token, doomed.id, 2);
      await page.locator(`#dead-${order.id}`).waitFor({ timeout: 60_000 });
    } finally {
      psql("ALTER TABLE orders DROP CONSTRAINT IF EXISTS control_room_refuses");
    }
    const dead = page.locator(`#dead-${order.id}`);
    assert.match(await dead.textContent(), new RegExp(`2 × Refused drop ${suffix} · order ${order.id} · 3 attempts`));
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}/control-room.png`, fullPage: true });
    traffic = false;
    await stream;

    await dead.getByTestId("retry").click();
    await page.getByTestId("notice").filter({ hasText: `Order ${order.id} is queued again: pending.` }).waitFor();
    await dead.waitFor({ state: "detached", timeout: 15_000 });
    for (let i = 0; ; i++) {
      const o = await api(`/v1/orders/${order.id}`, { token: shoppers[0].token });
      if (o.status === "confirmed") break;
      assert.ok(i < 100, `the retried order is ${o.status}, not confirmed`);
      await new Promise((r) => setTimeout(r, 200));
    }

    assert.equal(await page.evaluate(() => window.__pwned ?? null), null, "no handler of a server value ran");
    assert.deepEqual(errors, [], "no script errors or CSP violations on the page");
  } finally {
    await browser.close();
  }
});
