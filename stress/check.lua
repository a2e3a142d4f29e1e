-- wrk script for stress/load.py: one kind of request per wrk process (KIND=get|post|preflight),
-- every response checked; done() prints one line "check {json}" with the counts.
local kind = os.getenv("KIND") or "get"
local origin = os.getenv("ORIGIN") or "http://localhost:5173"
local body_size = tonumber(os.getenv("BODY_SIZE") or "4096")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  checked, bad_status, bad_cors, bad_body, closed = 0, 0, 0, 0, 0
  local headers = { ["Origin"] = origin }
  if kind == "post" then
    headers["Content-Type"] = "application/json"
    req = wrk.format("POST", "/echo", headers, string.rep("x", body_size))
  elseif kind == "preflight" then
    headers["Access-Control-Request-Method"] = "PUT"
    headers["Access-Control-Request-Headers"] = "content-type, x-token"
    req = wrk.format("OPTIONS", "/item", headers)
  else
    req = wrk.format("GET", "/item", headers)
  end
end

function request()
  return req
end

local function lower(headers)
  local out = {}
  for name, value in pairs(headers) do out[string.lower(name)] = value end
  return out
end

function response(status, headers, body)
  checked = checked + 1
  local h = lower(headers)
  local want = (kind == "preflight") and 204 or 200
  if status ~= want then bad_status = bad_status + 1 end
  if h["access-control-allow-origin"] ~= origin then bad_cors = bad_cors + 1 end
  if kind == "preflight" and h["access-control-allow-methods"] ~= "PUT" then
    bad_cors = bad_cors + 1
  end
  if kind == "post" and h["x-body-length"] ~= tostring(body_size) then bad_body = bad_body + 1 end
  if kind == "get" and not string.find(body or "", '"ok": true', 1, true) then
    bad_body = bad_body + 1
  end
  if h["connection"] and string.lower(h["connection"]) == "close" then closed = closed + 1 end
end

function done(summary, latency, requests)
  local t = { checked = 0, bad_status = 0, bad_cors = 0, bad_body = 0, closed = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(t) do t[name] = t[name] + thread:get(name) end
  end
  local e = summary.errors
  io.write(string.format(
    'check {"kind": "%s", "requests": %d, "checked": %d, "bad_status": %d, "bad_cors": %d, ' ..
    '"bad_body": %d, "closed": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
    '"status_errors": %d, "p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    kind, summary.requests, t.checked, t.bad_status, t.bad_cors, t.bad_body, t.closed,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
