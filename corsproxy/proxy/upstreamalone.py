"""What the browser would have made of the upstream's own headers: the log's "upstream alone".

proxy/handler.py asks after each response from the upstream; cors/judge.py does the judging.
"""

from __future__ import annotations

from corsproxy.cors import judge, policy
from corsproxy.proxy.accesslog import UpstreamAlone
from corsproxy.proxy.classify import Memo


def upstream_alone(
    decision: policy.Decision,
    cookie: bool,
    upstream_headers: list[tuple[str, str]],
    judged: Memo[tuple, UpstreamAlone | None],
) -> UpstreamAlone | None:
    """What the browser would have made of the upstream's own headers, for the log line.

    The proxy cannot see the page's credentials mode. A request carrying cookies is judged as
    credentialed; any other is judged both ways when the rule allows credentials, and a failure
    that only a credentialed request would meet is said as such.
    """
    if decision.verdict is not policy.Verdict.ALLOWED or decision.origin is None:
        return None
    # The verdict depends only on these: a backend answers the same way all day, so it is
    # judged once per origin, credentials mode and set of CORS headers it sent.
    cors = tuple(
        (lower, value)
        for name, value in upstream_headers
        if (lower := name.lower()).startswith("access-control-") or lower == "vary"
    )
    key = (decision, cookie, cors)
    if key in judged:
        return judged[key]
    return judged.keep(key, _judge_upstream(decision, cookie, list(cors)))


def _judge_upstream(
    decision: policy.Decision, cookie: bool, cors: list[tuple[str, str]]
) -> UpstreamAlone | None:
    assert decision.origin is not None
    modes = [True] if cookie else [False]
    if modes == [False] and any(
        n == "Access-Control-Allow-Credentials" for n, _ in decision.headers
    ):
        modes.append(True)
    for credentials in modes:
        for finding in judge.check_cors(decision.origin, credentials, cors):
            if finding.fatal:
                when = " for a credentialed request" if credentials and len(modes) > 1 else ""
                return UpstreamAlone(finding.name, finding.detail, when)
    return None
