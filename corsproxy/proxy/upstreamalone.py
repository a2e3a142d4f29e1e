"""What the browser would have made of the upstream's own headers, judged once per kind of answer.

proxy/handler.py asks after each response from the upstream; cors/alone.py judges. The same
judgment feeds the log ("upstream alone: ... -> fixed") and the inspector (every finding).
"""

from __future__ import annotations

from corsproxy.cors import alone, policy
from corsproxy.proxy.accesslog import UpstreamAlone
from corsproxy.proxy.classify import Memo

# The inspector's view (every finding) and the log's (the first blocking one, or None).
Judged = tuple[alone.WithoutProxy, UpstreamAlone | None]


def upstream_alone(
    decision: policy.Decision,
    cookie: bool,
    upstream_headers: list[tuple[str, str]],
    judged: Memo[tuple, Judged],
) -> Judged | None:
    """The verdict on the upstream's own CORS and Vary headers; None without an Origin.

    The proxy cannot see the page's credentials mode. A request carrying cookies is judged as
    credentialed; any other is judged both ways when the rule allows credentials, and a failure
    that only a credentialed request would meet is said as such.
    """
    if decision.origin is None:
        return None
    # The verdict depends only on these: a backend answers the same way all day, so it is
    # judged once per origin, credentials mode and set of CORS headers it sent.
    cors = tuple(
        (lower, value)
        for name, value in upstream_headers
        if (lower := name.lower()).startswith("access-control-") or lower == "vary"
    )
    key = (decision, cookie, cors)
    found = judged.get(key)
    if found is None:
        may_credential = any(n == "Access-Control-Allow-Credentials" for n, _ in decision.headers)
        verdict = alone.judge_upstream(decision.origin, cookie, may_credential, cors)
        found = judged.keep(key, (verdict, for_the_log(verdict)))
    return found


def for_the_log(verdict: alone.WithoutProxy) -> UpstreamAlone | None:
    """The first blocking finding, as the access log says it; None when the upstream passes."""
    fatal = next((f for f in verdict.findings if f.fatal), None)
    if fatal is None:
        return None
    when = " for a credentialed request" if verdict.credentialed_only else ""
    return UpstreamAlone(fatal.name, fatal.detail, when)
