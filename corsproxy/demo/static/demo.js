// corsproxy demo page: runs each card's requests from /config.json straight to the backend and
// through the proxy, and shows what `corsproxy doctor` says about them (from /diagnose).
// Results land on each .result element as data-direct, data-proxied and data-finding;
// document.body.dataset.done becomes "true" when every card has finished, and data-runs counts
// the completed runs ("Run again" adds one).
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const code = (text) => el("code", {}, text);
const CORS_NAME = /^(access-control-|vary$)/i;
const ASKED = /^(origin|access-control-request-)/i; // the preflight's question; Host etc. left out

function fetchCode(req) {
  const options = [];
  if (req.method !== "GET") options.push(`method: "${req.method}"`);
  if (req.headers.length) {
    const pairs = req.headers.map(([name, value]) => `"${name}": "${value}"`);
    options.push(`headers: { ${pairs.join(", ")} }`);
  }
  if (req.body !== null) options.push(`body: ${JSON.stringify(req.body)}`);
  if (req.credentials) options.push(`credentials: "include"`);
  const rest = options.length ? `, {\n  ${options.join(",\n  ")}\n}` : "";
  return `fetch(BASE + "${req.path}"${rest})`;
}

// ---- the browser's side: the requests themselves -----------------------------------------

async function runSide(base, requests) {
  const steps = [];
  for (const req of requests) {
    const init = {
      method: req.method,
      headers: Object.fromEntries(req.headers),
      body: req.body,
      credentials: req.credentials ? "include" : "same-origin",
      cache: "no-store",
    };
    try {
      const response = await fetch(base + req.path, init);
      const body = await response.text();
      const read = req.read_headers.map((name) => [name, response.headers.get(name)]);
      steps.push({ req, ok: true, status: response.status, statusText: response.statusText, body, read });
    } catch (error) {
      steps.push({ req, ok: false, error: String(error) });
      break; // a blocked login means there is no cookie to send back
    }
  }
  return { outcome: steps.every((s) => s.ok) ? "allowed" : "blocked", steps };
}

async function diagnose(cardId) {
  try {
    const response = await fetch(`/diagnose?card=${encodeURIComponent(cardId)}`, { cache: "no-store" });
    const doc = await response.json();
    return response.ok ? doc : { error: doc.error || `HTTP ${response.status}` };
  } catch (error) {
    return { error: String(error) };
  }
}

// ---- rendering ----------------------------------------------------------------------------

function pretty(body) {
  try {
    return JSON.stringify(JSON.parse(body));
  } catch {
    return body;
  }
}

function headerList(pairs, filter = () => true) {
  const rows = pairs.filter(([name]) => filter(name));
  if (!rows.length) return el("p", { class: "muted" }, "no CORS headers at all");
  return el("ul", { class: "hdrs" }, rows.map(([n, v]) => el("li", {}, code(`${n}: ${v}`))));
}

function stepLine(step) {
  const where = `${step.req.method} ${step.req.path}`;
  if (!step.ok) return el("div", { class: "step" }, el("span", { class: "what" }, where), " → ", code(step.error));
  const status = `${step.status} ${step.statusText}`.trim();
  return el("div", { class: "step" },
    el("div", {}, el("span", { class: "what" }, where), " → ", el("strong", {}, status)),
    el("pre", { class: "body" }, pretty(step.body)),
    step.read.map(([name, value]) =>
      el("div", { class: "read" }, code(`response.headers.get("${name}")`), " → ",
        el("strong", {}, value === null ? "null" : JSON.stringify(value)))));
}

function firstBlocked(docs) {
  return (docs || []).find((doc) => doc.verdict === "blocked");
}

function doctorBlock(docs, page) {
  const doc = firstBlocked(docs);
  if (!doc) return null;
  const [finding, ...more] = doc.findings;
  const also = more.length
    ? el("p", { class: "also" }, "also: ", more.map((f) => f.name).join(", "))
    : null;
  return el("div", { class: "finding" },
    el("p", {}, el("span", { class: "label" }, "corsproxy doctor"), " ",
      el("a", { class: "name", href: finding.mdn_url || "#", target: "_blank", rel: "noopener" }, finding.name)),
    el("p", { class: "why" }, finding.explanation),
    also,
    el("details", {}, el("summary", {}, "How Chrome’s console words it, and the fix"),
      el("p", { class: "console" }, finding.message || finding.detail),
      el("p", { class: "fix" }, el("strong", {}, "Fix: "), finding.fix),
      el("p", { class: "muted" }, `corsproxy doctor ${doc.url} --origin ${page}`)));
}

function addedBy(docs) {
  const doc = (docs || []).at(-1);
  const received = doc && doc.request && doc.request.response ? doc.request.response.headers : [];
  return el("div", { class: "added" }, el("p", { class: "label" }, "CORS headers on the proxy’s answer"),
    headerList(received, (name) => CORS_NAME.test(name)));
}

function agreement(browser, docs) {
  if (!docs) return el("p", { class: "agree muted" }, "doctor could not run");
  const verdict = firstBlocked(docs) ? "blocked" : "allowed";
  const same = verdict === browser;
  return el("p", { class: `agree ${same ? "yes" : "no"}` },
    same ? `✓ corsproxy doctor agrees with your browser: ${verdict}`
      : `✗ corsproxy doctor says ${verdict}, your browser said ${browser}`);
}

function side(kind, title, target, run, docs, page) {
  const allowed = run.outcome === "allowed";
  const last = run.steps.at(-1);
  const pill = allowed ? `Allowed · ${last.status} ${last.statusText}`.trim() : "Blocked";
  const box = el("section", { class: `side ${kind} ${run.outcome}` },
    el("header", {}, el("h3", {}, title), code(target)),
    el("p", { class: `pill ${run.outcome}` }, pill));
  if (!allowed) box.append(el("p", { class: "js" }, "JavaScript got ", code(last.error)));
  box.append(...run.steps.filter((s) => s.ok || allowed).map(stepLine));
  if (!allowed) box.append(doctorBlock(docs, page) || el("p", { class: "muted" }, "doctor found nothing"));
  if (allowed && kind === "proxied") box.append(addedBy(docs));
  box.append(agreement(run.outcome, docs));
  return box;
}

function preflightBlock(diag) {
  const find = (docs) => (docs || []).find((doc) => doc.preflight && doc.preflight.request);
  const direct = find(diag.direct), proxied = find(diag.proxied);
  if (!direct && !proxied) return null;
  const asked = (proxied || direct).preflight.request;
  const answer = (doc, who) => {
    const response = doc && doc.preflight.response;
    if (!response) return el("div", {}, el("p", { class: "label" }, who), el("p", { class: "muted" }, "no answer"));
    return el("div", {},
      el("p", { class: "label" }, `${who} answers `, el("strong", {}, `${response.status} ${response.reason}`)),
      headerList(response.headers, (name) => CORS_NAME.test(name)));
  };
  return el("div", { class: "pf-grid" },
    el("div", {}, el("p", { class: "label" }, "The browser asks first: ", el("strong", {}, "OPTIONS")),
      headerList(asked.headers, (name) => ASKED.test(name))),
    answer(direct, "The backend"),
    answer(proxied, "corsproxy"));
}

// ---- one card, all cards -------------------------------------------------------------------

async function runCard(card, config) {
  const article = $(`article[data-card="${card.id}"]`);
  const result = $(".result", article);
  result.dataset.direct = result.dataset.proxied = "pending";
  delete result.dataset.finding;
  delete result.dataset.findings;
  result.replaceChildren(el("p", { class: "muted" }, "Running…"));
  const diagnosing = diagnose(card.id);
  const direct = await runSide(config.backend, card.requests);
  const proxied = await runSide(config.proxy, card.requests);
  const diag = await diagnosing;
  const blocked = firstBlocked(diag.direct);
  if (blocked) {
    result.dataset.finding = blocked.finding;
    result.dataset.findings = blocked.findings.map((f) => f.name).join(" ");
  }
  result.dataset.doctorDirect = firstBlocked(diag.direct) ? "blocked" : "allowed";
  result.dataset.doctorProxied = firstBlocked(diag.proxied) ? "blocked" : "allowed";
  result.replaceChildren(
    side("direct", "Straight to the backend", config.backend, direct, diag.direct, config.page),
    side("proxied", "Through corsproxy", config.proxy, proxied, diag.proxied, config.page));
  if (diag.error) result.append(el("p", { class: "muted wide" }, `doctor: ${diag.error}`));
  const pf = $("[data-preflight]", article);
  if (pf) pf.replaceChildren(...[preflightBlock(diag)].filter(Boolean));
  result.dataset.direct = direct.outcome;
  result.dataset.proxied = proxied.outcome;
  return direct.outcome === "blocked" && proxied.outcome === "allowed";
}

async function runAll(config) {
  const button = $("#run");
  button.disabled = true;
  document.body.dataset.done = "false";
  $("#summary").textContent = "Running the requests in your browser…";
  let asExpected = 0;
  for (const card of config.cards) { // one at a time: the login cookie must not race
    if (await runCard(card, config)) asExpected += 1;
  }
  const total = config.cards.length;
  $("#summary").textContent = asExpected === total
    ? `Done: all ${total} requests were blocked straight to the backend and allowed through corsproxy.`
    : `Done: ${asExpected} of ${total} cards behaved as expected.`;
  button.disabled = false;
  document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
  document.body.dataset.done = "true";
}

async function main() {
  let config;
  try {
    config = await (await fetch("/config.json", { cache: "no-store" })).json();
  } catch (error) {
    $("#summary").textContent = `Could not load /config.json: ${error}. Is corsproxy demo running?`;
    return;
  }
  for (const node of $$("[data-url]")) node.textContent = config[node.dataset.url];
  if (config.inspector) {
    $("#inspector").href = config.inspector;
    $(".inspector-link").hidden = false;
  }
  for (const node of $$("[data-origin]")) node.textContent = config.page;
  for (const card of config.cards) {
    const pre = $(`article[data-card="${card.id}"] [data-code]`);
    if (pre) pre.textContent = card.requests.map(fetchCode).join("\n// then\n");
  }
  $("#run").addEventListener("click", () => runAll(config));
  await runAll(config);
}

main();
