"""The demo's backend: a small JSON API that sends no CORS headers at all, and the cards'
requests made of it. demo.py serves it on the third port and puts the proxy in front of it.

CARDS is the one list of what the page asks: the browser runs these requests (from
/config.json) and `doctor` diagnoses the very same ones, so both sides judge one request.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field

from aiohttp import web

SESSION_COOKIE = "demo_session"
TOKEN = "Bearer demo-token"
TOTAL_COUNT = "42"

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DemoRequest:
    """One fetch() a card makes: DemoRequest("GET", "/api/hello")."""

    method: str
    path: str
    headers: Pairs = ()
    body: str | None = None
    credentials: bool = False  # fetch(..., {credentials: "include"})
    read_headers: tuple[str, ...] = ()  # response headers the page tries to read


@dataclass(frozen=True)
class Card:
    """One concept on the page, run straight to the backend and through the proxy."""

    id: str
    requests: tuple[DemoRequest, ...] = field(default_factory=tuple)


_JSON = (("Content-Type", "application/json"),)
CARDS: tuple[Card, ...] = (
    Card("simple", (DemoRequest("GET", "/api/hello"),)),
    Card("preflight", (DemoRequest("POST", "/api/notes", _JSON, json.dumps({"text": "hi"})),)),
    Card(
        "authorization",
        (
            DemoRequest(
                "PUT",
                "/api/notes/1",
                (("Authorization", TOKEN), *_JSON),
                json.dumps({"text": "edited"}),
            ),
        ),
    ),
    Card(
        "credentials",
        (
            DemoRequest(
                "POST",
                "/api/login",
                (("Content-Type", "application/x-www-form-urlencoded"),),
                "user=ada&password=lovelace",
                credentials=True,
            ),
            DemoRequest("GET", "/api/me", credentials=True),
        ),
    ),
    Card("expose", (DemoRequest("GET", "/api/items", read_headers=("X-Total-Count",)),)),
    Card("error", (DemoRequest("GET", "/api/broken"),)),
)
CARDS_BY_ID = {card.id: card for card in CARDS}


def cards_json() -> list[dict[str, object]]:
    """CARDS as plain JSON values for /config.json."""
    return [asdict(card) for card in CARDS]


SESSIONS = web.AppKey("sessions", set[str])


async def index(request: web.Request) -> web.Response:
    endpoints = [f"{r.method} {r.path}" for card in CARDS for r in card.requests]
    return web.json_response({"about": "corsproxy demo backend, no CORS", "try": endpoints})


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"message": "Hello from the backend!"})


async def create_note(request: web.Request) -> web.Response:
    note = await _json_body(request)
    return web.json_response({"id": 7, "text": note.get("text", "")}, status=201)


async def update_note(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != TOKEN:
        return web.json_response({"error": "missing or wrong Authorization"}, status=401)
    note = await _json_body(request)
    note_id = int(request.match_info["id"])
    return web.json_response({"id": note_id, "text": note.get("text", ""), "updated": True})


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    token = secrets.token_hex(8)
    request.app[SESSIONS].add(token)
    response = web.json_response({"user": form.get("user", "?"), "logged_in": True})
    # Host-only, so it goes back to localhost on any port; Lax is enough for same-site fetches.
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="Lax")
    return response


async def me(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    if token not in request.app[SESSIONS]:
        return web.json_response({"error": "no session cookie came with the request"}, status=401)
    return web.json_response({"user": "ada", "cookie": f"{SESSION_COOKIE}={token}"})


async def items(request: web.Request) -> web.Response:
    page = [{"id": n, "name": f"item {n}"} for n in (1, 2, 3)]
    return web.json_response(page, headers={"X-Total-Count": TOTAL_COUNT})


async def broken(request: web.Request) -> web.Response:
    body = {"error": "the database is not answering", "retry_after_seconds": 30}
    return web.json_response(body, status=500)


async def _json_body(request: web.Request) -> dict[str, object]:
    try:
        value = await request.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def build_app() -> web.Application:
    """The backend: plain aiohttp routes; an OPTIONS preflight gets aiohttp's own 405."""
    app = web.Application()
    app[SESSIONS] = set()
    app.router.add_get("/", index)
    app.router.add_get("/api/hello", hello)
    app.router.add_post("/api/notes", create_note)
    app.router.add_put("/api/notes/{id:[0-9]+}", update_note)
    app.router.add_post("/api/login", login)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/items", items)
    app.router.add_get("/api/broken", broken)
    return app
