"""The kept exchanges: a ring of the last `inspector.keep`, and who is listening for new ones.

Proxy.handle() hands each finished Entry to Store.add(); the web layer (web.py) reads the ring
and subscribes its event streams. Pairing links each preflight to the request that followed
it; it runs over the records in order, so that with several workers it can pair a preflight one
worker answered with the request another one served. No I/O here.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from corsproxy.inspector.record import to_json
from corsproxy.proxy.accesslog import Entry

Record = dict[str, Any]
# ("exchange", record) per finished exchange, ("clear", None), ("reload", {"message": ...}).
Event = tuple[str, Any]
Subscriber = Callable[[Event], None]
# A browser sends the actual request right after its preflight even when max-age is 0 (the
# answer is then used once, not cached); the pairing window is never shorter than this.
MIN_PAIR_SECONDS = 10.0
OPEN_PREFLIGHTS = 4096  # preflights waiting for their request, at most


class Store:
    """Store(keep=500): add(entry) keeps it (the oldest goes), since(id) lists the newer ones."""

    def __init__(
        self, keep: int, scheme: str = "http", ids: Callable[[], int] | None = None
    ) -> None:
        self.ring: deque[Entry] = deque(maxlen=keep)
        self.keep = keep
        self.scheme = scheme
        self._ids = ids or itertools.count(1).__next__
        self._subscribers: list[Subscriber] = []

    def add(self, entry: Entry) -> None:
        """Keep a finished exchange and tell each subscriber; its JSON is made once, and only
        when someone listens."""
        entry.id = self._ids()
        self.ring.append(entry)
        if self._subscribers:
            record = to_json(entry, self.scheme)
            for subscriber in list(self._subscribers):
                subscriber(("exchange", record))

    def since(self, after: int = 0) -> list[Record]:
        """The kept exchanges newer than id `after`, oldest first, as JSON data."""
        return [to_json(entry, self.scheme) for entry in self.ring if entry.id > after]

    def find(self, exchange_id: int) -> Entry | None:
        for entry in self.ring:
            if entry.id == exchange_id:
                return entry
        return None

    def clear(self) -> None:
        self.ring.clear()
        self.publish(("clear", None))

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            subscriber(event)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call subscriber(event) for each new event; returns the function that stops it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe


class Pairing:
    """Links each granted preflight to the next request of the same origin, path and method
    that starts within the preflight's max-age (at least MIN_PAIR_SECONDS).

    feed(record) in the order the exchanges finished; it sets record["pair"] on a request
    that followed a preflight and returns the preflight's id (whose own "pair" is then the
    request's id: see link()).
    """

    def __init__(self) -> None:
        # Oldest first: two pages (or a page and doctor) may preflight the same URL at once.
        self._open: dict[tuple[str, str, str], deque[tuple[int, float]]] = {}
        self._count = 0

    def feed(self, record: Record) -> int | None:
        origin = record.get("origin")
        if origin is None:
            return None
        preflight = record.get("preflight")
        if preflight is not None:
            if record["decision"] == "preflight" and preflight.get("method"):
                if self._count >= OPEN_PREFLIGHTS:
                    self._forget(record["started"])
                window = max(preflight.get("max_age") or 0, MIN_PAIR_SECONDS) * 1000
                key = (origin, record["path"], preflight["method"].upper())
                self._open.setdefault(key, deque()).append(
                    (record["id"], record["started"] + window)
                )
                self._count += 1
            return None
        key = (origin, record["path"], record["method"].upper())
        waiting = self._open.get(key)
        while waiting:
            preflight_id, until = waiting.popleft()
            self._count -= 1
            if record["started"] <= until:
                if not waiting:
                    del self._open[key]
                record["pair"] = preflight_id
                return preflight_id
        self._open.pop(key, None)
        return None

    def _forget(self, now: float) -> None:
        """Drop the expired; if none had expired, every one (a flood of unanswered preflights)."""
        for key in list(self._open):
            kept = deque(item for item in self._open[key] if item[1] >= now)
            if kept:
                self._open[key] = kept
            else:
                del self._open[key]
        self._count = sum(len(waiting) for waiting in self._open.values())
        if self._count >= OPEN_PREFLIGHTS:
            self._open.clear()
            self._count = 0


def link(records: Iterable[Record], pairing: Pairing | None = None) -> list[Record]:
    """Pair a run of records in order: each request gets its preflight's id, each preflight
    the id of its request."""
    pairing = pairing or Pairing()
    out = list(records)
    requests_of: dict[int, int] = {}
    for record in out:
        preflight_id = pairing.feed(record)
        if preflight_id is not None:
            requests_of[preflight_id] = record["id"]
    for record in out:
        if record["id"] in requests_of:
            record["pair"] = requests_of[record["id"]]
    return out
