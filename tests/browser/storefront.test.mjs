// Drives the storefront in headless Chromium like a shopper: register on the page, pick a
// quantity within the sale's limits, buy, watch each order go from pending to confirmed, read why
// "Buy" is disabled (not logged in, not started, ended, sold out, limit reached) and the
// countdowns to a sale's start and end. Everything on the page is driven by live events; the
// test only clicks, types and reads.
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

const chromiumArgs = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function openBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: chromiumArgs });
}

const suffixOf = () => Math.random().toString(36).slice(2, 8);

async function createSale(admin, { name, priceCents = 4999, totalStock, perUserLimit, startsAt, endsAt }) {
  return api("/v1/admin/sales", {
    token: admin,
    body: {
      name, priceCents, currency: "EUR", totalStock, perUserLimit,
      startsAt: startsAt.toISOString(), endsAt: endsAt.toISOString(),
    },
  });
}

async function buyByAPI(token, saleId, quantity, key) {
  return api(`/v1/sales/${saleId}/orders`, { token, body: { quantity }, headers: { "Idempotency-Key": key } });
}

// logInOnPage uses the page's own form, as a shopper does.
async function logInOnPage(page, { email, password }) {
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await page.getByTestId("login").click();
  await page.getByTestId("who").filter({ hasText: email }).waitFor();
}

// watchOrderStatuses records, in the page, every status each order's line has shown, in order.
async function watchOrderStatuses(page) {
  await page.evaluate(() => {
    window.__orderStatuses = {};
    const record = () => {
      for (const li of document.querySelectorAll('[data-testid="order"]')) {
        const status = li.querySelector('[data-testid="order-status"]')?.textContent;
        const seen = (window.__orderStatuses[li.id] ||= []);
        if (status && seen[seen.length - 1] !== status) seen.push(status);
      }
    };
    new MutationObserver(record).observe(document.getElementById("orders"),
      { subtree: true, childList: true, characterData: true });
    record();
  });
}

const minutes = (n) => new Date(Date.now() + n * 60_000);

test("a shopper registers on the page, picks a quantity within the limits, and sees each order confirm", { timeout: 120_000 }, async () => {
  const admin = await login(process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
  const suffix = suffixOf();
  const runner = await createSale(admin, {
    name: "Trail runner GTX", priceCents: 12900, totalStock: 40, perUserLimit: 3, startsAt: minutes(-5), endsAt: minutes(60),
  });
  const wallet = await createSale(admin, {
    name: "Leather card wallet", priceCents: 3900, totalStock: 2, perUserLimit: 5, startsAt: minutes(-5), endsAt: minutes(45),
  });
  const beanie = await createSale(admin, {
    name: "Merino beanie", priceCents: 2500, totalStock: 1, perUserLimit: 1, startsAt: minutes(-5), endsAt: minutes(30),
  });
  const grinder = await createSale(admin, {
    name: "Espresso grinder", priceCents: 18900, totalStock: 25, perUserLimit: 1, startsAt: minutes(120), endsAt: minutes(180),
  });
  // Someone else has bought already: two runners and the only beanie.
  const rival = { email: `bob-${suffix}@example.com`, password: "storefront-Pa55word" };
  await api("/v1/auth/register", { body: rival });
  const rivalToken = await login(rival.email, rival.password);
  await buyByAPI(rivalToken, runner.id, 2, "rival-runner-" + suffix);
  await buyByAPI(rivalToken, beanie.id, 1, "rival-beanie-" + suffix);

  const browser = await openBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A CSP violation is reported on the console ("Refused to ..."); an API answer of 4xx, which
  // the page shows as text, is logged there too ("Failed to load resource") and is no error.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  try {
    await page.goto(base + "/");
    const card = (sale) => page.locator(`#sale-${sale.id}`);
    const reason = (sale) => card(sale).getByTestId("buy-reason");
    await card(grinder).waitFor();

    // The product area: name, price, description and an image slot.
    assert.equal(await card(runner).locator("h3").innerText(), "Trail runner GTX");
    assert.match(await card(runner).getByTestId("price").innerText(), /129[.,]00/);
    assert.match(await card(runner).getByTestId("description").innerText(), /limited drop of 40 .*at most 3 per customer/);
    const image = card(runner).locator(".product-image");
    assert.equal(await image.getAttribute("role"), "img");
    assert.equal(await image.getAttribute("aria-label"), "Photo of Trail runner GTX (not provided)");
    // Countdowns: to the end of an active sale, to the start of an upcoming one.
    assert.match(await card(runner).getByTestId("when").innerText(), /^Ends in (59m \d+s|1h 0m 0s)$/);
    assert.match(await card(grinder).getByTestId("when").innerText(), /^Starts in (1h 59m \d+s|2h 0m 0s)$/);
    // Why "Buy" is disabled, as text.
    await card(beanie).getByTestId("stock").filter({ hasText: "0 of 1 left" }).waitFor();
    assert.equal(await reason(beanie).innerText(), "Sold out: every unit has been bought.");
    assert.match(await reason(grinder).innerText(), /^Not on sale yet: it opens in (1h 59m \d+s|2h 0m 0s)\.$/);
    assert.equal(await reason(runner).innerText(), "Log in or create an account to buy.");
    for (const sale of [runner, wallet, beanie, grinder]) {
      assert.ok(await card(sale).getByTestId("buy").isDisabled(), `buy is disabled for ${sale.name}`);
    }

    // Register through the page: the account is made and logged in.
    const shopper = { email: `ada-${suffix}@example.com`, password: "storefront-Pa55word" };
    await page.fill('input[name="email"]', shopper.email);
    await page.fill('input[name="password"]', "short");
    await page.getByTestId("register").click();
    await page.getByTestId("notice").filter({ hasText: /password/i }).waitFor();
    await page.fill('input[name="password"]', shopper.password);
    await page.getByTestId("register").click();
    await page.getByTestId("who").filter({ hasText: shopper.email }).waitFor();
    assert.match(await page.getByTestId("notice").innerText(), /account is ready/);
    await reason(runner).filter({ hasText: "You can buy up to 3 now" }).waitFor();

    // The quantity is bounded by the per-user limit (3 runners) and by the stock (2 wallets).
    const runnerQty = card(runner).getByTestId("quantity");
    assert.equal(await runnerQty.getAttribute("max"), "3");
    assert.equal(await card(wallet).getByTestId("quantity").getAttribute("max"), "2");
    await card(wallet).getByTestId("quantity").fill("4");
    assert.equal(await card(wallet).getByTestId("quantity").inputValue(), "2", "no more than the stock");
    await runnerQty.fill("7");
    assert.equal(await runnerQty.inputValue(), "3", "no more than the per-user limit");
    await runnerQty.fill("2");
    assert.match(await card(runner).getByTestId("buy").innerText(), /^Buy 2 · .*258[.,]00/);

    // Each order shows pending, then confirmed.
    await watchOrderStatuses(page);
    await card(runner).getByTestId("buy").click();
    await card(runner).getByTestId("stock").filter({ hasText: "36 of 40 left" }).waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => {
      const statuses = Object.values(window.__orderStatuses);
      return statuses.length === 1 && statuses[0].at(-1) === "confirmed";
    }, null, { timeout: 30_000 });
    assert.deepEqual(Object.values(await page.evaluate(() => window.__orderStatuses)), [["pending", "confirmed"]]);

    // One more is all the limit leaves; after it, the limit is the reason.
    await reason(runner).filter({ hasText: "You can buy up to 1 now (limit 3 per customer, you have 2)." }).waitFor();
    assert.equal(await runnerQty.getAttribute("max"), "1");
    assert.equal(await runnerQty.inputValue(), "1");
    await card(runner).getByTestId("buy").click();
    await reason(runner).filter({ hasText: "You have reached the limit of 3 per customer for this sale." })
      .waitFor({ timeout: 30_000 });
    assert.ok(await card(runner).getByTestId("buy").isDisabled(), "buy is disabled at the limit");
    await page.waitForFunction(() => {
      const statuses = Object.values(window.__orderStatuses);
      return statuses.length === 2 && statuses.every((s) => s.at(-1) === "confirmed");
    }, null, { timeout: 30_000 });
    assert.deepEqual(Object.values(await page.evaluate(() => window.__orderStatuses)),
      [["pending", "confirmed"], ["pending", "confirmed"]]);

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}/storefront.png`, fullPage: true });
    assert.deepEqual(errors, [], "no script errors or CSP violations on the page");
  } finally {
    await browser.close();
  }
});

test("a sale of one is bought out and shows sold out (after the session was renewed); a sale that reaches its end shows ended", { timeout: 120_000 }, async () => {
  const admin = await login(process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
  const suffix = suffixOf();
  const single = await createSale(admin, {
    name: "Signed print " + suffix, totalStock: 1, perUserLimit: 1, startsAt: minutes(-1), endsAt: minutes(30),
  });
  const closing = await createSale(admin, {
    name: "Last call " + suffix, totalStock: 10, perUserLimit: 2, startsAt: minutes(-1), endsAt: minutes(30),
  });
  const shopper = { email: `cy-${suffix}@example.com`, password: "storefront-Pa55word" };
  await api("/v1/auth/register", { body: shopper });

  const browser = await openBrowser();
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(base + "/");
    const card = (sale) => page.locator(`#sale-${sale.id}`);
    await card(closing).waitFor();
    await logInOnPage(page, shopper);
    // The access cookie lasts 15 minutes: without it the page renews the session with the
    // HTTP-only refresh cookie, and the shopper stays logged in.
    await page.context().clearCookies({ name: "fs_access" });
    await page.reload();
    await page.getByTestId("who").filter({ hasText: shopper.email }).waitFor();
    await card(single).getByTestId("buy-reason").filter({ hasText: "You can buy up to 1 now" }).waitFor();
    assert.ok(await card(single).getByTestId("buy").isEnabled());

    await card(single).getByTestId("buy").click();
    await page.waitForFunction((id) => document.querySelector(`#sale-${id}`)?.dataset.status === "sold_out",
      single.id, { timeout: 30_000 });
    assert.equal(await card(single).getByTestId("stock").innerText(), "0 of 1 left");
    assert.equal(await card(single).getByTestId("buy-reason").innerText(), "Sold out: every unit has been bought.");
    assert.equal(await card(single).getByTestId("status").textContent(), "Sold out");
    assert.ok(await card(single).getByTestId("buy").isDisabled(), "buy is disabled once sold out");

    // The end moves to 8 s from now (the page reads the new end on reload): the countdown runs
    // down and sale:ended closes the sale.
    await api(`/v1/admin/sales/${closing.id}`, {
      token: admin, method: "PATCH", body: { endsAt: new Date(Date.now() + 8_000).toISOString() },
    });
    await page.reload();
    await card(closing).getByTestId("when").filter({ hasText: /^Ends in [0-8]s$/ }).waitFor({ timeout: 10_000 });
    await page.waitForFunction((id) => document.querySelector(`#sale-${id}`)?.dataset.status === "ended",
      closing.id, { timeout: 30_000 });
    assert.equal(await card(closing).getByTestId("buy-reason").innerText(), "This sale has ended.");
    assert.match(await card(closing).getByTestId("when").innerText(), /^Ended /);
    assert.ok(await card(closing).getByTestId("buy").isDisabled(), "buy is disabled once ended");
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await browser.close();
  }
});

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

  const browser = await openBrowser();
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(base + "/");
    const card = page.locator(`#sale-${sale.id}`);
    const button = card.getByTestId("buy");
    await card.waitFor();
    assert.equal(await card.getAttribute("data-status"), "scheduled");
    assert.match(await card.getByTestId("when").innerText(), /^Starts in (59m \d+s|1h 0m 0s)$/);
    assert.ok(await button.isDisabled(), "buy is disabled before the start");
    assert.match(await card.getByTestId("buy-reason").innerText(), /^Not on sale yet: it opens in (59m \d+s|1h 0m 0s)\.$/);

    await logInOnPage(page, shopper);
    assert.ok(await button.isDisabled(), "still disabled: the sale has not started");

    await api(`/v1/admin/sales/${sale.id}`, {
      token: admin, method: "PATCH", body: { startsAt: new Date(Date.now() + 2_000).toISOString() },
    });

    // sale:started enables the button.
    await page.waitForFunction((id) => document.querySelector(`#sale-${id}`)?.dataset.status === "active",
      sale.id, { timeout: 30_000 });
    await button.waitFor({ state: "visible" });
    assert.ok(await button.isEnabled(), "buy is enabled once the sale started");
    assert.match(await card.getByTestId("when").innerText(), /^Ends in (1h 59m \d+s|2h 0m 0s)$/);

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

  const browser = await openBrowser();
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(base + "/");
    await page.locator(`#sale-${sales[1].id}`).waitFor();
    await logInOnPage(page, shopper);
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

test("a shopper waits in a sale's waiting room, is admitted with a countdown, buys once; the others see it close", { timeout: 120_000 }, async () => {
  const admin = await login(process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
  const suffix = suffixOf();
  const startsAt = new Date(Date.now() + 8_000);
  const sale = await api("/v1/admin/sales", {
    token: admin,
    body: {
      name: "Limited vinyl " + suffix, priceCents: 3500, currency: "EUR", totalStock: 1, perUserLimit: 1,
      startsAt: startsAt.toISOString(), endsAt: minutes(30).toISOString(),
      waitingRoom: { enabled: true, admitPerSecond: 10, admissionTtl: 60 },
    },
  });
  // Another shopper joined the room before us: one of us is admitted, the other waits.
  const rival = { email: `room-rival-${suffix}@example.com`, password: "storefront-Pa55word" };
  await api("/v1/auth/register", { body: rival });
  const rivalToken = await login(rival.email, rival.password);
  await api(`/v1/sales/${sale.id}/queue`, { token: rivalToken, method: "POST" });

  const shopper = { email: `room-${suffix}@example.com`, password: "storefront-Pa55word" };
  await api("/v1/auth/register", { body: shopper });
  const browser = await openBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(base + "/");
    await logInOnPage(page, shopper);
    const card = page.locator(`#sale-${sale.id}`);
    const room = card.getByTestId("room");
    assert.match(await room.innerText(), /has a waiting room: join it/);
    await card.getByTestId("join-room").click();
    await room.filter({ hasText: /drawn at random at the start/ }).waitFor();
    assert.ok(await card.getByTestId("buy").isDisabled(), "buy is disabled while waiting");

    // At the start one of the two is admitted (the draw decides which) and the stock of one is
    // covered: the other is told it is likely sold out, then that the room closed.
    const rivalFirst = await (async () => {
      for (let i = 0; i < 100; i++) {
        const st = await api(`/v1/sales/${sale.id}/queue`, { token: rivalToken });
        if (st.state === "admitted") return true;
        if (await room.getAttribute("data-state") === "admitted") return false;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error("nobody was admitted");
    })();
    if (rivalFirst) {
      await room.filter({ hasText: /Likely sold out/ }).waitFor({ timeout: 10_000 });
      await buyByAPI(rivalToken, sale.id, 1, "room-rival-" + suffix);
      await room.filter({ hasText: /The room closed: sold out/ }).waitFor({ timeout: 10_000 });
      assert.ok(await card.getByTestId("buy").isDisabled(), "buy stays disabled in a closed room");
    } else {
      await room.filter({ hasText: /You are admitted: buy within \d+s\./ }).waitFor({ timeout: 10_000 });
      await card.getByTestId("buy").click();
      await page.getByTestId("order").first().waitFor();
      await room.filter({ hasText: /used your admission/ }).waitFor();
      // The room closes at the worker's next admission pass after the sell-out.
      let rivalState;
      for (let i = 0; i < 50; i++) {
        rivalState = await api(`/v1/sales/${sale.id}/queue`, { token: rivalToken });
        if (rivalState.state === "closed") break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(rivalState.state, "closed");
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
