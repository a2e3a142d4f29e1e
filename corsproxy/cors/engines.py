"""The browser engines doctor speaks for, and where each departs from the Fetch standard.
Pure data for fetch.py (what needs a preflight) and judge.py (what a failure is called).

Every entry was observed in the e2e suite (tests/e2e/test_doctor_agrees.py) on the version
named in `checked`: Debian's chromium 150 and firefox-esr 140. Where a later version is known
to act otherwise, the entry says so, and doctor's words name both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Chromium still safelists these client hints with a well-formed value, as an older Fetch did
# (services/network/public/cpp/cors/cors.cc IsCorsSafelistedHeader); Fetch dropped them.
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_CLIENT_HINTS = {
    "dpr": _NUMBER,
    "device-memory": _NUMBER,
    "viewport-width": re.compile(r"[0-9]+"),
    "width": re.compile(r"[0-9]+"),
    "save-data": re.compile(r"on", re.IGNORECASE),
}
MAX_RANGE = 2**63 - 1  # both engines parse a range's numbers as signed 64-bit integers


@dataclass(frozen=True)
class Engine:
    """One engine: ENGINES[0].label == "Chromium 150"."""

    key: str  # the JSON key: "chromium", "firefox"
    name: str
    checked: str  # the version this behaviour was observed on
    client_hints: bool  # DPR, Device-Memory, Save-Data, Viewport-Width, Width go unpreflighted
    range_unit_any_case: bool  # "Range: BYTES=0-10" goes unpreflighted (Fetch: exactly "bytes")
    range_64_bits: bool  # a range number beyond 2**63 - 1 is preflighted (Fetch: unbounded)

    @property
    def label(self) -> str:
        return f"{self.name} {self.checked}"

    def safelists(self, name: str, value: str) -> str | None:
        """Why this engine sends (name, value) without a preflight although Fetch does not, or
        None when it follows Fetch for this header."""
        pattern = _CLIENT_HINTS.get(name)
        if self.client_hints and pattern is not None and pattern.fullmatch(value.strip()):
            return f"{self.label} still safelists the client hint {name}"
        if name == "range" and self.range_unit_any_case and value[:6].lower() == "bytes=":
            if value[:6] != "bytes=":
                return (
                    f"{self.label} reads the unit {value[:5]} in any case (Chromium 156 preflights"
                    " it, as Fetch says)"
                )
        return None


CHROMIUM = Engine("chromium", "Chromium", "150", True, True, True)
FIREFOX = Engine("firefox", "Firefox", "140 ESR", False, False, True)
ENGINES = (CHROMIUM, FIREFOX)
BY_KEY = {engine.key: engine for engine in ENGINES}


def labels(keys: tuple[str, ...] | list[str]) -> str:
    """ "Chromium 150 and Firefox 140 ESR" for the given keys."""
    return " and ".join(BY_KEY[key].label for key in keys)
