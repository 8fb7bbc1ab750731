// Flashsale storefront: plain JavaScript over the public API. Sales come from GET /v1/sales;
// everything after that (start, stock, end, the buyer's own orders) arrives as live events
// on the WebSocket at /v1/ws, authenticated by the HTTP-only session cookie. Pending orders are
// also polled, so an order confirms on the page even if its event was missed.

const state = {
  me: null,
  sales: new Map(),
  orders: new Map(),
  socket: null,
  quantity: new Map(), // sale id -> the quantity the shopper chose
  busy: new Set(), // sale ids with a purchase on its way
  limitHit: new Set(), // sale ids the server refused as over the buyer's limit
  liveAt: new Map(), // sale id -> when (performance.now()) a live event last changed it
  early: new Map(), // order id -> its order:confirmed, come before the answer to the purchase
  refreshing: null, // the session's rotation under way, if any
  // sale id -> the shopper's place in the sale's waiting room (GET /v1/sales/{id}/queue), with
  // seenAdmitted: the room's admissions count when the place was read (queue:position moves the
  // position by the admissions since).
  rooms: new Map(),
};
const $ = (sel) => document.querySelector(sel);
const problems = "https://flashsale.dev/problems/";

// api calls the API with the session cookies. The access cookie lasts 15 minutes: on a 401 the
// page rotates the session once with the HTTP-only refresh cookie and asks again.
async function api(path, options = {}) {
  let res = await send(path, options);
  if (res.status === 401 && !path.startsWith("/v1/auth/") && await refreshSession()) res = await send(path, options);
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((body && (body.detail || body.title)) || res.statusText);
    err.status = res.status;
    err.problem = body;
    throw err;
  }
  return { body, headers: res.headers };
}

function send(path, options) {
  return fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
}

// refreshSession rotates the session once for every request that met a 401 at the same time: a
// refresh token presented twice revokes the whole session.
function refreshSession() {
  state.refreshing ||= send("/v1/auth/refresh", { method: "POST", body: "{}" })
    .then((res) => res.ok, () => false)
    .finally(() => setTimeout(() => { state.refreshing = null; }, 0));
  return state.refreshing;
}

// notice tells the shopper what just happened: an error (red) or a confirmation (green).
function notice(text, kind = "error") {
  const p = $("#notice");
  p.textContent = text || "";
  p.className = text ? kind : "";
}

// el builds an element. Every value from the server is set as text (textContent, properties,
// dataset, ARIA attributes), never parsed as HTML, so a sale named "<img onerror=...>" shows as
// those characters. web/embed_test.go refuses the HTML-parsing sinks in the storefront's scripts.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, aria, ...rest } = props;
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset || {});
  for (const [name, value] of Object.entries(aria || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function noOrders() { return el("li", { className: "empty", textContent: "No orders yet." }); }

function money(cents, currency) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

// duration reads a time left as "1h 2m 3s", "2m 3s" or "3s".
function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
}

// timer is the countdown of a sale: to its start while scheduled, to its end while on sale.
function timer(sale) {
  const now = Date.now();
  switch (sale.status) {
    case "scheduled": {
      const ms = new Date(sale.startsAt) - now;
      return ms > 0 ? "Starts in " + duration(ms) : "Opening…";
    }
    case "active": {
      const ms = new Date(sale.endsAt) - now;
      return ms > 0 ? "Ends in " + duration(ms) : "Closing…";
    }
    case "sold_out": return "Sold out before the end";
    default: return "Ended " + dateTime.format(new Date(sale.endsAt));
  }
}

const statusLabels = { scheduled: "Upcoming", active: "On sale now", sold_out: "Sold out", ended: "Ended" };

// bought is how many units of the sale the shopper holds: their orders that did not fail.
function bought(saleId) {
  let n = 0;
  for (const o of state.orders.values()) if (o.saleId === saleId && o.status !== "failed") n += o.quantity;
  return n;
}

// maxQuantity is the most the shopper may buy now: what the per-user limit leaves them, and no
// more than is left.
function maxQuantity(sale) {
  if (state.limitHit.has(sale.id)) return 0;
  return Math.max(0, Math.min(sale.perUserLimit - bought(sale.id), sale.remaining));
}

const hasRoom = (sale) => !!sale.waitingRoom?.enabled;

// roomText says where the shopper stands in the sale's waiting room ("" if nowhere to say).
function roomText(sale) {
  if (!hasRoom(sale) || !state.me || state.me.role !== "shopper") return "";
  const place = state.rooms.get(sale.id);
  if (!place) return "This sale has a waiting room: join it, and buy once you are admitted.";
  switch (place.state) {
    case "waiting": {
      const position = Math.max(1, place.position - ((place.admittedNow ?? place.admitted) - place.admitted));
      const order = place.drawn ? `You are number ${position} in line` :
        `You are in the room (number ${position} so far: the order is drawn at random at the start)`;
      const eta = place.estimateSeconds != null ? `, about ${duration(place.estimateSeconds * 1000)} to go` : "";
      return order + eta + "." + (place.likelySoldOut ?
        " Likely sold out: the stock left is covered by those already admitted. You may keep your place." : "");
    }
    case "admitted": {
      const ms = new Date(place.admission?.expiresAt) - Date.now();
      return ms > 0 ? `You are admitted: buy within ${duration(ms)}.` : "Your admission has expired.";
    }
    case "used": return "You have used your admission to this sale.";
    case "expired": return "Your admission expired unused: an admission is given once.";
    case "closed": return "The room closed: sold out. You keep your place in case stock comes back.";
    default: return "";
  }
}

// roomBlocks says why the room keeps the shopper from buying ("" once admitted).
function roomBlocks(sale) {
  if (!hasRoom(sale)) return "";
  const place = state.rooms.get(sale.id);
  if (place?.state === "admitted" && new Date(place.admission?.expiresAt) > Date.now()) return "";
  return roomText(sale) || "This sale has a waiting room.";
}

// whyNot says, as text on the page, why the shopper cannot buy from the sale now; "" if they can.
function whyNot(sale) {
  if (sale.status === "ended") return "This sale has ended.";
  if (hasRoom(sale) && state.rooms.get(sale.id)?.state === "closed") return roomText(sale);
  if (sale.status === "sold_out" || sale.remaining <= 0) return "Sold out: every unit has been bought.";
  if (sale.status === "scheduled") {
    const ms = new Date(sale.startsAt) - Date.now();
    return "Not on sale yet: " + (ms > 0 ? "it opens in " + duration(ms) + "." : "opening now…");
  }
  if (!state.me) return "Log in or create an account to buy.";
  if (state.me.role !== "shopper") return "Admin accounts cannot buy: log in as a shopper.";
  if (maxQuantity(sale) === 0) return `You have reached the limit of ${sale.perUserLimit} per customer for this sale.`;
  if (state.busy.has(sale.id)) return "Placing your order…";
  return roomBlocks(sale);
}

// joinRoom takes (or reads back) the shopper's place in the sale's waiting room.
async function joinRoom(saleId) {
  notice("");
  try {
    setPlace(saleId, (await api(`/v1/sales/${saleId}/queue`, { method: "POST" })).body);
  } catch (e) {
    notice(e.message);
  }
}

function setPlace(saleId, place) {
  state.rooms.set(saleId, { ...place, admittedNow: place.admitted });
  const sale = state.sales.get(saleId);
  if (sale) renderSale(sale);
}

// pollRooms reads the shopper's places: the room's heartbeat (a silent place is given up) and the
// truth for a page that missed an event.
async function pollRooms() {
  for (const [saleId, place] of [...state.rooms]) {
    if (place.state !== "waiting" && place.state !== "closed" && place.state !== "admitted") continue;
    try {
      setPlace(saleId, (await api(`/v1/sales/${saleId}/queue`)).body);
    } catch (e) {
      if (e.status === 404) { state.rooms.delete(saleId); const s = state.sales.get(saleId); if (s) renderSale(s); }
    }
  }
}

// hueOf picks one of the image slot's six colours from the sale id, so a card keeps its colour.
function hueOf(id) {
  let h = 0x811c9dc5; // FNV-1a: ids made in the same millisecond differ only in a few characters
  for (const c of id) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return "hue-" + (h % 6);
}

function saleCard(sale) {
  const quantity = el("input", {
    type: "number", min: "1", value: "1", className: "quantity", inputMode: "numeric",
    id: "qty-" + sale.id, dataset: { testid: "quantity" },
  });
  // The field never holds more than the shopper may buy: a higher number becomes the maximum.
  quantity.addEventListener("input", () => {
    const current = state.sales.get(sale.id);
    if (quantity.value === "" || !current) return;
    const max = Math.max(1, maxQuantity(current));
    const n = Math.min(max, Math.max(1, Math.floor(Number(quantity.value)) || 1));
    if (String(n) !== quantity.value) quantity.value = String(n);
    state.quantity.set(sale.id, n);
    renderSale(current);
  });
  quantity.addEventListener("change", () => {
    if (quantity.value === "") quantity.value = "1";
    quantity.dispatchEvent(new Event("input"));
  });
  const button = el("button", {
    className: "buy", type: "button", dataset: { testid: "buy" }, aria: { "aria-describedby": "why-" + sale.id },
  });
  button.addEventListener("click", () => buy(sale.id));
  const join = el("button", { className: "join", type: "button", textContent: "Join the waiting room", hidden: true,
    dataset: { testid: "join-room" } });
  join.addEventListener("click", () => joinRoom(sale.id));
  return el("li", { id: "sale-" + sale.id, className: "sale", dataset: { testid: "sale" } },
    el("div", { className: "product-image " + hueOf(sale.id), aria: { role: "img" } },
      el("span", { className: "initial", aria: { "aria-hidden": "true" } }),
      el("span", { className: "image-note", textContent: "Product photo" })),
    el("div", { className: "product-body" },
      el("span", { className: "status", dataset: { testid: "status" } }),
      el("h3"),
      el("p", { className: "price", dataset: { testid: "price" } }),
      el("p", { className: "description", dataset: { testid: "description" } }),
      el("div", { className: "stock" },
        el("progress", { className: "stock-bar" }),
        el("span", { className: "stock-text", dataset: { testid: "stock" } })),
      el("p", { className: "when", dataset: { testid: "when" } }),
      el("p", { className: "room", dataset: { testid: "room" }, aria: { "aria-live": "polite" } }),
      join,
      el("div", { className: "buy-row" },
        el("label", { htmlFor: "qty-" + sale.id, textContent: "Quantity" }), quantity, button),
      el("p", { className: "reason", id: "why-" + sale.id, dataset: { testid: "buy-reason" } })));
}

function renderSale(sale) {
  let li = document.getElementById("sale-" + sale.id);
  if (!li) {
    li = saleCard(sale);
    $("#sales").appendChild(li);
  }
  li.dataset.status = sale.status;
  li.querySelector("h3").textContent = sale.name;
  const image = li.querySelector(".product-image");
  image.setAttribute("aria-label", "Photo of " + sale.name + " (not provided)");
  image.querySelector(".initial").textContent = (sale.name.trim()[0] || "?").toUpperCase();
  const status = li.querySelector(".status");
  status.textContent = statusLabels[sale.status] || sale.status;
  status.className = "status " + sale.status;
  li.querySelector(".price").textContent = money(sale.priceCents, sale.currency);
  li.querySelector(".description").textContent =
    `A limited drop of ${sale.totalStock} at this price, at most ${sale.perUserLimit} per customer. ` +
    `On sale from ${dateTime.format(new Date(sale.startsAt))} to ${dateTime.format(new Date(sale.endsAt))}.`;
  const bar = li.querySelector(".stock-bar");
  bar.max = sale.totalStock;
  bar.value = Math.max(0, sale.remaining);
  li.querySelector(".stock-text").textContent = `${Math.max(0, sale.remaining)} of ${sale.totalStock} left`;
  li.querySelector(".when").textContent = timer(sale);

  const reason = whyNot(sale);
  const max = maxQuantity(sale);
  const quantity = li.querySelector(".quantity");
  const chosen = Math.max(1, Math.min(state.quantity.get(sale.id) || 1, max || 1));
  state.quantity.set(sale.id, chosen);
  quantity.max = String(Math.max(1, max));
  if (document.activeElement !== quantity || Number(quantity.value) > chosen) quantity.value = String(chosen);
  quantity.disabled = reason !== "";
  const button = li.querySelector(".buy");
  button.disabled = reason !== "";
  button.textContent = reason === "" ? `Buy ${chosen} · ${money(sale.priceCents * chosen, sale.currency)}` : "Buy";

  const room = li.querySelector(".room");
  room.textContent = roomText(sale);
  room.hidden = room.textContent === "";
  room.dataset.state = state.rooms.get(sale.id)?.state || "none";
  li.querySelector(".join").hidden = !(hasRoom(sale) && state.me?.role === "shopper" && !state.rooms.has(sale.id) &&
    sale.status !== "ended");

  const hint = li.querySelector(".reason");
  const have = bought(sale.id);
  hint.textContent = reason || `You can buy up to ${max} now (limit ${sale.perUserLimit} per customer` +
    (have ? `, you have ${have}` : "") + ").";
  hint.className = "reason " + (reason ? "blocked" : "ok");
}

function renderAll() { for (const sale of state.sales.values()) renderSale(sale); }

function renderOrder(order) {
  $("#orders .empty")?.remove();
  let li = document.getElementById("order-" + order.id);
  if (!li) {
    li = el("li", { id: "order-" + order.id, dataset: { testid: "order" } });
    $("#orders").prepend(li);
  }
  li.dataset.status = order.status;
  const sale = state.sales.get(order.saleId);
  const amount = order.amountCents != null && order.currency ? money(order.amountCents, order.currency) : "";
  li.replaceChildren(
    el("div", { className: "order-line" },
      el("span", { className: "order-what", textContent: `${order.quantity} × ${sale ? sale.name : "sale"}` }),
      el("span", { className: "order-amount", textContent: amount })),
    el("div", { className: "order-line" },
      el("span", { className: "order-status " + order.status, textContent: order.status, dataset: { testid: "order-status" } }),
      el("span", { className: "order-note", textContent: orderNote(order.status) })));
}

function orderNote(status) {
  switch (status) {
    case "pending": return "Stock reserved; confirming…";
    case "confirmed": return "Yours. A confirmation is on its way by email.";
    default: return "Not completed: its stock went back on sale.";
  }
}

// setOrder records an order and redraws it and its sale (the shopper's limit depends on it).
function setOrder(order) {
  state.orders.set(order.id, order);
  renderOrder(order);
  const sale = state.sales.get(order.saleId);
  if (sale) renderSale(sale);
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
  renderAll(); // what the shopper may buy changes with who they are
}

// loadSales reads the sales. A live event that came while the list was on its way is newer than
// the list: the sale keeps the stock and status the event gave it.
async function loadSales() {
  const asked = performance.now();
  const { body } = await api("/v1/sales?limit=50");
  const sales = body.items.filter((s) => s.status !== "ended").map((s) => {
    const known = state.sales.get(s.id);
    if (!known || !((state.liveAt.get(s.id) ?? -1) > asked)) return s;
    return { ...s, remaining: known.remaining, totalStock: known.totalStock, status: known.status };
  });
  state.sales = new Map(sales.map((s) => [s.id, s]));
  $("#sales").replaceChildren();
  renderAll();
  for (const o of state.orders.values()) renderOrder(o);
}

// loadRooms reads back the shopper's places in the rooms of the sales on the page.
async function loadRooms() {
  if (state.me?.role !== "shopper") return;
  for (const sale of state.sales.values()) {
    if (!hasRoom(sale)) continue;
    try {
      setPlace(sale.id, (await api(`/v1/sales/${sale.id}/queue`)).body);
    } catch {
      // Not in this room.
    }
  }
}

async function loadOrders() {
  if (!state.me) return;
  const { body } = await api("/v1/orders?limit=100");
  for (const o of body.items.reverse()) setOrder(o);
}

// pollPending asks for each pending order until it is written: the order:confirmed event does
// the same faster, but a page that was reconnecting when it came would wait forever.
async function pollPending() {
  for (const order of [...state.orders.values()]) {
    if (order.status !== "pending") continue;
    try {
      const { body } = await api(`/v1/orders/${order.id}`);
      if (body.status !== "pending" && state.orders.get(order.id)?.status === "pending") setOrder(body);
    } catch {
      // Next round.
    }
  }
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
    // The socket is authenticated by the access cookie it is opened with: loadMe renews it first.
    setTimeout(() => loadMe().finally(connect), 1000);
  };
  socket.onmessage = (msg) => onEvent(JSON.parse(msg.data));
}

function onEvent(ev) {
  const sale = state.sales.get(ev.saleId);
  switch (ev.type) {
    case "sale:started":
    case "sale:ended":
      if (!sale) { loadSales(); return; }
      Object.assign(sale, { name: ev.data.name, startsAt: ev.data.startsAt, endsAt: ev.data.endsAt, status: ev.data.status });
      // A sale that ends by selling out says so before the (coalesced) inventory:updated comes.
      if (sale.status === "sold_out") sale.remaining = 0;
      break;
    case "inventory:updated":
      if (!sale) return;
      sale.remaining = ev.data.remaining;
      sale.totalStock = ev.data.totalStock;
      sale.status = ev.data.status;
      break;
    case "queue:position":
      for (const [id, place] of state.rooms) {
        if (id !== ev.saleId) continue;
        place.admittedNow = ev.data.admitted;
        place.waiting = ev.data.waiting;
        place.likelySoldOut = ev.data.likelySoldOut;
        if (place.state === "closed" && ev.data.remaining > 0) place.state = "waiting";
      }
      break;
    case "queue:admitted": {
      const place = state.rooms.get(ev.saleId);
      state.rooms.set(ev.saleId, { ...(place || {}), state: "admitted", admission: ev.data });
      notice(`You are admitted to ${sale ? sale.name : "the sale"}: buy before your admission expires.`, "ok");
      break;
    }
    case "queue:closed": {
      const place = state.rooms.get(ev.saleId);
      if (place?.state === "waiting") place.state = ev.data.reason === "sold_out" ? "closed" : "expired";
      break;
    }
    case "order:confirmed": {
      const known = state.orders.get(ev.data.orderId);
      if (!known && state.busy.has(ev.saleId)) {
        // Confirmed before the page had the answer to its purchase: the order is shown pending
        // first, from that answer, and then confirmed (buy() replays this event).
        state.early.set(ev.data.orderId, ev);
        return;
      }
      setOrder({
        ...(known || { id: ev.data.orderId, saleId: ev.saleId, quantity: ev.data.quantity }),
        status: ev.data.status, amountCents: ev.data.amountCents, currency: ev.data.currency,
      });
      return;
    }
  }
  if (sale) {
    state.liveAt.set(sale.id, performance.now());
    renderSale(sale);
  }
}

async function buy(saleId) {
  notice("");
  const sale = state.sales.get(saleId);
  if (!sale || whyNot(sale) !== "") return;
  const quantity = state.quantity.get(saleId) || 1;
  state.busy.add(saleId);
  renderSale(sale);
  try {
    const { body } = await api(`/v1/sales/${saleId}/orders`, {
      method: "POST",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify({ quantity }),
    });
    // order:confirmed may have come first: never turn a confirmed order back to pending.
    if (!state.orders.has(body.id) || state.orders.get(body.id).status === "pending") setOrder(body);
    if (hasRoom(sale) && state.rooms.has(saleId)) state.rooms.get(saleId).state = "used";
    notice(`Order placed: ${body.quantity} × ${sale.name}. Its confirmation shows under "Your orders".`, "ok");
  } catch (e) {
    if (e.problem?.type === problems + "purchase-limit-exceeded") state.limitHit.add(saleId);
    if (e.problem?.type === problems + "admission-required") pollRooms();
    notice(e.message);
  } finally {
    state.busy.delete(saleId);
    const current = state.sales.get(saleId);
    if (current) renderSale(current);
    for (const [id, ev] of state.early) {
      if (ev.saleId !== saleId) continue;
      state.early.delete(id);
      setTimeout(() => onEvent(ev), 0);
    }
  }
}

async function logIn(email, password) {
  await api("/v1/auth/login", { method: "POST", body: JSON.stringify({ email, password }) });
  await loadMe();
  await loadOrders();
  loadRooms().catch(() => {}); // the places come when they come: logging in does not wait for them
  connect(); // again, now with the session cookie: the buyer's own events come too
}

$("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const email = form.get("email"), password = form.get("password");
  const register = e.submitter?.value === "register";
  notice("");
  try {
    if (register) await api("/v1/auth/register", { method: "POST", body: JSON.stringify({ email, password }) });
    await logIn(email, password);
    if (register) notice("Welcome! Your account is ready and you are logged in.", "ok");
  } catch (err) {
    notice(err.message);
  }
});

$("#logout").addEventListener("click", async () => {
  await api("/v1/auth/logout", { method: "POST" }).catch(() => {});
  state.orders.clear();
  state.limitHit.clear();
  state.rooms.clear();
  $("#orders").replaceChildren(noOrders());
  notice("");
  await loadMe();
  connect();
});

// Four times a second: the countdowns move on.
setInterval(() => {
  for (const sale of state.sales.values()) {
    const li = document.getElementById("sale-" + sale.id);
    if (!li) continue;
    li.querySelector(".when").textContent = timer(sale);
    if (sale.status === "scheduled") li.querySelector(".reason").textContent = whyNot(sale);
    if (state.rooms.get(sale.id)?.state === "admitted") renderSale(sale); // the admission's countdown
  }
}, 250);
setInterval(pollPending, 2000);
setInterval(pollRooms, 5000); // the room's heartbeat: well within ROOM_HEARTBEAT_GRACE (30 s)

await loadMe();
await loadSales().catch((e) => notice(e.message));
await loadOrders().catch(() => {});
loadRooms().catch(() => {});
connect();
