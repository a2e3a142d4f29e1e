// The helpers the browser tests call with page.evaluate(). conftest.py injects this file
// into every document of a test's browser context (add_init_script), so they exist on the
// test page and on any other document, e.g. the proxy's own 403 answer. Each returns only
// what JavaScript on that origin is allowed to see.
"use strict";

// fetch(), then what the page can read: status, readable headers, body; or the TypeError.
async function call(url, init = {}) {
  try {
    const response = await fetch(url, init);
    const headers = {};
    response.headers.forEach((value, name) => { headers[name] = value; });
    return { status: response.status, headers, body: await response.text() };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

// The bytes servers.pattern() builds: byte i is i % 251.
function pattern(size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes;
}

async function sha256(data) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function download(url) {
  try {
    const response = await fetch(url);
    const data = await response.arrayBuffer();
    return { status: response.status, size: data.byteLength, sha256: await sha256(data) };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

async function upload(url, size) {
  const data = pattern(size);
  const sent = await sha256(data);
  const headers = { "Content-Type": "application/octet-stream" };
  const answer = await call(url, { method: "POST", headers, body: data });
  return { sent, ...answer };
}

// Open a WebSocket, send one message, close after the echo: the events in order.
function websocketEcho(url, message) {
  return new Promise((resolve) => {
    const events = [];
    const socket = new WebSocket(url);
    socket.onopen = () => { events.push("open"); socket.send(message); };
    socket.onmessage = (event) => { events.push(`message ${event.data}`); socket.close(1000); };
    socket.onerror = () => { events.push("error"); };
    socket.onclose = (event) => { events.push(`close ${event.code}`); resolve(events); };
  });
}

// fetch() that may be redirected: where it ended up, as the page sees it; or the TypeError.
async function follow(url, init = {}) {
  try {
    const response = await fetch(url, init);
    return {
      status: response.status,
      url: response.url,
      redirected: response.redirected,
      body: await response.text(),
    };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

// A promise that settles with `value` after `ms` unless `promise` settles first: a hang
// becomes a failed assertion with what arrived so far, never a stuck test.
function within(ms, promise, value) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(value()), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// new EventSource(url, {withCredentials}); each `tick` event is acknowledged with a POST to
// ack(n) before the next can exist; resolves at `done` with what arrived, in order.
function eventStream(url, ackUrl, { withCredentials = true, timeoutMs = 10000 } = {}) {
  const seen = [];
  let source;
  const run = new Promise((resolve) => {
    source = new EventSource(url, { withCredentials });
    source.addEventListener("tick", async (event) => {
      const data = JSON.parse(event.data);
      seen.push({ id: event.lastEventId, ...data });
      const acked = await call(`${ackUrl}&n=${data.n}`, { method: "POST", credentials: "include" });
      if (acked.error) seen.push({ ackError: acked.error });
    });
    source.addEventListener("done", () => { source.close(); resolve({ events: seen, end: "done" }); });
    source.onerror = () => {
      // A CORS failure closes the source for good; a network error would make it reconnect.
      if (source.readyState === EventSource.CLOSED) resolve({ events: seen, end: "error" });
    };
  });
  return within(timeoutMs, run, () => {
    source.close();
    return { events: seen, end: "timeout" };
  });
}

// A WebSocket session: send each item once the previous one was echoed (a string as text,
// an array of numbers as one binary frame), then close with `close` = [code, reason] or,
// with close null, wait for the server to close. Resolves with the events in order.
function websocketSession(url, { protocols = [], send = [], close = null, timeoutMs = 10000 } = {}) {
  const events = [];
  let socket;
  const run = new Promise((resolve) => {
    socket = new WebSocket(url, protocols);
    socket.binaryType = "arraybuffer";
    const next = () => {
      if (send.length === 0) {
        if (close) socket.close(...close);
        return;
      }
      const item = send.shift();
      socket.send(typeof item === "string" ? item : new Uint8Array(item));
    };
    socket.onopen = () => { events.push(`open ${socket.protocol}`); next(); };
    socket.onmessage = (event) => {
      events.push(
        typeof event.data === "string"
          ? `text ${event.data}`
          : `binary ${Array.from(new Uint8Array(event.data)).join(",")}`,
      );
      next();
    };
    socket.onerror = () => { events.push("error"); };
    socket.onclose = (event) => {
      events.push(`close ${event.code} ${event.reason} clean=${event.wasClean}`);
      resolve(events);
    };
  });
  return within(timeoutMs, run, () => {
    socket.close();
    return [...events, "timeout"];
  });
}

// Init scripts may run wrapped in a function: make the helpers global explicitly.
Object.assign(globalThis, {
  call,
  pattern,
  sha256,
  download,
  upload,
  websocketEcho,
  follow,
  within,
  eventStream,
  websocketSession,
});
