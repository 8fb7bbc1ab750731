// Opens the API docs (Swagger UI at /docs, embedded in the binary) in headless Chromium: every
// operation renders, the page runs under its CSP without a violation, and "Try it out" calls the
// running server (a read and a state-changing POST) with a bearer token given through the
// Authorize button.
//
// Needs a running system at BASE_URL (scripts/browser-test.sh starts one) and ADMIN_EMAIL /
// ADMIN_PASSWORD of its bootstrap admin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS_DIR || "test-results";

test("Swagger UI at /docs renders the API and tries it out with a bearer token", { timeout: 60_000 }, async () => {
  const login = await fetch(base + "/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: process.env.ADMIN_EMAIL, password: process.env.ADMIN_PASSWORD }),
  });
  assert.equal(login.status, 200);
  const { accessToken } = await login.json();

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A CSP violation is reported on the console as an error ("Refused to ...").
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(base) && !r.url().startsWith("data:")) outside.push(r.url()); });
  try {
    const res = await page.goto(base + "/docs");
    assert.equal(res.status(), 200);
    assert.match(res.headers()["content-security-policy"], /script-src 'self';/);

    // Every operation renders, with its summary.
    await page.getByText("Buy from a live sale", { exact: true }).waitFor({ timeout: 30_000 });
    const operations = await page.locator(".opblock").count();
    assert.ok(operations >= 20, `${operations} operations rendered, want >= 20`);
    assert.equal(await page.locator("#operations-orders-placeOrder").count(), 1);

    // The server entry names the origin the page was served from, not a fixed port.
    const server = await page.locator(".servers select option").first().innerText();
    assert.ok(server.includes(`(${new URL(base).origin})`), `server entry ${JSON.stringify(server)} names ${base}`);

    // Authorize with the bearer token.
    await page.locator(".auth-wrapper button.authorize").click();
    const bearer = page.locator(".auth-container").filter({ hasText: "bearerAuth" });
    await bearer.locator("input").fill(accessToken);
    await bearer.getByRole("button", { name: "Apply credentials" }).click();
    await bearer.getByRole("button", { name: "Remove authorization" }).waitFor();
    await page.locator(".dialog-ux button.close-modal").click();

    // Try it out: GET /v1/me against this server answers the admin.
    const me = page.locator("#operations-auth-getMe");
    await me.locator(".opblock-summary").click();
    await me.locator("button.try-out__btn").click();
    await me.locator("button.execute").click();
    const live = me.locator(".live-responses-table");
    await live.locator(".response-col_status").filter({ hasText: "200" }).waitFor({ timeout: 15_000 });
    assert.ok((await live.innerText()).includes(`"email": "${process.env.ADMIN_EMAIL}"`), "the answer is the admin");
    assert.ok((await me.locator(".request-url").innerText()).split("\n").includes(base + "/v1/me"),
      "the request went to this server");

    // A state-changing call from the page passes the cross-origin protection (same origin).
    const ticket = page.locator("#operations-auth-issueWebSocketTicket");
    await ticket.locator(".opblock-summary").click();
    await ticket.locator("button.try-out__btn").click();
    await ticket.locator("button.execute").click();
    await ticket.locator(".live-responses-table .response-col_status").filter({ hasText: "201" }).waitFor({ timeout: 15_000 });
    await ticket.locator(".opblock-summary").click(); // collapse it again for the screenshot

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}/docs.png`, fullPage: true });
    assert.deepEqual(errors, [], "no script errors or CSP violations on the page");
    assert.deepEqual(outside, [], "no request leaves the server's origin");
  } finally {
    await browser.close();
  }
});
