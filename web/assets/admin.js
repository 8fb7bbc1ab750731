// Flashsale control room (/admin), plain JavaScript over the admin API. The live sales and
// their stock come from GET /v1/sales and then the live events on the WebSocket; purchases per
// second by outcome, the p99 of their answer time, the queue, the time to durable and drift from
// GET /v1/admin/overview each second, whose counts are running totals: the page takes the
// difference of two reads, as Prometheus' rate() and histogram_quantile() do. Dead letters come
// from GET /v1/admin/dead-letters and are retried with POST .../retry. The API refuses every
// admin call to anyone but an admin; the page says so before it tries.

const WINDOW = 60; // seconds of history the charts show
const OUTCOMES = ["accepted", "replayed", "sold_out", "limit", "not_active", "rate_limited", "rejected", "failed"];
const state = {
  me: null,
  sales: new Map(),
  drift: new Map(), // sale id -> units
  socket: null,
  reads: [], // the last WINDOW + 1 overviews, oldest first
  points: [], // per second: { rates: {outcome: n/s}, p99: seconds or null }
  timers: [],
  refreshing: null,
};
const $ = (sel) => document.querySelector(sel);
const svgNS = "http://www.w3.org/2000/svg";

// api calls the API with the session cookies; on a 401 it rotates the session once with the
// HTTP-only refresh cookie (the access cookie lasts 15 minutes) and asks again.
async function api(path, options = {}) {
  let res = await send(path, options);
  if (res.status === 401 && !path.startsWith("/v1/auth/") && await refreshSession()) res = await send(path, options);
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((body && (body.detail || body.title)) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

function send(path, options) {
  return fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
}

function refreshSession() {
  state.refreshing ||= send("/v1/auth/refresh", { method: "POST", body: "{}" })
    .then((res) => res.ok, () => false)
    .finally(() => setTimeout(() => { state.refreshing = null; }, 0));
  return state.refreshing;
}

function notice(text, kind = "error") {
  const p = $("#notice");
  p.textContent = text || "";
  p.className = text ? kind : "";
}

// el builds an element; every value from the server is set as text, never parsed as HTML.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset || {});
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function seconds(s) {
  if (s == null) return "–";
  if (s < 1) return number.format(s * 1000) + " ms";
  return number.format(s) + " s";
}

// quantile is histogram_quantile over the observations between two reads of a cumulative
// histogram (null when there were none): linear within the bucket the rank falls in.
function quantile(q, before, after) {
  const total = after.count - (before ? before.count : 0);
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (let i = 0; i < after.buckets.length; i++) {
    const b = after.buckets[i];
    const n = b.count - (before ? before.buckets[i]?.count ?? 0 : 0);
    if (n >= rank) return lower + (b.le - lower) * ((rank - below) / Math.max(n - below, 1e-9));
    lower = b.le;
    below = n;
  }
  return lower; // above the highest bound
}

// ---- the session ------------------------------------------------------------------------

async function loadMe() {
  try {
    state.me = await api("/v1/me");
  } catch {
    state.me = null;
  }
  const admin = state.me?.role === "admin";
  $("#login").hidden = !!state.me;
  $("#who").hidden = $("#logout").hidden = !state.me;
  if (state.me) $("#who").textContent = "Logged in as " + state.me.email;
  const gate = $("#gate");
  gate.hidden = admin;
  gate.textContent = !state.me
    ? "Admins only: log in with an admin account to see the control room."
    : `Admins only: ${state.me.email} is a ${state.me.role} account. Log out and log in with an admin account.`;
  $("#room").hidden = !admin;
  if (!admin) stop();
  else if (state.timers.length === 0) start();
  else connect(); // a reconnection: the charts keep their history
}

function start() {
  state.reads = [];
  state.points = [];
  loadSales().catch((e) => notice(e.message));
  connect();
  const every = (ms, fn) => { fn(); state.timers.push(setInterval(fn, ms)); };
  // A session that ended (logged out elsewhere, or no longer an admin) turns the page back to
  // its login; anything else is shown and tried again.
  const failed = (e) => { if (e.status === 401 || e.status === 403) loadMe(); else notice(e.message); };
  every(1000, () => pollOverview().catch(failed));
  every(2000, () => loadDeadLetters().catch(failed));
}

function stop() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  const socket = state.socket;
  state.socket = null;
  socket?.close();
}

// ---- live sales ---------------------------------------------------------------------------

async function loadSales() {
  const body = await api("/v1/sales?limit=50");
  state.sales = new Map(body.items.filter((s) => s.status !== "ended").map((s) => [s.id, s]));
  $("#sales").replaceChildren();
  for (const s of state.sales.values()) renderSale(s);
}

const statusLabels = { scheduled: "Upcoming", active: "On sale", sold_out: "Sold out", ended: "Ended" };

function renderSale(sale) {
  let row = document.getElementById("sale-" + sale.id);
  if (!row) {
    row = el("tr", { id: "sale-" + sale.id, dataset: { testid: "sale" } },
      el("td", { className: "name" }), el("td", { className: "state" }),
      el("td", {}, el("progress")), el("td", { className: "remaining", dataset: { testid: "remaining" } }),
      el("td", { className: "drift", dataset: { testid: "drift" } }));
    $("#sales").append(row);
  }
  row.querySelector(".name").textContent = sale.name;
  row.querySelector(".state").textContent = statusLabels[sale.status] || sale.status;
  const bar = row.querySelector("progress");
  bar.max = sale.totalStock;
  bar.value = Math.max(0, sale.remaining);
  row.querySelector(".remaining").textContent = `${Math.max(0, sale.remaining)} of ${sale.totalStock}`;
  const drift = state.drift.get(sale.id);
  const cell = row.querySelector(".drift");
  cell.textContent = drift == null ? "–" : (drift > 0 ? "+" : "") + drift;
  cell.className = "drift" + (drift ? " drift-bad" : "");
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
  const socket = new WebSocket(url);
  const old = state.socket;
  state.socket = socket;
  old?.close();
  socket.onopen = () => { $("#live").textContent = "live"; loadSales().catch((e) => notice(e.message)); };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    $("#live").textContent = "reconnecting…";
    // The socket is authenticated by the access cookie it is opened with: loadMe renews it first.
    setTimeout(() => { if (state.socket === socket) loadMe(); }, 1000);
  };
  socket.onmessage = (msg) => onEvent(JSON.parse(msg.data));
}

function onEvent(ev) {
  const sale = state.sales.get(ev.saleId);
  switch (ev.type) {
    case "sale:started":
    case "sale:ended":
      if (!sale) { loadSales().catch(() => {}); return; }
      sale.status = ev.data.status;
      if (sale.status === "sold_out") sale.remaining = 0;
      break;
    case "inventory:updated":
      if (!sale) return;
      Object.assign(sale, { remaining: ev.data.remaining, totalStock: ev.data.totalStock, status: ev.data.status });
      break;
    default:
      return;
  }
  renderSale(sale);
}

// ---- the figures ----------------------------------------------------------------------------

async function pollOverview() {
  const now = await api("/v1/admin/overview");
  const prev = state.reads[state.reads.length - 1];
  state.reads.push(now);
  if (state.reads.length > WINDOW + 1) state.reads.shift();
  if (prev) {
    const dt = Math.max((Date.parse(now.measuredAt) - Date.parse(prev.measuredAt)) / 1000, 0.001);
    const rates = {};
    for (const p of now.purchases) {
      const before = prev.purchases.find((q) => q.outcome === p.outcome)?.total ?? 0;
      rates[p.outcome] = Math.max(0, p.total - before) / dt;
    }
    state.points.push({ rates, p99: quantile(0.99, prev.purchaseLatency, now.purchaseLatency) });
    if (state.points.length > WINDOW) state.points.shift();
  }
  renderFigures(now);
}

function renderFigures(now) {
  $("#measured").textContent = "figures of " + dateTime.format(new Date(now.measuredAt));
  const latest = state.points[state.points.length - 1];
  const legend = $("#outcomes");
  legend.replaceChildren(...OUTCOMES.map((o) => {
    const total = now.purchases.find((p) => p.outcome === o)?.total ?? 0;
    const rate = latest ? latest.rates[o] ?? 0 : 0;
    return el("li", { dataset: { testid: "outcome-" + o } },
      el("span", { className: "swatch c-" + o }), o.replace("_", " "),
      el("span", { className: "n", textContent: number.format(rate) + "/s", dataset: { testid: "rate-" + o } }),
      el("span", { className: "total", textContent: " · " + total + " in all", dataset: { testid: "total-" + o } }));
  }));
  drawChart($("#rate-chart"), OUTCOMES.map((o) => ({ cls: "c-" + o, values: state.points.map((p) => p.rates[o] ?? 0) })),
    (v) => number.format(v) + "/s");
  drawChart($("#latency-chart"), [{ cls: "c-p99", values: state.points.map((p) => p.p99) }], seconds);
  const first = state.reads[0];
  const since = first === now ? null : first;
  document.querySelector('[data-testid="p99"]').textContent = seconds(quantile(0.99, since?.purchaseLatency, now.purchaseLatency));

  const q = now.queue;
  const queue = (id, text) => { document.querySelector(`[data-testid="queue-${id}"]`).textContent = q.measured ? text : "unreadable"; };
  queue("pending", String(q.pending));
  queue("active", String(q.active));
  queue("retry", String(q.retry));
  queue("age", seconds(q.oldestPendingSeconds));

  const d = now.durable;
  document.querySelector('[data-testid="durable-p99"]').textContent =
    d.measured ? seconds(quantile(0.99, since?.durable.latency, d.latency)) : "–";
  document.querySelector('[data-testid="durable-count"]').textContent = d.measured ? String(d.latency.count) : "–";
  $("#durable-note").textContent = d.measured
    ? "p99 over the last minute, from acceptance to the order in PostgreSQL."
    : "Measured by the worker, which does not run in this process: see its /metrics.";

  state.drift = new Map(now.drift.map((x) => [x.saleId, x.units]));
  for (const s of state.sales.values()) renderSale(s);
}

// drawChart draws each series as a line over the last WINDOW seconds, the newest at the right;
// a null value (nothing measured that second) breaks its line.
function drawChart(chart, series, format) {
  const w = 600, h = 160, top = 16, bottom = 144;
  const max = Math.max(...series.flatMap((s) => s.values.filter((v) => v != null)), 0) * 1.1 || 1;
  const x = (i, n) => w - (n - 1 - i) * (w / WINDOW);
  const y = (v) => bottom - (v / max) * (bottom - top);
  const nodes = [
    svg("line", { class: "axis", x1: 0, y1: bottom, x2: w, y2: bottom }),
    svg("line", { class: "axis", x1: 0, y1: top, x2: w, y2: top }),
    svg("text", { class: "label", x: 4, y: top - 4 }, format(max)),
    svg("text", { class: "label", x: 4, y: h - 2 }, WINDOW + " s ago"),
    svg("text", { class: "label", x: w - 24, y: h - 2 }, "now"),
  ];
  for (const s of series) {
    let run = [];
    const flush = () => { if (run.length) nodes.push(svg("polyline", { class: s.cls, points: run.join(" ") })); run = []; };
    s.values.forEach((v, i) => {
      if (v == null) { flush(); return; }
      run.push(`${x(i, s.values.length).toFixed(1)},${y(v).toFixed(1)}`);
    });
    flush();
  }
  chart.replaceChildren(...nodes);
}

// ---- dead letters ---------------------------------------------------------------------------

async function loadDeadLetters() {
  const body = await api("/v1/admin/dead-letters?limit=50");
  $('[data-testid="dead-count"]').textContent = String(body.items.length);
  const list = $("#dead-letters");
  if (body.items.length === 0) {
    list.replaceChildren(el("li", { className: "empty", textContent: "None: every accepted order was written." }));
    return;
  }
  list.replaceChildren(...body.items.map(deadLetter));
}

function deadLetter(d) {
  const sale = state.sales.get(d.saleId);
  const retry = el("button", { type: "button", textContent: "Retry", dataset: { testid: "retry" } });
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try {
      const order = await api(`/v1/admin/dead-letters/${d.orderId}/retry`, { method: "POST" });
      notice(`Order ${order.id} is queued again: ${order.status}.`, "ok");
    } catch (e) {
      notice(e.message);
    }
    await loadDeadLetters().catch(() => {});
  });
  const when = d.failedAt ? " · failed " + dateTime.format(new Date(d.failedAt)) : "";
  return el("li", { id: "dead-" + d.orderId, dataset: { testid: "dead-letter" } },
    el("span", { className: "what" },
      `${d.quantity} × ${sale ? sale.name : "sale " + d.saleId} · order ${d.orderId} · ${d.attempts} attempts${when}`,
      el("span", { className: "why", textContent: d.lastError })),
    retry);
}

// ---- the page -----------------------------------------------------------------------------

$("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  notice("");
  try {
    await api("/v1/auth/login", { method: "POST", body: JSON.stringify({ email: form.get("email"), password: form.get("password") }) });
    await loadMe();
  } catch (err) {
    notice(err.message);
  }
});

$("#logout").addEventListener("click", async () => {
  await api("/v1/auth/logout", { method: "POST" }).catch(() => {});
  notice("");
  await loadMe();
});

await loadMe();
