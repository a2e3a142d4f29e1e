"""The catalog of CORS findings: each named as MDN and Firefox name it, with Chromium's console
sentence, a plain explanation and the fix. judge.py makes Finding values; doctor.py prints them."""

from __future__ import annotations

from dataclasses import dataclass

MDN_ERRORS = "https://developer.mozilla.org/en-US/docs/Web/HTTP/CORS/Errors/"

# Chromium builds its console message from a fixed opening, an optional preflight clause and
# the error's own sentence (third_party/blink/renderer/platform/loader/cors/cors_error_string.cc).
_POLICY = "Access to fetch at '{url}' from origin '{origin}' has been blocked by CORS policy: "
_PREFLIGHT = "Response to preflight request doesn't pass access control check: "
# Chromium appends this to errors about a bad Access-Control-Allow-Origin value. (Older
# versions went on with ", or, if an opaque response serves your needs, set the request's
# mode to 'no-cors' ..."; Chromium 156, checked in the browser suite, no longer does.)
_NO_CORS = " Have the server send the header with a valid value."
_DERIVED = " (corsproxy's own name: MDN has no page for this case.)"


@dataclass(frozen=True)
class FindingInfo:
    """One catalog entry: FINDINGS["CORSMissingAllowOrigin"].fix"""

    name: str
    chromium_message: str | None  # None: Chromium prints nothing (a non-fatal note)
    explanation: str
    mdn_url: str | None  # None: the name is derived by corsproxy
    fix: str

    @property
    def derived(self) -> bool:
        return self.mdn_url is None


@dataclass(frozen=True)
class Finding:
    """One check's outcome: Finding("CORSMethodNotFound", True, "lists GET", method="PUT")."""

    name: str
    fatal: bool
    detail: str
    value: str = ""
    method: str = ""
    header: str = ""
    preflight: bool = False  # found on the preflight's response
    names: tuple[tuple[str, str], ...] = ()  # (engine key, name) where an engine names it else
    only: tuple[str, ...] = ()  # the engines it applies to; () = every engine

    @property
    def info(self) -> FindingInfo:
        return FINDINGS[self.name]

    def applies_to(self, engine: str) -> bool:
        return not self.only or engine in self.only

    def name_in(self, engine: str) -> str:
        """What this engine's console calls it (Firefox's category, MDN's page name)."""
        return dict(self.names).get(engine, self.name)

    def message(self, url: str, origin: str, redirected_from: str | None = None) -> str:
        """Chromium's console sentence for this case ("" for a note Chromium does not print)."""
        template = self.info.chromium_message
        if template is None:
            return ""
        if self.preflight and self.name in _ORIGIN_CHECKS:
            template = template.replace(_POLICY, _POLICY + _PREFLIGHT, 1)
        if redirected_from and redirected_from != url:
            template = template.replace(
                "' from origin", "' (redirected from '{src}') from origin", 1
            )
        return template.format(
            url=url,
            origin=origin,
            src=redirected_from,
            value=self.value,
            method=self.method,
            header=self.header,
        )

    def short_message(self, url: str, origin: str) -> str:
        """The sentence without Chromium's "Access to fetch at ... by CORS policy:" opening."""
        text = self.message(url, origin)
        _, marker, rest = text.partition("has been blocked by CORS policy: ")
        return rest if marker else text


def _entry(
    name: str, chromium: str | None, explanation: str, fix: str, mdn: bool = True
) -> FindingInfo:
    url = MDN_ERRORS + name if mdn else None
    return FindingInfo(name, chromium, explanation if mdn else explanation + _DERIVED, url, fix)


_CATALOG = (
    _entry(
        "CORSMissingAllowOrigin",
        _POLICY + "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
        "The response has no Access-Control-Allow-Origin header, so the page may not read it.",
        "Send Access-Control-Allow-Origin with the page's origin on every response, errors"
        " included; with corsproxy in front, list the origin in cors.allow_origins.",
    ),
    _entry(
        "CORSAllowOriginNotMatchingOrigin",
        _POLICY + "The 'Access-Control-Allow-Origin' header has a value '{value}' that is not"
        " equal to the supplied origin." + _NO_CORS,
        "Access-Control-Allow-Origin names another origin; the browser compares it byte for"
        " byte with the page's origin (scheme, host, port, no path, no trailing slash).",
        "Echo the request's Origin when it is allowed (and send Vary: Origin); with corsproxy,"
        " add the page's origin to cors.allow_origins.",
    ),
    _entry(
        "CORSMultipleAllowOriginNotAllowed",
        _POLICY + "The 'Access-Control-Allow-Origin' header contains multiple values '{value}',"
        " but only one is allowed." + _NO_CORS,
        "Access-Control-Allow-Origin holds more than one value (sent twice, or as a list);"
        " a browser accepts exactly one origin, or *.",
        "Send the header once, with the one origin that matches the request; when two layers"
        " each add it, let one do it (corsproxy replaces the upstream's value, never adds one).",
    ),
    _entry(
        "CORSInvalidAllowOrigin",
        _POLICY + "The 'Access-Control-Allow-Origin' header contains the invalid value"
        " '{value}'." + _NO_CORS,
        "Access-Control-Allow-Origin is not an origin at all (an origin looks like"
        " https://app.example.com).",
        "Send scheme://host[:port] exactly as the browser sends it in the Origin header.",
        mdn=False,
    ),
    _entry(
        "CORSNotSupportingCredentials",
        _POLICY + "The value of the 'Access-Control-Allow-Origin' header in the response must not"
        " be the wildcard '*' when the request's credentials mode is 'include'.",
        "The request carries credentials (cookies, HTTP auth), and for such requests a"
        " literal * in Access-Control-Allow-Origin never matches.",
        "Echo the request's origin instead of *, with Access-Control-Allow-Credentials: true and"
        " Vary: Origin; corsproxy does this when cors.allow_credentials: true.",
    ),
    _entry(
        "CORSMissingAllowCredentials",
        _POLICY + "The value of the 'Access-Control-Allow-Credentials' header in the response is"
        " '{value}' which must be 'true' when the request's credentials mode is 'include'.",
        "The request carries credentials, but the response does not say"
        " Access-Control-Allow-Credentials: true (exactly that, lowercase, once).",
        "Send Access-Control-Allow-Credentials: true; with corsproxy, set"
        " cors.allow_credentials: true.",
    ),
    _entry(
        "CORSPreflightDidNotSucceed",
        _POLICY + _PREFLIGHT + "It does not have HTTP ok status.",
        "The OPTIONS preflight was answered with a status outside 200-299, so the browser"
        " never sends the real request.",
        "Answer OPTIONS with 204 (or 200) without asking for a login: a preflight never carries"
        " cookies or Authorization. corsproxy answers preflights itself.",
    ),
    _entry(
        "CORSExternalRedirectNotAllowed",
        _POLICY + _PREFLIGHT + "Redirect is not allowed for a preflight request.",
        "The OPTIONS preflight was answered with a redirect; browsers never follow a redirect"
        " for a preflight.",
        "Call the final URL directly (often a trailing slash or http -> https redirect), or answer"
        " OPTIONS at this URL with 204.",
    ),
    _entry(
        "CORSMethodNotFound",
        _POLICY + "Method {method} is not allowed by Access-Control-Allow-Methods in preflight"
        " response.",
        "The preflight's Access-Control-Allow-Methods does not list the request's method"
        " (compared case-sensitively; * counts only without credentials).",
        "List the method, spelled as the page sends it, in Access-Control-Allow-Methods; with"
        ' corsproxy, add it to cors.allow_methods (or keep the default "*").',
    ),
    _entry(
        "CORSInvalidAllowMethod",
        _POLICY + "Cannot parse Access-Control-Allow-Methods response header field in preflight"
        " response.",
        "Access-Control-Allow-Methods is not a comma-separated list of method tokens, so the"
        " browser treats the whole preflight as a network error.",
        "Send e.g. Access-Control-Allow-Methods: GET, POST, PATCH (commas between names, no"
        " other separators); with corsproxy, set cors.allow_methods.",
    ),
    _entry(
        "CORSInvalidAllowHeader",
        _POLICY + "Cannot parse Access-Control-Allow-Headers response header field in preflight"
        " response.",
        "Access-Control-Allow-Headers is not a comma-separated list of header names, so the"
        " browser treats the whole preflight as a network error.",
        "Send e.g. Access-Control-Allow-Headers: Content-Type, Authorization; with corsproxy,"
        " set cors.allow_headers.",
    ),
    _entry(
        "CORSMissingAllowHeaderFromPreflight",
        _POLICY + "Request header field {header} is not allowed by Access-Control-Allow-Headers"
        " in preflight response.",
        "The request sets a header that the preflight's Access-Control-Allow-Headers does not"
        " list (* counts only without credentials).",
        "Add the header name to Access-Control-Allow-Headers; with corsproxy, add it to"
        ' cors.allow_headers (or keep the default "*").',
    ),
    _entry(
        "CORSWildcardDoesNotCoverAuthorization",
        None,  # a warning: Chromium 150 says nothing, Firefox 140 warns (see the explanation)
        "Access-Control-Allow-Headers: * does not cover Authorization in the Fetch standard."
        " Chromium 150 and Firefox 140 ESR still let the request through (Firefox warns"
        " 'CORSAllowHeaderFromPreflightDeprecation'); browsers are expected to enforce the"
        " standard, and then this request breaks.",
        "Send Access-Control-Allow-Headers: *, Authorization (or list the names); corsproxy"
        ' echoes the requested names, so cors.allow_headers: "*" covers it.',
        mdn=False,
    ),
    _entry(
        "CORSRedirectContainsCredentials",
        # Chromium leaves the location out of this sentence (it would print the password).
        _POLICY + "Redirect location '' contains a username and password, which is"
        " disallowed for cross-origin requests.",
        "The redirect points at a URL with user:password@ in it, which a CORS request may not"
        " follow.",
        "Redirect to a URL without credentials and authenticate with a header or cookie.",
        mdn=False,
    ),
    _entry(
        "CORSDidNotSucceed",
        "{method} {url} net::{value}",
        "The exchange failed below HTTP (connection, TLS, or a broken redirect), so there was"
        " no response to check; in JavaScript fetch() rejects with TypeError: Failed to fetch.",
        "Make sure the server answers on that scheme and port; for a self-signed development"
        " certificate, trust it in the browser (--insecure only skips the check in doctor).",
    ),
    _entry(
        "CORSRequestNotHttp",
        'Fetch API cannot load {url}. URL scheme "{value}" is not supported.',
        "CORS requests work only for http:// and https:// URLs.",
        "Use an http(s) URL; serve local files from a development server instead of file://.",
    ),
    _entry(
        "CORSLocalNetworkAccessDenied",
        _POLICY + "Permission was denied for this request to access the `{value}` address space.",
        "Chromium 142+ (Local Network Access) lets a page reach a more private address space"
        " (a LAN page calling localhost, a public page calling either) only with the user's"
        " permission, and only a secure page (https, or localhost itself) can ask for it."
        " Firefox 140 ESR does not enforce this yet.",
        "Open the page on localhost (http://localhost:PORT) instead of its LAN address, or"
        " serve it over HTTPS (corsproxy serve --https for the API, your dev server's HTTPS"
        " option for the page) so Chromium can ask for the permission.",
        mdn=False,
    ),
    _entry(
        "CORSMissingVaryOrigin",
        None,
        "The response echoes the request's origin but has no Vary: Origin, so a cache may hand"
        " it to a page of another origin, which is then blocked.",
        "Send Vary: Origin whenever Access-Control-Allow-Origin depends on the request;"
        " corsproxy merges it into the upstream's Vary.",
        mdn=False,
    ),
    _entry(
        "CORSHeaderNotExposed",
        None,
        "The page's JavaScript cannot read these response headers: only the CORS-safelisted"
        " ones and those in Access-Control-Expose-Headers are exposed, Set-Cookie never.",
        "List them in Access-Control-Expose-Headers (* only without credentials); with"
        ' corsproxy, cors.expose_headers (the default "*" lists them by name).',
        mdn=False,
    ),
    _entry(
        "CORSMaxAgeCapped",
        None,
        "Access-Control-Max-Age asks for more than Chrome honours: it caches a preflight for"
        " at most 7200 s (2 hours), Firefox for 86400 s.",
        "Send 7200 or less; with corsproxy, cors.max_age (default 600).",
        mdn=False,
    ),
)

FINDINGS: dict[str, FindingInfo] = {info.name: info for info in _CATALOG}

# The origin checks that Chromium reports with its "Response to preflight request ..." clause
# when they fail on the preflight rather than on the actual response.
_ORIGIN_CHECKS = frozenset(
    {
        "CORSMissingAllowOrigin",
        "CORSAllowOriginNotMatchingOrigin",
        "CORSMultipleAllowOriginNotAllowed",
        "CORSInvalidAllowOrigin",
        "CORSNotSupportingCredentials",
        "CORSMissingAllowCredentials",
    }
)
