// Flashsale storefront: plain JavaScript over the public API. Sales come from GET /v1/sales;
// everything after that (start, stock, end, the buyer's own orders) arrives as live events
// on the WebSocket at /v1/ws, authenticated by the HTTP-only session cookie.

const state = { me: null, sales: new Map(), orders: new Map(), socket: null };
const $ = (sel) => document.querySelector(sel);

async function api(path, options = {}) {
  const res = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((body && (body.detail || body.title)) || res.statusText);
    err.status = res.status;
    err.problem = body;
    throw err;
  }
  return { body, headers: res.headers };
}

function notice(text) { $("#notice").textContent = text || ""; }

// el builds an element. Every value from the server is set as text (textContent, properties,
// dataset), never parsed as HTML, so a sale named "<img onerror=...>" shows as those characters.
// web/embed_test.go refuses the HTML-parsing sinks in the storefront's scripts.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset || {});
  node.append(...children);
  return node;
}

function noOrders() { return el("li", { className: "empty", textContent: "No orders yet." }); }

function money(cents, currency) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

function countdown(sale) {
  const ms = new Date(sale.startsAt) - Date.now();
  if (ms <= 0) return "starting…";
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return "starts in " + (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
}

function canBuy(sale) { return state.me && state.me.role === "shopper" && sale.status === "active"; }

function renderSale(sale) {
  let li = document.getElementById("sale-" + sale.id);
  if (!li) {
    const button = el("button", { className: "buy", textContent: "Buy 1", dataset: { testid: "buy" } });
    button.addEventListener("click", () => buy(sale.id));
    li = el("li", { id: "sale-" + sale.id, className: "sale", dataset: { testid: "sale" } },
      el("h3"),
      el("div", { className: "meta" },
        el("span", { className: "status" }), el("span", { className: "price" }),
        el("span", { className: "stock", dataset: { testid: "stock" } }),
        el("span", { className: "when", dataset: { testid: "when" } })),
      button);
    $("#sales").appendChild(li);
  }
  li.dataset.status = sale.status;
  li.querySelector("h3").textContent = sale.name;
  const status = li.querySelector(".status");
  status.textContent = sale.status.replace("_", " ");
  status.className = "status " + sale.status;
  li.querySelector(".price").textContent = money(sale.priceCents, sale.currency);
  li.querySelector(".stock").textContent = `${sale.remaining} of ${sale.totalStock} left`;
  li.querySelector(".when").textContent = sale.status === "scheduled" ? countdown(sale) : "";
  const button = li.querySelector("button");
  button.disabled = !canBuy(sale);
  button.title = !state.me ? "Log in to buy" : sale.status === "active" ? "" : sale.status.replace("_", " ");
}

function renderAll() { for (const sale of state.sales.values()) renderSale(sale); }

function renderOrder(order) {
  $("#orders .empty")?.remove();
  let li = document.getElementById("order-" + order.id);
  if (!li) {
    li = el("li", { id: "order-" + order.id, dataset: { testid: "order" } });
    $("#orders").prepend(li);
  }
  const sale = state.sales.get(order.saleId);
  li.replaceChildren(`${order.quantity} × ${sale ? sale.name : "sale"} — `,
    el("span", { className: "order-status " + order.status, textContent: order.status, dataset: { testid: "order-status" } }));
}

async function loadMe() {
  try {
    state.me = (await api("/v1/me")).body;
  } catch {
    state.me = null;
  }
  $("#login").hidden = !!state.me;
  $("#who").hidden = $("#logout").hidden = !state.me;
  if (state.me) $("#who").textContent = "Logged in as " + state.me.email;
}

async function loadSales() {
  const { body } = await api("/v1/sales?limit=50");
  state.sales = new Map(body.items.filter((s) => s.status !== "ended").map((s) => [s.id, s]));
  $("#sales").replaceChildren();
  renderAll();
}

async function loadOrders() {
  if (!state.me) return;
  const { body } = await api("/v1/orders?limit=20");
  for (const o of body.items.reverse()) { state.orders.set(o.id, o); renderOrder(o); }
}

function connect() {
  state.socket?.close();
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onopen = () => { $("#live").textContent = "live"; loadSales().catch((e) => notice(e.message)); };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    $("#live").textContent = "reconnecting…";
    setTimeout(connect, 1000);
  };
  socket.onmessage = (msg) => onEvent(JSON.parse(msg.data));
}

function onEvent(ev) {
  const sale = state.sales.get(ev.saleId);
  switch (ev.type) {
    case "sale:started":
    case "sale:ended":
      if (!sale) { loadSales(); return; }
      sale.status = ev.data.status;
      break;
    case "inventory:updated":
      if (!sale) return;
      sale.remaining = ev.data.remaining;
      sale.totalStock = ev.data.totalStock;
      sale.status = ev.data.status;
      break;
    case "order:confirmed": {
      const order = state.orders.get(ev.data.orderId) || { id: ev.data.orderId, saleId: ev.saleId, quantity: ev.data.quantity };
      order.status = ev.data.status;
      state.orders.set(order.id, order);
      renderOrder(order);
      return;
    }
  }
  if (sale) renderSale(sale);
}

async function buy(saleId) {
  notice("");
  const button = document.getElementById("sale-" + saleId).querySelector("button");
  button.disabled = true;
  try {
    const { body } = await api(`/v1/sales/${saleId}/orders`, {
      method: "POST",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify({ quantity: 1 }),
    });
    if (!state.orders.has(body.id) || state.orders.get(body.id).status === "pending") {
      state.orders.set(body.id, body);
      renderOrder(body);
    }
  } catch (e) {
    notice(e.message);
  } finally {
    const sale = state.sales.get(saleId);
    if (sale) renderSale(sale);
  }
}

$("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  notice("");
  try {
    await api("/v1/auth/login", { method: "POST", body: JSON.stringify({ email: form.get("email"), password: form.get("password") }) });
    await loadMe();
    await loadOrders();
    connect(); // again, now with the session cookie: the buyer's own events come too
  } catch (err) {
    notice(err.message);
  }
});

$("#logout").addEventListener("click", async () => {
  await api("/v1/auth/logout", { method: "POST" }).catch(() => {});
  state.orders.clear();
  $("#orders").replaceChildren(noOrders());
  await loadMe();
  renderAll();
  connect();
});

setInterval(() => {
  for (const sale of state.sales.values()) {
    if (sale.status === "scheduled") {
      const li = document.getElementById("sale-" + sale.id);
      if (li) li.querySelector(".when").textContent = countdown(sale);
    }
  }
}, 250);

await loadMe();
await loadSales().catch((e) => notice(e.message));
await loadOrders().catch(() => {});
connect();
