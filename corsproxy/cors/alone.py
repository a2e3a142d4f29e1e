"""What the browser would have made of the upstream's own answer, had the page called it directly.

proxy.handler judges each forwarded response once per kind of answer (see Proxy._judged); the
access log says the first blocking finding, the inspector shows them all. Pure: plain data in,
a WithoutProxy value out, built on judge.check_cors() as doctor's verdicts are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from corsproxy.cors.findings import Finding
from corsproxy.cors.judge import check_cors

# The network error Chromium reports for each way an upstream fails (net/base/net_error_list.h);
# the keys are gateway.GatewayError.error, the proxy's own words for the failure.
NET_ERRORS = {
    "upstream unreachable": "ERR_CONNECTION_REFUSED",
    "upstream host not found": "ERR_NAME_NOT_RESOLVED",
    "upstream timed out": "ERR_TIMED_OUT",
    "upstream TLS certificate rejected": "ERR_CERT_AUTHORITY_INVALID",
    "upstream TLS handshake failed": "ERR_SSL_PROTOCOL_ERROR",
    "upstream broke off": "ERR_EMPTY_RESPONSE",
    "upstream sent an invalid response": "ERR_INVALID_HTTP_RESPONSE",
}


@dataclass(frozen=True, slots=True)
class WithoutProxy:
    """WithoutProxy("blocked", (Finding(...),)): the verdict and every finding behind it.

    credentialed_only: the proxy cannot see a page's credentials mode; a request without cookies
    passes, and would be blocked only if the page sent it with credentials: "include".
    """

    verdict: Literal["allowed", "blocked"]
    findings: tuple[Finding, ...] = ()
    credentialed_only: bool = False


ALLOWED = WithoutProxy("allowed")


def judge_upstream(
    origin: str, cookie: bool, may_credential: bool, cors: Sequence[tuple[str, str]]
) -> WithoutProxy:
    """The CORS check on the upstream's own CORS and Vary headers.

    A request carrying cookies is judged as credentialed; any other as not, and also as
    credentialed when the proxy's rule allows credentials (`may_credential`): a failure that only
    a credentialed request meets is kept, marked credentialed_only.
    """
    found = tuple(check_cors(origin, cookie, list(cors)))
    if any(f.fatal for f in found):
        return WithoutProxy("blocked", found)
    if not cookie and may_credential:
        with_credentials = tuple(check_cors(origin, True, list(cors)))
        if any(f.fatal for f in with_credentials):
            return WithoutProxy("blocked", with_credentials, credentialed_only=True)
    return WithoutProxy("allowed", found)


def unreachable(error: str, detail: str, method: str) -> WithoutProxy:
    """An upstream that gave no answer: the page's fetch() would fail with a network error."""
    code = NET_ERRORS.get(error, "ERR_FAILED")
    finding = Finding("CORSDidNotSucceed", True, f"{error}: {detail}", code, method=method)
    return WithoutProxy("blocked", (finding,))
