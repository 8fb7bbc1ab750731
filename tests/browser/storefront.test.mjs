// Drives the storefront in headless Chromium: log in, wait for the sale to start, buy, see the
// stock drop and the order confirm, see the button disable at sold-out. Everything on the page
// is driven by live events; the test only clicks and reads, like a shopper.
//
// Needs a running system at BASE_URL (scripts/browser-test.sh starts one) and ADMIN_EMAIL /
// ADMIN_PASSWORD of its bootstrap admin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS_DIR || "test-results";

async function api(path, { token, body, method = body ? "POST" : "GET", headers = {} } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      "Content-Type": "application/json",
      ...(token ? { Authorization: "Bearer " + token } : {}),
      ...headers,
    },
    body: body && JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function login(email, password) {
  return (await api("/v1/auth/login", { body: { email, password } })).accessToken;
}

test("a shopper buys in a live sale, driven by events", { timeout: 120_000 }, async () => {
  const admin = await login(process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
  // The sale opens in an hour; once the page has shown it as scheduled, the admin moves the
  // start to a moment from now (the scheduler fires sale:started at the new time), so no
  // machine is too slow for the test.
  const startsAt = new Date(Date.now() + 3_600_000);
  const name = "Browser drop " + Math.random().toString(36).slice(2, 8);
  const sale = await api("/v1/admin/sales", {
    token: admin,
    body: {
      name, priceCents: 4999, currency: "EUR", totalStock: 2, perUserLimit: 1,
      startsAt: startsAt.toISOString(), endsAt: new Date(startsAt.getTime() + 3_600_000).toISOString(),
    },
  });
  const suffix = Math.random().toString(36).slice(2, 8);
  const shopper = { email: `ada-${suffix}@example.com`, password: "storefront-Pa55word" };
  const rival = { email: `bob-${suffix}@example.com`, password: "storefront-Pa55word" };
  await api("/v1/auth/register", { body: shopper });
  await api("/v1/auth/register", { body: rival });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(base + "/");
    const card = page.locator(`#sale-${sale.id}`);
    const button = card.getByTestId("buy");
    await card.waitFor();
    assert.equal(await card.getAttribute("data-status"), "scheduled");
    assert.match(await card.getByTestId("when").innerText(), /starts in (\d+h )?(\d+m )?\d+s/);
    assert.ok(await button.isDisabled(), "buy is disabled before the start");

    await page.fill('input[name="email"]', shopper.email);
    await page.fill('input[name="password"]', shopper.password);
    await page.click('#login button[type="submit"]');
    await page.getByTestId("who").filter({ hasText: shopper.email }).waitFor();
    assert.ok(await button.isDisabled(), "still disabled: the sale has not started");

    await api(`/v1/admin/sales/${sale.id}`, {
      token: admin, method: "PATCH", body: { startsAt: new Date(Date.now() + 2_000).toISOString() },
    });

    // sale:started enables the button.
    await page.waitForFunction((id) => document.querySelector(`#sale-${id}`)?.dataset.status === "active",
      sale.id, { timeout: 30_000 });
    await button.waitFor({ state: "visible" });
    assert.ok(await button.isEnabled(), "buy is enabled once the sale started");

    await button.click();
    // inventory:updated lowers the stock; order:confirmed turns the order confirmed.
    await card.getByTestId("stock").filter({ hasText: "1 of 2 left" }).waitFor({ timeout: 30_000 });
    await page.getByTestId("order-status").filter({ hasText: "confirmed" }).waitFor({ timeout: 30_000 });

    // Someone else buys the last unit: the page sees the sale sell out.
    const rivalToken = await login(rival.email, rival.password);
    await api(`/v1/sales/${sale.id}/orders`, {
      token: rivalToken, body: { quantity: 1 }, headers: { "Idempotency-Key": "rival-" + suffix },
    });
    await card.getByTestId("stock").filter({ hasText: "0 of 2 left" }).waitFor({ timeout: 30_000 });
    await page.waitForFunction((id) => document.querySelector(`#sale-${id}`)?.dataset.status === "sold_out",
      sale.id, { timeout: 30_000 });
    assert.ok(await button.isDisabled(), "buy is disabled once sold out");

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}/storefront.png`, fullPage: true });
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await browser.close();
  }
});

test("hostile sale names are shown as text, never as markup", { timeout: 120_000 }, async () => {
  const admin = await login(process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
  const suffix = Math.random().toString(36).slice(2, 8);
  // Each would add an element with an id starting "pwn" (and run a handler, were the CSP not
  // there) if the page parsed it as HTML anywhere.
  const hostile = [
    `<b id="pwn-sale">X</b><img src=x id="pwn-img" onerror="window.__pwned=1"> ${suffix}`,
    `"><svg id="pwn-svg" onload="window.__pwned=2"></svg>&amp;<!-- ${suffix}`,
  ];
  const startsAt = new Date(Date.now() - 60_000);
  const sales = [];
  for (const name of hostile) {
    sales.push(await api("/v1/admin/sales", {
      token: admin,
      body: {
        name, priceCents: 100, currency: "EUR", totalStock: 5, perUserLimit: 1,
        startsAt: startsAt.toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    }));
  }
  const shopper = { email: `eve-${suffix}@example.com`, password: "storefront-Pa55word" };
  await api("/v1/auth/register", { body: shopper });
  // One order before the page opens (listed from GET /v1/orders), one bought on the page (the
  // 202, then order:confirmed).
  const token = await login(shopper.email, shopper.password);
  const first = await api(`/v1/sales/${sales[0].id}/orders`, {
    token, body: { quantity: 1 }, headers: { "Idempotency-Key": "hostile-" + suffix },
  });
  for (let i = 0; (await api(`/v1/orders/${first.id}`, { token })).status !== "confirmed"; i++) {
    assert.ok(i < 300, "the first order is confirmed");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(base + "/");
    await page.locator(`#sale-${sales[1].id}`).waitFor();
    await page.fill('input[name="email"]', shopper.email);
    await page.fill('input[name="password"]', shopper.password);
    await page.click('#login button[type="submit"]');
    await page.getByTestId("who").filter({ hasText: shopper.email }).waitFor();
    await page.locator(`#order-${first.id}`).waitFor();
    await page.locator(`#sale-${sales[1].id}`).getByTestId("buy").click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="order"]').length === 2 &&
      [...document.querySelectorAll('[data-testid="order-status"]')].every((s) => s.textContent === "confirmed"),
    null, { timeout: 30_000 });

    const found = await page.evaluate((ids) => ({
      injected: [...document.querySelectorAll('[id^="pwn"], #sales b, #sales img, #sales svg, #orders b, #orders img, #orders svg')]
        .map((el) => el.outerHTML),
      pwned: window.__pwned ?? null,
      titles: ids.map((id) => document.querySelector(`#sale-${id} h3`)?.textContent),
      orders: [...document.querySelectorAll('[data-testid="order"]')].map((li) => li.textContent),
    }), sales.map((s) => s.id));
    assert.deepEqual(found.injected, [], "no element was made of a server value");
    assert.equal(found.pwned, null, "no handler of a server value ran");
    assert.deepEqual(found.titles, hostile, "sale names are shown exactly, as text");
    for (const name of hostile) {
      assert.ok(found.orders.some((text) => text.includes(name)), `an order shows ${name} as text: ${found.orders}`);
    }
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await browser.close();
  }
});
