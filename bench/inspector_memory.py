"""The inspector's worst case (issue 15): 500 exchanges kept, each with 50 request and 50
response headers in its four header sets and 16 KiB previews of both bodies; the bytes the
full ring holds, by tracemalloc.

    python bench/inspector_memory.py
"""

from __future__ import annotations

import gc
import os
import tracemalloc

from corsproxy.config.model import Cors
from corsproxy.cors import policy
from corsproxy.inspector.preview import Preview
from corsproxy.inspector.store import Store
from corsproxy.proxy.accesslog import Entry

ORIGIN = "http://localhost:5173"
RULE = policy.compile_policy(Cors()).default
KEEP, PREVIEW, HEADERS = 500, 16384, 50


def exchange(number: int) -> Entry:
    """A POST as the handler leaves it, every part at its largest."""
    decision = policy.decide(RULE, "POST", ORIGIN)
    raw = tuple((f"X-Request-{n}".encode(), os.urandom(16).hex().encode()) for n in range(HEADERS))
    answer = [(f"X-Response-{n}", os.urandom(16).hex()) for n in range(HEADERS)]
    entry = Entry("POST", f"/api/items/{number}", ORIGIN, "allowed", [], 200, decision.verdict)
    entry.cors, entry.route = decision, "/"
    entry.request_headers = raw
    entry.from_browser = [(n.decode(), v.decode()) for n, v in raw]
    entry.to_upstream = list(entry.from_browser)
    entry.from_upstream, entry.to_browser = answer, policy.finish(decision, answer).headers
    entry.upstream_url = f"http://127.0.0.1:8000/api/items/{number}"
    for side in ("request_body", "response_body"):
        preview = Preview(PREVIEW, "application/json", 100_000)
        preview.feed(os.urandom(50_000).hex().encode())
        setattr(entry, side, preview)
    return entry


def main() -> None:
    store = Store(KEEP)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for number in range(KEEP + 100):  # the ring full, and the oldest ones dropped
        store.add(exchange(number))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    kept = len(store.ring)
    print(f"{kept} exchanges kept: {held / 2**20:.1f} MiB ({held / kept / 1024:.0f} KiB each)")


if __name__ == "__main__":
    main()
