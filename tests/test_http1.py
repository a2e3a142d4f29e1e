"""Table tests for the HTTP/1.1 wire functions of the upstream side (RFC 9112): the head
serialisers, and the rules responseparser.py adds to llhttp's (method, interim heads, reuse, limits)."""

from __future__ import annotations

import pytest

from corsproxy.http import wire
from corsproxy.http.responseparser import ResponseParser, parse_response_head
from corsproxy.http.wire import (
    MAX_HEAD,
    MAX_LINE,
    Framing,
    HeadTooLarge,
    InvalidResponse,
    request_head,
)

# request_head


REQUEST_ROWS = [
    (
        "GET with headers in the order given",
        "GET",
        "/api/items?page=2",
        [("Host", "backend:8000"), ("Accept", "*/*")],
        b"GET /api/items?page=2 HTTP/1.1\r\nHost: backend:8000\r\nAccept: */*\r\n\r\n",
    ),
    (
        "POST with a body length",
        "POST",
        "/upload",
        [("Host", "backend"), ("Content-Type", "application/json"), ("Content-Length", "2")],
        b"POST /upload HTTP/1.1\r\nHost: backend\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n",
    ),
    ("no headers at all", "OPTIONS", "*", [], b"OPTIONS * HTTP/1.1\r\n\r\n"),
    (
        "a tab and an empty value are allowed",
        "GET",
        "/",
        [("X-Tab", "a\tb"), ("X-Empty", "")],
        b"GET / HTTP/1.1\r\nX-Tab: a\tb\r\nX-Empty: \r\n\r\n",
    ),
    (
        "a non-ASCII value (UTF-8, surrogate escapes) goes out as the browser's bytes",
        "GET",
        "/",
        [
            ("X-Latin1", b"caf\xe9".decode("utf-8", "surrogateescape")),
            ("X-Utf8", b"caf\xc3\xa9".decode("utf-8", "surrogateescape")),
        ],
        b"GET / HTTP/1.1\r\nX-Latin1: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
    ),
    (
        "a non-ASCII target goes out as the browser's bytes",
        "GET",
        b"/caf\xe9".decode("utf-8", "surrogateescape"),
        [],
        b"GET /caf\xe9 HTTP/1.1\r\n\r\n",
    ),
]


@pytest.mark.parametrize(
    "method,target,headers,expected",
    [r[1:] for r in REQUEST_ROWS],
    ids=[r[0] for r in REQUEST_ROWS],
)
def test_request_head_bytes(method, target, headers, expected):
    assert request_head(method, target, headers) == expected


SPLITTING_ROWS = [
    # id, method, target, headers: no request splitting, wherever the control character is
    ("CRLF in a value", "GET", "/", [("X-A", "1\r\nX-Injected: 2")]),
    (
        "CRLF CRLF in a value starts a second request",
        "GET",
        "/",
        [("X-A", "1\r\n\r\nGET /evil HTTP/1.1")],
    ),
    ("CRLF in a name", "GET", "/", [("X-A\r\nX-Injected", "2")]),
    ("CRLF in the target", "GET", "/a HTTP/1.1\r\nX-Injected: 2", []),
    ("CRLF in the method", "GET / HTTP/1.1\r\nX-Injected: 2\r\n\r\nGET", "/", []),
    ("bare LF in a value", "GET", "/", [("X-A", "1\nX-Injected: 2")]),
    ("bare CR in a value", "GET", "/", [("X-A", "1\rX-Injected: 2")]),
    ("NUL in a value", "GET", "/", [("X-A", "1\x00")]),
    ("DEL in a value", "GET", "/", [("X-A", "1\x7f")]),
    ("LF in the target", "GET", "/a\nb", []),
]


@pytest.mark.parametrize(
    "method,target,headers", [r[1:] for r in SPLITTING_ROWS], ids=[r[0] for r in SPLITTING_ROWS]
)
def test_request_head_refuses_control_characters(method, target, headers):
    with pytest.raises(ValueError, match="control character"):
        request_head(method, target, headers)


# response_head

RESPONSE_HEAD_ROWS = [
    (
        "the upstream's reason and headers as given",
        (200, "Fine", [("Content-Type", "text/plain"), ("set-cookie", "a=1")]),
        b"HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nset-cookie: a=1\r\n\r\n",
    ),
    ("no reason: the standard phrase", (404, None, []), b"HTTP/1.1 404 Not Found\r\n\r\n"),
    ("an empty reason stays empty", (200, "", []), b"HTTP/1.1 200 \r\n\r\n"),
    ("no standard phrase for the status", (599, None, []), b"HTTP/1.1 599 \r\n\r\n"),
    (
        "non-ASCII bytes from the upstream go back out unchanged",
        (201, "Cr\udce9\udce9", [("X-Name", "caf\udce9")]),
        b"HTTP/1.1 201 Cr\xe9\xe9\r\nX-Name: caf\xe9\r\n\r\n",
    ),
]


@pytest.mark.parametrize(
    "args,expected", [r[1:] for r in RESPONSE_HEAD_ROWS], ids=[r[0] for r in RESPONSE_HEAD_ROWS]
)
def test_response_head_bytes(args, expected):
    assert wire.response_head(*args) == expected


@pytest.mark.parametrize(
    "args",
    [
        (200, "OK", [("X-A", "1\r\nSet-Cookie: evil=1")]),
        (200, "OK\r\nSet-Cookie: evil=1", []),
        (200, "OK", [("X-A\nB", "1")]),
        (200, "OK", [("X-A", "\x00")]),
    ],
    ids=["CRLF in a value", "CRLF in the reason", "LF in a name", "NUL in a value"],
)
def test_response_head_refuses_control_characters(args):
    with pytest.raises(ValueError, match="control character"):
        wire.response_head(*args)


# ResponseParser: when the head is complete, and what is not HTTP at all


def fed(pieces: list[bytes], method: str = "GET") -> ResponseParser:
    """A parser fed the pieces as they would arrive."""
    parser = ResponseParser(method)
    for piece in pieces:
        parser.feed(piece)
    return parser


HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"

ARRIVAL_ROWS = [
    # id, pieces, whether the head is complete, the body bytes so far
    ("nothing yet", [b""], False, b""),
    ("a prefix of HTTP/ shorter than 5 bytes", [b"HTT"], False, b""),
    ("status line only", [b"HTTP/1.1 200 OK\r\n"], False, b""),
    ("head without its blank line", [HEAD[:-2]], False, b""),
    ("complete head", [HEAD], True, b""),
    ("complete head and body bytes after it", [HEAD + b"ok"], True, b"ok"),
    ("the first blank line ends the head", [HEAD + b"\r\n\r\n"], True, b"\r\n"),
    ("split CRLF|CRLF", [HEAD[:-2], HEAD[-2:]], True, b""),
    ("split CR|LFCRLF", [HEAD[:-3], HEAD[-3:]], True, b""),
    ("split CRLFCR|LF", [HEAD[:-1], HEAD[-1:]], True, b""),
    ("one byte at a time", [bytes([b]) for b in HEAD + b"ok"], True, b"ok"),
]


@pytest.mark.parametrize(
    "pieces,complete,body", [r[1:] for r in ARRIVAL_ROWS], ids=[r[0] for r in ARRIVAL_ROWS]
)
def test_head_complete_after(pieces, complete, body):
    parser = fed(pieces)
    assert (parser.head is not None, b"".join(parser.take())) == (complete, body)


def test_head_complete_across_arrivals_and_bytes_beyond_a_204():
    """The way client.py feeds it: each arrival as it comes; a 204 has no body, so whatever
    follows its head is beyond the response (the connection is out of step)."""
    parser = ResponseParser("GET")
    states = []
    for piece in (b"HTTP/1.1 204 No Content\r\n", b"X-A: 1\r\n", b"\r", b"\n", b"extra"):
        parser.feed(piece)
        states.append((parser.head is not None, parser.done, parser.beyond))
    assert states == [
        (False, False, False),
        (False, False, False),
        (False, False, False),
        (True, True, False),
        (True, True, True),
    ]


NOT_HTTP_ROWS = [
    ("TLS handshake bytes", b"\x16\x03\x01\x02\x00\x01"),
    ("an HTML page", b"<html><body>hi</body></html>\r\n\r\n"),
    ("lowercase http", b"http/1.1 200 OK\r\n\r\n"),
    ("SSH banner", b"SSH-2.0-OpenSSH_9.6\r\n"),
    ("five bytes are enough to tell", b"HTTP "),
    ("RTSP, which llhttp would take", b"RTSP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
]


@pytest.mark.parametrize("buffer", [r[1] for r in NOT_HTTP_ROWS], ids=[r[0] for r in NOT_HTTP_ROWS])
def test_what_is_not_http_is_refused_at_once(buffer):
    with pytest.raises(InvalidResponse, match="not an HTTP response"):
        fed([buffer])


def test_a_head_growing_past_max_head_is_refused():
    """A head that never ends is refused once MAX_HEAD bytes came, not buffered forever."""
    with pytest.raises(HeadTooLarge, match="longer than 256 KiB"):
        fed([b"HTTP/1.1 200 OK\r\n", b"X-Big: " + b"a" * MAX_HEAD])


def test_a_complete_head_over_max_head_is_refused_even_in_one_arrival():
    fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(300))
    with pytest.raises(HeadTooLarge):
        fed([b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n"])


def test_a_head_up_to_max_head_is_waited_for():
    buffer = b"HTTP/1.1 200 OK\r\n" + b"a" * (MAX_HEAD - 17)
    assert len(buffer) == MAX_HEAD
    assert fed([buffer]).head is None


def test_a_head_just_under_max_head_is_taken():
    fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(250))
    parser = fed([b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n"])
    assert parser.head is not None and len(parser.head.headers) == 251


def test_equal_content_lengths_split_across_arrivals():
    """llhttp refuses a repeated Content-Length; the head is held until complete, merged."""
    parser = fed(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-",
            b"Length: 5\r\nX-After: 1\r\n\r\nhel",
            b"lo",
        ]
    )
    assert parser.head is not None
    assert parser.head.headers == [("Content-Length", "5"), ("X-After", "1")]
    assert (b"".join(parser.take()), parser.done, parser.beyond) == (b"hello", True, False)


BODY_ROWS = [
    # id, method, response, (body, done, beyond)
    ("Content-Length", "GET", HEAD + b"ok", (b"ok", True, False)),
    ("bytes beyond Content-Length", "GET", HEAD + b"okjunk", (b"ok", True, True)),
    ("HEAD: no body, whatever the head says", "HEAD", HEAD, (b"", True, False)),
    ("HEAD: body bytes are beyond the response", "HEAD", HEAD + b"ok", (b"", True, True)),
    ("until close: never done", "GET", b"HTTP/1.1 200 OK\r\n\r\nsome", (b"some", False, False)),
    (
        "interim heads are skipped",
        "GET",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        + HEAD
        + b"ok",
        (b"ok", True, False),
    ),
    (
        "101: what follows is another protocol's",
        "GET",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
        (b"", True, True),
    ),
]


@pytest.mark.parametrize(
    "method,response,expected", [r[1:] for r in BODY_ROWS], ids=[r[0] for r in BODY_ROWS]
)
def test_body_end_and_bytes_beyond(method, response, expected):
    parser = fed([response], method)
    assert (b"".join(parser.take()), parser.done, parser.beyond) == expected


def test_the_final_head_follows_interim_ones():
    parser = fed([b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + HEAD])
    assert parser.interim is not None and parser.interim.status == 103
    assert parser.head is not None and parser.head.headers == [("Content-Length", "2")]


# parse_response_head


def head_of(*lines: str | bytes) -> bytes:
    """A response head from its lines, the blank line added."""
    raw = [line.encode() if isinstance(line, str) else line for line in lines]
    return b"\r\n".join(raw) + b"\r\n\r\n"


STATUS_ROWS = [
    ("HTTP/1.1 200 OK", "HTTP/1.1 200 OK", (1, 200, "OK")),
    ("HTTP/1.0 404", "HTTP/1.0 404 Not Found", (0, 404, "Not Found")),
    ("reason with spaces and tab", "HTTP/1.1 418 I'm a\tteapot ", (1, 418, "I'm a\tteapot ")),
    ("empty reason after the space", "HTTP/1.1 200 ", (1, 200, "")),
    ("no reason and no space", "HTTP/1.1 200", (1, 200, "")),
    ("a reason that is not UTF-8 is read as Latin-1", b"HTTP/1.1 200 Gr\xfc\xdf", (1, 200, "Grüß")),
    ("a UTF-8 reason", "HTTP/1.1 200 Grüß".encode(), (1, 200, "Grüß")),
    ("status 599", "HTTP/1.1 599 Whatever", (1, 599, "Whatever")),
]


@pytest.mark.parametrize(
    "status_line,expected", [r[1:] for r in STATUS_ROWS], ids=[r[0] for r in STATUS_ROWS]
)
def test_status_line(status_line, expected):
    head = parse_response_head(head_of(status_line, "Content-Length: 0"), "GET")
    assert (head.version, head.status, head.reason) == expected


HEADER_ROWS = [
    (
        "names and order kept, values stripped of OWS",
        ["X-One:  a b ", "x-two:\tc\t", "X-Empty:", "X-One: again"],
        [("X-One", "a b"), ("x-two", "c"), ("X-Empty", ""), ("X-One", "again")],
    ),
    ("a colon inside the value", ["Location: http://h:1/p"], [("Location", "http://h:1/p")]),
    (
        # aiohttp's server would drop undecodable characters on the way out; Latin-1 keeps é.
        "a value that is not UTF-8 is read as Latin-1, that line only",
        [b"Content-Disposition: attachment; filename=caf\xe9.txt", b"X-Utf8: caf\xc3\xa9"],
        [("Content-Disposition", "attachment; filename=café.txt"), ("X-Utf8", "café")],
    ),
    ("a UTF-8 value", [b"X-Name: \xe2\x9c\x93 done"], [("X-Name", "✓ done")]),
    (
        "a value at MAX_LINE is accepted",
        ["X-Long: " + "a" * (MAX_LINE - 8)],
        [("X-Long", "a" * (MAX_LINE - 8))],
    ),
]


@pytest.mark.parametrize(
    "lines,expected", [r[1:] for r in HEADER_ROWS], ids=[r[0] for r in HEADER_ROWS]
)
def test_header_lines(lines, expected):
    head = parse_response_head(head_of("HTTP/1.1 200 OK", *lines), "GET")
    assert head.headers == expected


INVALID_ROWS = [
    ("two-digit status", ["HTTP/1.1 20 OK"]),
    ("four-digit status", ["HTTP/1.1 2000 OK"]),
    ("status below 100", ["HTTP/1.1 099 Odd", "Content-Length: 5"]),
    ("status 000", ["HTTP/1.1 000 Odd", "Content-Length: 5"]),
    ("status in words", ["HTTP/1.1 two hundred OK"]),
    ("HTTP/2.0", ["HTTP/2.0 200 OK"]),
    ("HTTP/1.2", ["HTTP/1.2 200 OK"]),
    ("HTTP/1 without minor version", ["HTTP/1 200 OK"]),
    ("lowercase http", ["http/1.1 200 OK"]),
    ("two spaces before the status", ["HTTP/1.1  200 OK"]),
    ("leading space", [" HTTP/1.1 200 OK"]),
    ("control character in the reason", [b"HTTP/1.1 200 O\x01K"]),
    ("header without a colon", ["HTTP/1.1 200 OK", "X-No-Colon"]),
    ("empty header name", ["HTTP/1.1 200 OK", ": value"]),
    ("space before the colon", ["HTTP/1.1 200 OK", "X-A : 1"]),
    ("tab before the colon", ["HTTP/1.1 200 OK", "X-A\t: 1"]),
    ("obs-fold continuation line", ["HTTP/1.1 200 OK", "X-A: 1", " folded"]),
    ("obs-fold continuation with a colon", ["HTTP/1.1 200 OK", "X-A: 1", "\tX-B: 2"]),
    ("NUL in a value", ["HTTP/1.1 200 OK", b"X-A: a\x00b"]),
    ("bare LF in a value", ["HTTP/1.1 200 OK", b"X-A: a\nX-B: b"]),
    ("bare CR in a value", ["HTTP/1.1 200 OK", b"X-A: a\rb"]),
    ("ESC in a value", ["HTTP/1.1 200 OK", b"X-A: a\x1bb"]),
    ("DEL in a value", ["HTTP/1.1 200 OK", b"X-A: a\x7fb"]),
    ("NUL in a name", ["HTTP/1.1 200 OK", b"X-A\x00B: 1"]),
    ("non-token character in a name", ["HTTP/1.1 200 OK", "X(A): 1"]),
    ("header line over MAX_LINE", ["HTTP/1.1 200 OK", "X-Long: " + "a" * MAX_LINE]),
]


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(
            row[1],
            id=row[0],
        )
        for row in INVALID_ROWS
    ],
)
def test_invalid_head(lines):
    with pytest.raises(InvalidResponse):
        parse_response_head(head_of(*lines), "GET")


FRAMING_ROWS = [
    # id, method, status line, headers, (framing, length, keep_alive)
    (
        "HEAD has no body",
        "HEAD",
        "HTTP/1.1 200 OK",
        ["Content-Length: 10"],
        (Framing.NONE, None, True),
    ),
    (
        "HEAD with chunked has no body",
        "HEAD",
        "HTTP/1.1 200 OK",
        ["Transfer-Encoding: chunked"],
        (Framing.NONE, None, True),
    ),
    ("100 Continue", "POST", "HTTP/1.1 100 Continue", [], (Framing.NONE, None, True)),
    (
        "103 Early Hints",
        "GET",
        "HTTP/1.1 103 Early Hints",
        ["Link: </a.css>; rel=preload"],
        (Framing.NONE, None, True),
    ),
    (
        "204 with a Content-Length",
        "GET",
        "HTTP/1.1 204 No Content",
        ["Content-Length: 10"],
        (Framing.NONE, None, True),
    ),
    (
        "304 with a Content-Length",
        "GET",
        "HTTP/1.1 304 Not Modified",
        ["Content-Length: 10"],
        (Framing.NONE, None, True),
    ),
    (
        "101 switches protocol",
        "GET",
        "HTTP/1.1 101 Switching Protocols",
        ["Upgrade: websocket", "Connection: Upgrade"],
        (Framing.NONE, None, False),
    ),
    (
        "Content-Length",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 42"],
        (Framing.LENGTH, 42, True),
    ),
    (
        "Content-Length 0",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 0"],
        (Framing.LENGTH, 0, True),
    ),
    (
        "Content-Length with OWS",
        "GET",
        "HTTP/1.1 200 OK",
        ["content-length:  7 "],
        (Framing.LENGTH, 7, True),
    ),
    (
        "duplicated equal Content-Length in one line",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 5, 5"],
        (Framing.LENGTH, 5, True),
    ),
    (
        "duplicated equal Content-Length lines",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 5", "Content-Length: 5"],
        (Framing.LENGTH, 5, True),
    ),
    (
        "Transfer-Encoding chunked",
        "GET",
        "HTTP/1.1 200 OK",
        ["Transfer-Encoding: chunked"],
        (Framing.CHUNKED, None, True),
    ),
    (
        "Transfer-Encoding CHUNKED, any case",
        "GET",
        "HTTP/1.1 200 OK",
        ["transfer-encoding: Chunked"],
        (Framing.CHUNKED, None, True),
    ),
    (
        "gzip, chunked: chunked is last",
        "GET",
        "HTTP/1.1 200 OK",
        ["Transfer-Encoding: gzip, chunked"],
        (Framing.CHUNKED, None, True),
    ),
    (
        "gzip then chunked on two lines",
        "GET",
        "HTTP/1.1 200 OK",
        ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
        (Framing.CHUNKED, None, True),
    ),
    (
        "chunked plus Content-Length: chunked wins, not reused",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 10", "Transfer-Encoding: chunked"],
        (Framing.CHUNKED, None, False),
    ),
    (
        "gzip only: until close",
        "GET",
        "HTTP/1.1 200 OK",
        ["Transfer-Encoding: gzip"],
        (Framing.UNTIL_CLOSE, None, False),
    ),
    (
        "chunked, gzip: chunked not last, until close",
        "GET",
        "HTTP/1.1 200 OK",
        ["Transfer-Encoding: chunked, gzip"],
        (Framing.UNTIL_CLOSE, None, False),
    ),
    (
        "gzip plus Content-Length: until close",
        "GET",
        "HTTP/1.1 200 OK",
        ["Transfer-Encoding: gzip", "Content-Length: 10"],
        (Framing.UNTIL_CLOSE, None, False),
    ),
    ("neither: until close", "GET", "HTTP/1.1 200 OK", [], (Framing.UNTIL_CLOSE, None, False)),
    (
        "neither, even with keep-alive asked",
        "GET",
        "HTTP/1.1 200 OK",
        ["Connection: keep-alive"],
        (Framing.UNTIL_CLOSE, None, False),
    ),
    # keep_alive
    (
        "HTTP/1.1 is persistent by default",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 0"],
        (Framing.LENGTH, 0, True),
    ),
    (
        "HTTP/1.1 Connection: close",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 0", "Connection: close"],
        (Framing.LENGTH, 0, False),
    ),
    (
        "HTTP/1.1 Connection: CLOSE, any case",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 0", "connection: CLOSE"],
        (Framing.LENGTH, 0, False),
    ),
    (
        "HTTP/1.1 close in a list",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 0", "Connection: keep-alive, Close"],
        (Framing.LENGTH, 0, False),
    ),
    (
        "HTTP/1.1 close on a second Connection line",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 0", "Connection: x-hop", "Connection: close"],
        (Framing.LENGTH, 0, False),
    ),
    (
        "HTTP/1.1 with 'closed' is not close",
        "GET",
        "HTTP/1.1 200 OK",
        ["Content-Length: 0", "Connection: closed"],
        (Framing.LENGTH, 0, True),
    ),
    (
        "HTTP/1.1 204 Connection: close",
        "GET",
        "HTTP/1.1 204 No Content",
        ["Connection: close"],
        (Framing.NONE, None, False),
    ),
    (
        "HTTP/1.0 is not persistent by default",
        "GET",
        "HTTP/1.0 200 OK",
        ["Content-Length: 0"],
        (Framing.LENGTH, 0, False),
    ),
    (
        "HTTP/1.0 with keep-alive",
        "GET",
        "HTTP/1.0 200 OK",
        ["Content-Length: 0", "Connection: keep-alive"],
        (Framing.LENGTH, 0, True),
    ),
    (
        "HTTP/1.0 with Keep-Alive in a list",
        "GET",
        "HTTP/1.0 200 OK",
        ["Content-Length: 0", "Connection: X-Hop, Keep-Alive"],
        (Framing.LENGTH, 0, True),
    ),
    (
        "HTTP/1.0 HEAD with keep-alive",
        "HEAD",
        "HTTP/1.0 200 OK",
        ["Content-Length: 9", "Connection: keep-alive"],
        (Framing.NONE, None, True),
    ),
    (
        "HTTP/1.0 with Transfer-Encoding: faulty framing, closed after it",
        "GET",
        "HTTP/1.0 200 OK",
        ["Transfer-Encoding: chunked", "Connection: keep-alive"],
        (Framing.CHUNKED, None, False),
    ),
]


@pytest.mark.parametrize(
    "method,status_line,lines,expected",
    [
        pytest.param(
            *row[1:],
            id=row[0],
        )
        for row in FRAMING_ROWS
    ],
)
def test_framing_and_keep_alive(method, status_line, lines, expected):
    head = parse_response_head(head_of(status_line, *lines), method)
    assert (head.framing, head.length, head.keep_alive) == expected


BAD_LENGTH_ROWS = [
    ("differing values in one line", ["Content-Length: 5, 6"]),
    ("differing values on two lines", ["Content-Length: 5", "Content-Length: 6"]),
    ("non-numeric", ["Content-Length: five"]),
    ("negative", ["Content-Length: -1"]),
    ("plus sign", ["Content-Length: +5"]),
    ("hex", ["Content-Length: 0x10"]),
    ("empty", ["Content-Length:"]),
    ("empty list element", ["Content-Length: 5,"]),
    ("digits with a space inside", ["Content-Length: 1 0"]),
    ("non-ASCII digits", ["Content-Length: \u0665".encode()]),
]


@pytest.mark.parametrize(
    "lines", [r[1] for r in BAD_LENGTH_ROWS], ids=[r[0] for r in BAD_LENGTH_ROWS]
)
def test_bad_content_length(lines):
    with pytest.raises(InvalidResponse, match="Content-Length"):
        parse_response_head(head_of("HTTP/1.1 200 OK", *lines), "GET")


def test_response_head_keeps_the_headers_it_framed_by():
    head = parse_response_head(
        head_of("HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 4"), "GET"
    )
    assert head == wire.ResponseHead(
        version=1,
        status=200,
        reason="OK",
        headers=[("Content-Type", "text/plain"), ("Content-Length", "4")],
        framing=Framing.LENGTH,
        length=4,
        keep_alive=True,
    )


# Chunked bodies (decoded by llhttp; the rows are those of the hand-written decoder it replaced)

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def decode(pieces: list[bytes]) -> tuple[bytes, bool, bool, list[bytes]]:
    """Feed the pieces as they would arrive: (data, done, bytes beyond, data per feed)."""
    parser = fed([CHUNKED_HEAD])
    per_feed: list[bytes] = []
    for piece in pieces:
        parser.feed(piece)
        per_feed.append(b"".join(parser.take()))
    return b"".join(per_feed), parser.done, parser.beyond, per_feed


WIKI = b"4\r\nWiki\r\n7\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\n\r\n"

CHUNKED_ROWS = [
    ("the RFC example at once", [WIKI], b"Wikipedia in \r\nchunks."),
    ("a single empty last chunk", [b"0\r\n\r\n"], b""),
    (
        # llhttp takes whitespace before the ";" (lenient_spaces_after_chunk_size), not after.
        "chunk extensions are ignored",
        [b'5;name=val\r\nhello\r\n6 ;a=1;b="x;y"\r\n world\r\n0;end\r\n\r\n'],
        b"hello world",
    ),
    (
        "uppercase hex",
        [b"A\r\n0123456789\r\n1F\r\n" + b"x" * 31 + b"\r\n0\r\n\r\n"],
        b"0123456789" + b"x" * 31,
    ),
    ("lowercase hex", [b"a\r\n0123456789\r\n0\r\n\r\n"], b"0123456789"),
    ("leading zeros", [b"0005\r\nhello\r\n000\r\n\r\n"], b"hello"),
    (
        "trailers are consumed and dropped",
        [b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"],
        b"hello",
    ),
    (
        "trailers split across arrivals",
        [b"2\r\nhi\r\n0\r\nX-Check", b"sum: abc\r\n", b"\r", b"\n"],
        b"hi",
    ),
    ("CRLF inside the chunk data is data", [b"4\r\n\r\n\r\n\r\n0\r\n\r\n"], b"\r\n\r\n"),
    ("split inside the size line", [b"1", b"0\r\n" + b"y" * 16 + b"\r\n0\r\n\r\n"], b"y" * 16),
    ("split between data and its CRLF", [b"5\r\nhello", b"\r", b"\n0\r\n\r\n"], b"hello"),
]


@pytest.mark.parametrize(
    "pieces,expected", [r[1:] for r in CHUNKED_ROWS], ids=[r[0] for r in CHUNKED_ROWS]
)
def test_chunked_decoding(pieces, expected):
    data, done, beyond, _ = decode(pieces)
    assert (data, done, beyond) == (expected, True, False)


ONE_BYTE_ROWS = [r for r in CHUNKED_ROWS if len(r[1]) == 1 and len(r[1][0]) > 5]


@pytest.mark.parametrize(
    "encoded", [r[1][0] for r in ONE_BYTE_ROWS], ids=[r[0] for r in ONE_BYTE_ROWS]
)
def test_chunked_fed_one_byte_at_a_time(encoded):
    whole, _, _, _ = decode([encoded])
    parser = fed([CHUNKED_HEAD])
    data = bytearray()
    done_after = []
    for byte in encoded:
        parser.feed(bytes([byte]))
        data += b"".join(parser.take())
        done_after.append(parser.done)
    assert (bytes(data), parser.beyond) == (whole, False)
    assert done_after == [False] * (len(encoded) - 1) + [True]


def test_chunked_done_only_after_the_final_blank_line():
    parser = fed([CHUNKED_HEAD, b"5\r\nhello\r\n0\r\n"])
    assert parser.take() == [b"hello"]
    assert not parser.done
    parser.feed(b"\r\n")
    assert parser.take() == []
    assert parser.done


def test_chunked_stops_at_the_end_of_the_body():
    """Bytes after the last chunk belong to no one: they mark the connection out of step."""
    data, done, beyond, _ = decode([b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"])
    assert (data, done, beyond) == (b"ok", True, True)


def test_a_big_chunk_is_handed_out_as_it_arrives():
    """Constant memory: each arrival of a 1 MiB chunk comes out at once, nothing waits for
    the chunk's end, and nothing is left behind."""
    size = 1024 * 1024
    parser = fed([CHUNKED_HEAD, b"%x\r\n" % size])
    assert parser.take() == []
    out = []
    for i in range(16):
        parser.feed(bytes([i]) * (size // 16))
        out.append(b"".join(parser.take()))
        assert parser.buffered == 0
    assert [len(piece) for piece in out] == [size // 16] * 16
    assert out[3] == b"\x03" * (size // 16)
    parser.feed(b"\r\n0\r\n\r\n")
    assert parser.take() == []
    assert parser.done


BAD_CHUNKED_ROWS = [
    ("size not hex", b"xyz\r\nhello\r\n0\r\n\r\n"),
    ("empty size line", b"\r\nhello\r\n0\r\n\r\n"),
    ("negative size", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("size over 16 hex digits", b"1" + b"0" * 16 + b"\r\n"),
    ("size and junk", b"5 hello\r\nhello\r\n0\r\n\r\n"),
    ("data longer than declared", b"3\r\nhello\r\n0\r\n\r\n"),
    ("no CRLF after the data", b"5\r\nhelloworld\r\n0\r\n\r\n"),
    ("bare LF after the data", b"5\r\nhello\n0\r\n\r\n"),
    # llhttp refuses what RFC 9112 calls BWS after the ";" (browsers never see extensions).
    ("whitespace after an extension's ';'", b"5; a=1\r\nhello\r\n0\r\n\r\n"),
    # The hand-written decoder refused a size line over MAX_LINE because it buffered the line;
    # llhttp skips an extension byte by byte without keeping it, so nothing grows.
]


@pytest.mark.parametrize(
    "encoded", [r[1] for r in BAD_CHUNKED_ROWS], ids=[r[0] for r in BAD_CHUNKED_ROWS]
)
def test_bad_chunked_body(encoded):
    with pytest.raises(InvalidResponse):
        decode([encoded])
