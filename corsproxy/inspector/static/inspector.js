// corsproxy inspector: every exchange, as the browser judged it. Plain JavaScript, no build,
// nothing fetched from elsewhere. Data comes from api/exchanges, then live from api/events.
// Every value from an exchange is put into the page as text (textContent), never as HTML:
// paths, headers and bodies come from pages and backends we do not control.
"use strict";

const SECRET_HEADERS = new Set(["cookie", "set-cookie", "authorization", "proxy-authorization"]);
const COOKIE_HEADERS = new Set(["cookie", "set-cookie"]);
// Request headers fetch() may not set, or that the browser sets itself: left out of "copy as fetch".
const NOT_FOR_FETCH = new Set([
  "accept-charset", "accept-encoding", "access-control-request-headers",
  "access-control-request-method", "connection", "content-length", "cookie", "cookie2", "date",
  "dnt", "expect", "host", "keep-alive", "origin", "referer", "set-cookie", "te", "trailer",
  "transfer-encoding", "upgrade", "via", "user-agent", "accept-language", "priority",
]);
const NOT_FOR_CURL = new Set(["host", "content-length", "connection", "keep-alive", "transfer-encoding"]);

const state = {
  byId: new Map(), // id -> exchange (JSON from the API)
  keep: 500,
  selected: null, // id
  fresh: new Set(), // ids that arrived live since the last render, for a short highlight
  revealed: false, // secret header values shown
  corsOnly: false,
  source: null, // the EventSource
  renderQueued: false,
  lastRender: 0,
  routes: [],
  reloads: [], // config reloads ({time, ok, message, details}), shown as markers in the list
};

const $ = (id) => document.getElementById(id);

// h("div", {class: "x"}, "text", child): an element; strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// ---- loading and the live stream -------------------------------------------------------------

async function resync() {
  let response;
  try {
    response = await fetch("api/exchanges", { cache: "no-store" });
  } catch (error) {
    setLive("offline", "proxy unreachable; retrying…");
    setTimeout(resync, 2000);
    return;
  }
  if (response.status === 403) {
    tokenGone();
    return;
  }
  if (!response.ok) {
    setLive("offline", `error ${response.status}; retrying…`);
    setTimeout(resync, 2000);
    return;
  }
  const body = await response.json();
  state.keep = body.keep || state.keep;
  state.routes = body.routes || [];
  state.reloads = body.reloads || [];
  state.byId.clear();
  for (const exchange of body.exchanges) state.byId.set(exchange.id, exchange);
  fillRoutes();
  if (state.selected !== null && !state.byId.has(state.selected)) state.selected = null;
  render(true);
  showDetail();
  listen(lastId());
}

function lastId() {
  let last = 0;
  for (const id of state.byId.keys()) last = Math.max(last, id);
  return last;
}

function listen(since) {
  if (state.source) state.source.close();
  const source = new EventSource(`api/events?since=${since}`);
  state.source = source;
  source.addEventListener("open", () => setLive("live", "live"));
  source.addEventListener("exchange", (event) => add(JSON.parse(event.data)));
  source.addEventListener("clear", () => {
    state.byId.clear();
    state.selected = null;
    render(true);
    showDetail();
  });
  source.addEventListener("reload", (event) => {
    const data = JSON.parse(event.data || "{}");
    state.reloads.push(data);
    if (state.reloads.length > 50) state.reloads.shift();
    toast(data.message || "config reloaded", data.ok === false);
    render(false);
  });
  source.addEventListener("error", () => {
    // A restarted proxy numbers its exchanges afresh: load the whole list again, then listen.
    source.close();
    if (state.source === source) state.source = null;
    setLive("offline", "reconnecting…");
    setTimeout(resync, 1000);
  });
}

function add(exchange) {
  state.byId.set(exchange.id, exchange);
  if (exchange.pair !== null && state.byId.has(exchange.pair)) {
    const preflight = state.byId.get(exchange.pair);
    if (preflight.preflight) preflight.pair = exchange.id;
  }
  while (state.byId.size > state.keep) state.byId.delete(state.byId.keys().next().value);
  state.fresh.add(exchange.id);
  scheduleRender();
  if (state.selected !== null && (exchange.pair === state.selected || exchange.id === state.selected)) {
    showDetail();
  }
}

function setLive(kind, text) {
  $("live").dataset.state = kind;
  $("live-text").textContent = text;
}

function tokenGone() {
  setLive("offline", "no access");
  const detail = $("detail");
  detail.replaceChildren(
    h("div", { class: "gone" },
      h("h2", { text: "This page no longer has the inspector's token" }),
      h("p", {}, "corsproxy makes a new token at every start (unless ", h("code", { text: "inspector.token" }),
        " fixes it). Open the URL it printed again, on the line ",
        h("code", { text: "inspector: http://…/__corsproxy/?token=…" }), "."),
    ),
  );
}

// ---- the list --------------------------------------------------------------------------------

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  // At most ~8 renders a second while a load test streams thousands of exchanges.
  const wait = Math.max(0, 120 - (performance.now() - state.lastRender));
  setTimeout(() => requestAnimationFrame(() => render(false)), wait);
}

function filters() {
  return {
    text: $("filter").value.trim().toLowerCase(),
    blocked: $("only-blocked").checked,
    errors: $("only-errors").checked,
    route: $("route").value,
    hidePreflights: $("hide-preflights").checked,
  };
}

function isError(x) {
  return x.decision === "error" || x.status >= 500 || x.status === 0;
}

function haystack(x) {
  const findings = x.without_proxy ? x.without_proxy.findings.map((f) => f.name) : [];
  return [x.id, x.method, x.path, x.status, x.origin || "", x.decision, x.reason, x.route || "",
    x.replay ? "replay" : "", ...findings, ...x.corrections].join(" ").toLowerCase();
}

function matches(x, f) {
  if (f.blocked && !(x.without_proxy && x.without_proxy.verdict === "blocked")) return false;
  if (f.errors && !isError(x)) return false;
  if (f.route && x.route !== f.route) return false;
  if (f.hidePreflights && x.preflight) return false;
  if (f.text && !haystack(x).includes(f.text)) return false;
  return true;
}

// Under a request that is shown, its preflight: the quick filters apply to the preflight
// itself, the text may match either (filtering by a path shows the pair).
function childMatches(preflight, request, f) {
  if (!matches(preflight, { ...f, text: "" })) return false;
  return !f.text || haystack(preflight).includes(f.text) || haystack(request).includes(f.text);
}

// Newest first; a preflight is shown right under the request it preceded.
function visibleRows() {
  const f = filters();
  const all = [...state.byId.values()].sort((a, b) => b.id - a.id);
  const out = [];
  for (const x of all) {
    const underRequest = x.preflight && x.pair !== null && state.byId.has(x.pair);
    if (underRequest) continue;
    const shown = matches(x, f);
    if (shown) out.push([x, false]);
    if (!x.preflight && x.pair !== null && state.byId.has(x.pair)) {
      const preflight = state.byId.get(x.pair);
      if (childMatches(preflight, x, f)) out.push([preflight, shown]);
    }
  }
  return out;
}

const rowCache = new Map(); // id -> [tr, version]

function row(x, child) {
  const version = `${x.pair}|${child}|${x.id === state.selected}`;
  const cached = rowCache.get(x.id);
  if (cached && cached[1] === version) return cached[0];
  const status = x.status ? String(x.status) : "—";
  const tr = h("tr", {
    "data-id": x.id,
    "data-decision": x.decision,
    "data-method": x.method,
    class: child ? "child" : "",
    "aria-selected": x.id === state.selected ? "true" : "false",
  },
    h("td", { class: "time", text: clock(x.time) }),
    h("td", { class: "method" }, x.method),
    h("td", { class: "path", title: x.path, text: x.path }),
    h("td", { class: `status s${String(x.status)[0] || 0}`, text: status }),
    h("td", { class: "origin", title: x.origin || "", text: x.origin || "—" }),
    h("td", { class: "decision" }, decisionBadge(x), x.replay ? h("span", { class: "badge replay-badge", text: "replay" }) : null),
    h("td", { class: "alone" }, aloneCell(x)),
  );
  tr.addEventListener("click", () => select(x.id));
  rowCache.set(x.id, [tr, version]);
  return tr;
}

function decisionBadge(x) {
  return h("span", { class: `badge d-${x.decision}`, title: x.reason, text: x.decision });
}

function aloneCell(x) {
  const alone = x.without_proxy;
  if (alone === null) {
    const why = x.preflight ? "answered by the proxy" : x.decision === "not-cors" ? "no CORS involved" : "not sent upstream";
    return h("span", { class: "alone-none", text: "— " + why });
  }
  const fatal = alone.findings.find((f) => f.fatal);
  if (alone.verdict === "blocked" && fatal) {
    return h("span", { class: "alone-blocked", title: fatal.detail }, fatal.name,
      alone.credentialed_only ? h("span", { class: "cred", text: " if credentialed" }) : null);
  }
  const note = alone.findings[0];
  if (note) return h("span", { class: "alone-note", title: note.detail, text: `passes; ${note.name}` });
  return h("span", { class: "alone-ok", text: "✓ would pass" });
}

function render(full) {
  state.renderQueued = false;
  state.lastRender = performance.now();
  if (full) rowCache.clear();
  for (const id of rowCache.keys()) if (!state.byId.has(id)) rowCache.delete(id);
  const rows = visibleRows();
  const trs = rows.map(([x, child]) => {
    const tr = row(x, child);
    tr.classList.toggle("fresh", state.fresh.has(x.id));
    return tr;
  });
  state.fresh.clear();
  $("rows").replaceChildren(...withMarkers(rows, trs));
  const total = state.byId.size;
  $("count").textContent = `${total} exchange${total === 1 ? "" : "s"} kept (of ${state.keep})`;
  $("shown").textContent = rows.length === total ? "" : `${rows.length} shown`;
  const empty = $("empty");
  empty.hidden = rows.length > 0;
  if (!rows.length) {
    empty.replaceChildren(total
      ? h("div", {}, h("strong", { text: "Nothing matches these filters." }))
      : h("div", {}, h("strong", { text: "No exchanges yet." }), h("br"),
        "Point your page at ", h("code", { text: location.origin }),
        " and its requests show up here, live."));
  }
}

// A reload's marker sits above the exchanges that started before it: those ran under the
// config it replaced (newest first, like the rows).
function withMarkers(rows, trs) {
  const marks = [...state.reloads].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  const out = [];
  let next = 0;
  rows.forEach(([x, child], i) => {
    while (!child && next < marks.length && Date.parse(marks[next].time) >= Date.parse(x.time)) {
      out.push(marker(marks[next++]));
    }
    out.push(trs[i]);
  });
  while (next < marks.length) out.push(marker(marks[next++]));
  return out;
}

function marker(reload) {
  const details = (reload.details || []).join("\n");
  return h("tr", { class: "reload-marker", "data-ok": reload.ok ? "true" : "false" },
    h("td", { class: "time", text: clock(reload.time) }),
    h("td", { colspan: 6, title: details || null },
      h("span", { class: "badge reload-badge", text: reload.ok ? "config reloaded" : "config not reloaded" }),
      " ", reload.message || "", details ? h("div", { class: "reload-details", text: details }) : null));
}

function fillRoutes() {
  const select = $("route");
  const current = select.value;
  const routes = new Set(state.routes);
  for (const x of state.byId.values()) if (x.route) routes.add(x.route);
  select.replaceChildren(h("option", { value: "", text: "all" }),
    ...[...routes].sort().map((r) => h("option", { value: r, text: r })));
  select.value = routes.has(current) ? current : "";
}

function select(id) {
  state.selected = id;
  render(false);
  showDetail();
}

// ---- the detail pane -------------------------------------------------------------------------

function showDetail() {
  const pane = $("detail");
  const x = state.selected === null ? null : state.byId.get(state.selected);
  if (!x) {
    if (pane.querySelector(".head")) pane.replaceChildren(placeholder);
    return;
  }
  const scroll = pane.scrollTop;
  const same = pane.dataset.id === String(x.id);
  pane.dataset.id = String(x.id);
  const parts = [
    headOf(x),
    decisionSection(x),
    aloneSection(x),
    pairSection(x),
    headersSection(x),
    cookiesSection(x),
    bodiesSection(x),
    timingSection(x),
  ];
  pane.replaceChildren(...parts.filter(Boolean));
  if (same) pane.scrollTop = scroll;
}

let placeholder = null;

function headOf(x) {
  return h("div", { class: "head" },
    h("div", { class: "title" },
      h("span", { class: "method", text: x.method }),
      h("span", { class: "url", text: x.url }),
      h("span", { class: `status s${String(x.status)[0] || 0}`, text: x.status || "—" }),
      decisionBadge(x),
      x.replay ? h("span", { class: "badge replay-badge", text: `replay of #${x.replay_of}` }) : null,
    ),
    h("div", { class: "meta" },
      h("span", { text: `#${x.id}` }),
      h("span", { text: new Date(x.time).toLocaleString() }),
      h("span", {}, "origin ", h("b", { text: x.origin || "none" })),
      x.route !== null ? h("span", {}, "route ", h("b", { text: x.route })) : null,
      x.upstream_url ? h("span", {}, "upstream ", h("span", { class: "mono", text: x.upstream_url })) : null,
      x.worker ? h("span", { text: `worker ${x.worker}` }) : null,
    ),
    h("div", { class: "actions" },
      h("button", { class: "button", type: "button", onclick: () => copy(curlOf(x), "curl command") }, "Copy as curl"),
      h("button", { class: "button", type: "button", onclick: () => copy(fetchOf(x), "fetch() call") }, "Copy as fetch"),
      h("button", { class: "button primary", type: "button", id: "replay", onclick: () => replay(x) }, "Replay"),
    ),
  );
}

function section(title, ...children) {
  return h("div", { class: "section" }, h("h3", { text: title }), ...children);
}

function decisionSection(x) {
  const words = {
    allowed: "The proxy allowed this origin and gave the browser the CORS headers it needs.",
    refused: "The origin is not allowed: the proxy granted nothing, so the browser blocks the response.",
    preflight: "A CORS preflight: the proxy answered it itself, from its rules (it never reaches the upstream).",
    "preflight-refused": "A preflight from an origin that is not allowed: refused with 403, no CORS headers.",
    "not-cors": "No Origin header: a same-origin request, a navigation or a tool such as curl. CORS does not apply.",
    error: "The proxy could not get an answer from the upstream (or refused the request before CORS).",
  };
  const kind = { allowed: "ok", preflight: "info", "not-cors": "info" }[x.decision] || "bad";
  const card = h("div", { class: `card ${kind}` },
    h("p", {}, decisionBadge(x), " ", words[x.decision] || ""),
    h("p", { class: "muted", text: x.reason }),
  );
  if (x.error) {
    card.append(h("p", {}, h("b", { text: x.error.error }), ": ", x.error.detail),
      x.error.hint ? h("p", { class: "muted", text: "hint: " + x.error.hint }) : null);
  }
  if (x.corrections.length) {
    card.append(h("p", { class: "muted", text: "What the proxy changed:" }),
      h("ul", { class: "corrections" }, x.corrections.map((c) => h("li", { text: c }))));
  }
  return section("The proxy's decision", card);
}

function aloneSection(x) {
  const alone = x.without_proxy;
  if (alone === null) {
    const why = x.preflight
      ? "The proxy answered this preflight itself; the upstream was never asked."
      : "The upstream was never asked, so there is nothing to judge.";
    return section("Without the proxy", h("div", { class: "card info" }, h("p", { class: "muted", text: why })));
  }
  const blocked = alone.verdict === "blocked";
  const out = [h("div", { class: `card ${blocked ? "bad" : "ok"}` },
    h("p", { class: `verdict ${blocked ? "bad" : "ok"}` },
      blocked ? "Had the page called the upstream directly, the browser would have blocked it."
        : "Had the page called the upstream directly, the browser would have allowed it."),
    alone.credentialed_only
      ? h("p", { class: "muted", text: "Only if the page sends it with credentials: 'include' (the proxy cannot see a page's credentials mode; this request carried no cookie)." })
      : null,
  )];
  for (const f of alone.findings) out.push(findingCard(f));
  return section("Without the proxy", ...out);
}

function findingCard(f) {
  return h("div", { class: `card ${f.fatal ? "bad" : "note"}` },
    h("p", {},
      f.mdn ? h("a", { class: "finding-name", href: f.mdn, target: "_blank", rel: "noreferrer noopener", text: f.name })
        : h("span", { class: "finding-name", text: f.name }),
      h("span", { class: "muted", text: f.fatal ? "  blocks the response" : "  a note; the browser allows it" })),
    f.chromium ? h("div", { class: "chromium", text: f.chromium }) : null,
    h("p", { text: f.detail }),
    h("p", { class: "muted", text: f.explanation }),
    h("p", { class: "fix" }, h("b", { text: "Fix: " }), f.fix),
  );
}

function pairSection(x) {
  if (x.pair === null && !x.preflight) return null;
  const other = x.pair !== null ? state.byId.get(x.pair) : null;
  const jump = (id, text) => h("button", { class: "linklike", type: "button", onclick: () => select(id), text });
  if (x.preflight) {
    const p = x.preflight;
    const asked = h("p", {}, "Asked for ", h("b", { class: "mono", text: p.method || "?" }),
      p.headers ? [" with headers ", h("b", { class: "mono", text: p.headers })] : " with no extra headers",
      `; the browser may reuse this answer for ${p.max_age} s.`);
    const then = other
      ? h("p", {}, "The request that followed: ", jump(other.id, `#${other.id} ${other.method} ${other.path}`), ` → ${other.status}`)
      : h("p", { class: "muted", text: x.decision === "preflight" ? "No request followed it yet (a blocked preflight stops the browser here)." : "The browser stops here: the request itself is never sent." });
    return section("Preflight", h("div", { class: "card info" }, asked, then));
  }
  if (!other) return null;
  return section("Preflight", h("div", { class: "card info" },
    h("p", {}, "The browser asked first: ", jump(other.id, `#${other.id} OPTIONS ${other.path}`), ` → ${other.status} (${other.decision})`)));
}

// The four header sets as two comparisons: the browser's request beside what went upstream,
// the upstream's answer beside what the browser got; what the proxy changed is marked.
function headersSection(x) {
  const legend = h("div", { class: "legend" },
    h("span", {}, h("span", { class: "k cors" }), "CORS (Access-Control-*, Vary, Origin)"),
    h("span", {}, h("span", { class: "k cookie" }), "cookies"),
    h("span", {}, h("span", { class: "plus", text: "+" }), " added by the proxy"),
    h("span", {}, h("span", { class: "tilde", text: "~" }), " changed"),
    h("span", {}, h("span", { class: "minus", text: "−" }), " removed"),
    h("label", {},
      h("input", { type: "checkbox", id: "cors-only", checked: state.corsOnly, onchange: (e) => { state.corsOnly = e.target.checked; showDetail(); } }),
      " CORS and cookies only"),
    h("label", {},
      h("input", { type: "checkbox", id: "reveal", checked: state.revealed, onchange: (e) => { state.revealed = e.target.checked; showDetail(); } }),
      " reveal secrets"),
  );
  const request = compare("request", [1, "From the browser", x.request_headers],
    [2, "To the upstream", x.upstream_request_headers, "not sent upstream"]);
  const response = compare("response", [3, "From the upstream", x.upstream_response_headers, "no answer from the upstream"],
    [4, "To the browser", x.response_headers]);
  return section("Headers", legend, request, response);
}

function kindOf(name) {
  const lower = name.toLowerCase();
  if (lower.startsWith("access-control-") || lower === "vary" || lower === "origin") return "cors";
  if (COOKIE_HEADERS.has(lower)) return "cookie";
  return "";
}

// Header names in order of first appearance, each with its values in `before` and `after`.
function byName(before, after) {
  const rows = new Map();
  const put = (pairs, side) => {
    for (const [n, v] of pairs || []) {
      const key = n.toLowerCase();
      if (!rows.has(key)) rows.set(key, { name: n, before: [], after: [] });
      rows.get(key)[side].push(v);
    }
  };
  put(before, "before");
  put(after, "after");
  return [...rows.values()];
}

function changeOf(row, both) {
  if (!both) return "";
  if (!row.before.length) return "added";
  if (!row.after.length) return "removed";
  return row.before.join("\n") === row.after.join("\n") ? "" : "changed";
}

// [step, title, pairs, why-missing] for the left and right side of one comparison.
function compare(kind, left, right) {
  const [lstep, ltitle, lpairs, lwhy] = left;
  const [rstep, rtitle, rpairs, rwhy] = right;
  const both = Boolean(lpairs && rpairs);
  const table = h("table", { class: `headers ${kind}`, "data-kind": kind });
  table.append(h("colgroup", {}, h("col", { class: "sign" }), h("col", { class: "name" }), h("col", {}), h("col", {})));
  table.append(h("thead", {}, h("tr", {},
    h("th", {}), h("th", { text: kind === "request" ? "Request header" : "Response header" }),
    h("th", {}, h("span", { class: "step", text: lstep }), ltitle),
    h("th", {}, h("span", { class: "step", text: rstep }), rtitle))));
  const body = h("tbody");
  for (const row of byName(lpairs, rpairs)) {
    if (state.corsOnly && !kindOf(row.name)) continue;
    const change = changeOf(row, both);
    const sign = { added: "+", changed: "~", removed: "−" }[change] || "";
    body.append(h("tr", { class: `${kindOf(row.name)} ${change}`.trim(), "data-name": row.name.toLowerCase() },
      h("td", { class: "sign", text: sign }),
      h("td", { class: "name", text: row.name }),
      valueCell(lstep, row.name, lpairs ? row.before : null, lwhy),
      valueCell(rstep, row.name, rpairs ? row.after : null, rwhy),
    ));
  }
  if (!body.children.length) {
    body.append(h("tr", {}, h("td", {}), h("td", { class: "none", colspan: "3", text: state.corsOnly ? "No CORS or cookie headers." : "No headers." })));
  }
  table.append(body);
  return h("div", { class: "compare" }, table);
}

function valueCell(step, name, values, why) {
  const cell = h("td", { class: "value", "data-set": String(step) });
  if (values === null) {
    cell.classList.add("absent");
    cell.textContent = why || "";
    return cell;
  }
  if (!values.length) {
    cell.classList.add("absent");
    cell.textContent = "—";
    return cell;
  }
  values.forEach((value, i) => {
    if (i) cell.append(h("br"));
    cell.append(shown(name, value));
  });
  return cell;
}

// Secret values (cookies, Authorization) are masked on the page until revealed.
function shown(name, value) {
  if (state.revealed || !SECRET_HEADERS.has(name.toLowerCase())) return document.createTextNode(value);
  const cell = h("span", {});
  const button = h("button", {
    class: "mask", type: "button", title: "click to reveal this value",
    text: `hidden (${value.length} characters) · reveal`,
    onclick: (event) => { event.stopPropagation(); cell.replaceChildren(document.createTextNode(value)); },
  });
  cell.append(button);
  return cell;
}

function cookiesSection(x) {
  const setCookies = (x.response_headers || []).filter(([n]) => n.toLowerCase() === "set-cookie");
  if (!x.cookies.length && !setCookies.length) return null;
  const items = x.cookies.length
    ? x.cookies.map((c) => h("div", { class: "card" }, cookieVerdict(c)))
    : [h("div", { class: "card" }, h("p", { class: "muted", text: `${setCookies.length} Set-Cookie in this response; no verdicts recorded for them.` }))];
  return section("Cookies", ...items);
}

function cookieVerdict(c) {
  if (typeof c !== "object" || c === null || !Array.isArray(c.browsers)) return h("p", { text: String(c) });
  const where = c.cross_site ? `cross-site: page ${c.page_site}, proxy ${c.proxy_site}` : `same-site (${c.proxy_site})`;
  const rows = c.browsers.map((b) => {
    const kept = b.refused ? "refused" : b.stored ? (b.partition ? `kept, partitioned for ${b.partition}` : "kept") : "not kept";
    const back = b.sent ? "; sent back on the next credentialed fetch" : "";
    return [h("dt", { text: b.browser }),
      h("dd", { class: b.refused ? "bad" : "", text: `${kept}${back}${b.reason ? ` (${b.reason})` : ""}` })];
  });
  return h("div", {},
    h("p", {}, h("b", { text: c.name }), h("span", { class: "muted", text: ` ${c.deletes ? "deletes the cookie; " : ""}${where}` })),
    h("pre", { class: "body", text: c.cookie }),
    h("dl", { class: "kv" }, rows.flat()));
}

function bodiesSection(x) {
  const parts = [];
  for (const [title, body] of [["Request body", x.request_body], ["Response body", x.response_body]]) {
    if (!body) continue;
    const note = body.truncated ? ` — the first ${new Blob([body.text]).size} of ${body.size} bytes` : ` — ${body.size} bytes`;
    parts.push(h("h4", {}, title, h("span", { class: "muted", text: ` ${body.content_type}${note}` })),
      h("pre", { class: "body", text: pretty(body) }));
  }
  if (!parts.length) return null;
  return section("Bodies", h("div", { class: "bodies" }, parts));
}

function pretty(body) {
  if (!body.truncated && /json/i.test(body.content_type)) {
    try { return JSON.stringify(JSON.parse(body.text), null, 2); } catch (error) { /* as sent */ }
  }
  return body.text;
}

function timingSection(x) {
  const total = x.timings.total_ms;
  const upstream = x.timings.upstream_head_ms;
  const bar = h("div", { class: "bar", title: "upstream's response head / the rest" });
  if (upstream !== null && total > 0) {
    const head = h("div", { class: "upstream" });
    head.style.width = `${Math.min(100, (upstream / total) * 100)}%`;
    const rest = h("div", { class: "proxy" });
    rest.style.width = `${Math.max(0, 100 - (upstream / total) * 100)}%`;
    bar.append(head, rest);
  }
  const facts = [[h("dt", { text: "total" }), h("dd", { text: `${total.toFixed(1)} ms` })]];
  if (upstream !== null) {
    facts.push([h("dt", { text: "until the upstream's head" }), h("dd", { text: `${upstream.toFixed(1)} ms` })]);
    facts.push([h("dt", { text: "body and the rest" }), h("dd", { text: `${Math.max(0, total - upstream).toFixed(1)} ms` })]);
  }
  return section("Timings", h("div", { class: "card" },
    h("dl", { class: "kv" }, facts.flat()), upstream !== null ? h("div", { class: "timing" }, bar) : null));
}

// ---- buttons ---------------------------------------------------------------------------------

function quote(text) {
  return `'${String(text).replaceAll("'", "'\\''")}'`;
}

function curlOf(x) {
  const lines = [`curl ${quote(x.url)}`];
  if (x.method !== "GET") lines.push(`-X ${x.method}`);
  for (const [n, v] of x.request_headers) {
    if (!NOT_FOR_CURL.has(n.toLowerCase())) lines.push(`-H ${quote(`${n}: ${v}`)}`);
  }
  if (x.request_body) lines.push(`--data-raw ${quote(x.request_body.text)}`);
  return lines.join(" \\\n  ");
}

function fetchOf(x) {
  const p = x.preflight;
  const headers = {};
  let method = x.method;
  let comment = "";
  if (p) { // the request this preflight was sent for
    method = p.method || "GET";
    for (const name of (p.headers || "").split(",").map((s) => s.trim()).filter(Boolean)) headers[name] = "…";
    comment = "// the request this preflight was for (its header values are not in a preflight)\n";
  } else {
    for (const [n, v] of x.request_headers) {
      const lower = n.toLowerCase();
      if (NOT_FOR_FETCH.has(lower) || lower.startsWith("sec-") || lower.startsWith("proxy-")) continue;
      if (lower === "accept" && v === "*/*") continue;
      headers[n] = v;
    }
  }
  const init = {};
  if (method !== "GET") init.method = method;
  if (Object.keys(headers).length) init.headers = headers;
  if (!p && x.request_body) init.body = x.request_body.text;
  const cookie = x.request_headers.some(([n]) => n.toLowerCase() === "cookie");
  if (cookie) init.credentials = "include";
  const args = Object.keys(init).length ? `, ${JSON.stringify(init, null, 2)}` : "";
  return `${comment}await fetch(${JSON.stringify(x.url)}${args});`;
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) { // not a secure context (the proxy reached by a LAN name): the old way
    const area = h("textarea", {}, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast(`${what} copied`);
}

async function replay(x) {
  const button = $("replay");
  if (button) button.disabled = true;
  try {
    const response = await fetch("api/replay", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: x.id }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) toast(`#${x.id} replayed through the proxy → ${body.status}`);
    else toast(body.error || `replay failed (${response.status})`, true);
  } catch (error) {
    toast(`replay failed: ${error.message}`, true);
  } finally {
    if (button) button.disabled = false;
  }
}

async function clearAll() {
  const response = await fetch("api/clear", { method: "POST" });
  if (!response.ok) toast(`clear failed (${response.status})`, true);
}

let toastTimer = null;
function toast(text, bad = false) {
  const el = $("toast");
  el.textContent = text;
  el.classList.toggle("bad", bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, bad ? 6000 : 2500);
}

function clock(iso) {
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// ---- keyboard and start ----------------------------------------------------------------------

function move(step) {
  const ids = [...$("rows").children].map((tr) => Number(tr.dataset.id));
  if (!ids.length) return;
  const at = ids.indexOf(state.selected);
  const next = ids[Math.min(ids.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
  select(next);
  const tr = $("rows").querySelector(`tr[data-id="${next}"]`);
  if (tr) tr.scrollIntoView({ block: "nearest" });
}

function start() {
  placeholder = $("detail").firstElementChild;
  for (const id of ["filter", "only-blocked", "only-errors", "route", "hide-preflights"]) {
    $(id).addEventListener("input", () => render(false));
  }
  $("clear").addEventListener("click", clearAll);
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.key === "ArrowDown" || event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "ArrowUp" || event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "/") { $("filter").focus(); event.preventDefault(); }
    else if (event.key === "Escape") { state.selected = null; render(false); showDetail(); }
  });
  document.title = `corsproxy inspector — ${location.host}`;
  resync();
}

start();
