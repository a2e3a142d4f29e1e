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

// Init scripts may run wrapped in a function: make the helpers global explicitly.
Object.assign(globalThis, { call, pattern, sha256, download, upload, websocketEcho });
