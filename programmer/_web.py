"""The web programmer (`pump-programmer web`): a clinician programmer on a page, served on
127.0.0.1 by aiohttp, one trainee for one pump (docs/programmer.md section 12).

The page (plain HTML, CSS and JavaScript in programmer/web_static/, no build step, nothing
fetched from elsewhere: the Content-Security-Policy says so) calls this server's JSON API; the
server talks to the pump only through the programmer library (`WebSession`), over the real
protocol with the clinician key. The API needs the bearer token printed with the URL (the page
takes it from the URL fragment, which never reaches a server log).

    GET  /api/session          connection and session state, unresolved commands
    POST /api/connect          (re)connect: resolves unknown outcomes from the journal
    GET  /api/summary          the interrogation summary (?first=1: STATUS read at connect)
    GET  /api/status           the light poll: one STATUS read (skipped while sending)
    GET  /api/events?last=N    the event log, newest first
    POST /api/prepare          {kind, form}: a Finish screen (nothing is sent)
    POST /api/commit           {id, confirm}: send it, exactly once
    POST /api/discard          {id}
    POST /api/command          {kind, form}: ack, silence, clock, suspend, resume
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from ._errors import BadInput, ConfirmationNeeded, ProgrammerError, Refused, Unreachable
from ._web_session import Gone, WebSession

FILES = {
    "index.html": "text/html; charset=utf-8",
    "programmer.js": "text/javascript; charset=utf-8",
    "programmer.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
MAX_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@cache
def _file(name: str) -> bytes:
    return (resources.files("programmer") / "web_static" / name).read_bytes()


def _json(status: int, payload: Any) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def _status(exc: ProgrammerError) -> int:
    if isinstance(exc, BadInput):
        return 400
    if isinstance(exc, ConfirmationNeeded | Gone):
        return 409
    if isinstance(exc, Refused):
        return 422
    if isinstance(exc, Unreachable):
        return 503
    return 500


class WebProgrammer:
    """The HTTP side: static files, the token check, the API routes onto a `WebSession`."""

    def __init__(self, session: WebSession, *, token: str | None = None) -> None:
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        self.url = ""
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/{name}", self._static)
        app.router.add_get("/api/session", self._session)
        app.router.add_post("/api/connect", self._connect)
        app.router.add_get("/api/summary", self._summary)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/status", self._poll)
        app.router.add_post("/api/prepare", self._prepare)
        app.router.add_post("/api/commit", self._commit)
        app.router.add_post("/api/discard", self._discard)
        app.router.add_post("/api/command", self._command)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise BadInput("the web programmer serves on this computer only (127.0.0.1)")
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}/"
        return self.url

    @property
    def page_url(self) -> str:
        return f"{self.url}#token={self.token}"

    async def close(self) -> None:
        await self.session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- plumbing -------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            sent = request.headers.get("Authorization", "")
            if not secrets.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
                return _json(401, {"error": "open the page with the address printed at start"})
            try:
                return await handler(request)
            except ProgrammerError as exc:
                body: dict[str, Any] = {"error": str(exc), "kind": type(exc).__name__}
                if isinstance(exc, ConfirmationNeeded):
                    body["warnings"] = exc.warnings
                body["session"] = self.session.view()
                return _json(_status(exc), body)
        return await handler(request)

    async def _index(self, request: web.Request) -> web.Response:
        return self._serve("index.html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in FILES:
            return _json(404, {"error": "not found"})
        return self._serve(name)

    def _serve(self, name: str) -> web.Response:
        return web.Response(
            body=_file(name),
            headers={
                "Content-Type": FILES[name],
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise BadInput("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise BadInput("the request body is a JSON object")
        return data

    # --- routes ---------------------------------------------------------------------------

    async def _session(self, request: web.Request) -> web.Response:
        return _json(200, self.session.view())

    async def _connect(self, request: web.Request) -> web.Response:
        await self.session.open()
        return _json(200, self.session.view())

    async def _summary(self, request: web.Request) -> web.Response:
        if request.query.get("first") == "1":
            return _json(200, await self.session.quick())
        return _json(200, await self.session.interrogate())

    async def _poll(self, request: web.Request) -> web.Response:
        return _json(200, await self.session.poll())

    async def _events(self, request: web.Request) -> web.Response:
        try:
            last = int(request.query.get("last", "50"))
        except ValueError:
            raise BadInput("last: a whole number") from None
        return _json(200, {"events": await self.session.events(max(1, min(last, 1000)))})

    async def _prepare(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        form = body.get("form") or {}
        if not isinstance(form, dict):
            raise BadInput("form: a JSON object")
        return _json(200, await self.session.prepare(str(body.get("kind")), form))

    async def _commit(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        result = await self.session.commit(str(body.get("id")), bool(body.get("confirm")))
        return _json(200, {**result, "session": self.session.view()})

    async def _discard(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self.session.discard(str(body.get("id")))
        return _json(200, {})

    async def _command(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        form = body.get("form") or {}
        if not isinstance(form, dict):
            raise BadInput("form: a JSON object")
        result = await self.session.command(str(body.get("kind")), form)
        return _json(200, {**result, "session": self.session.view()})


async def serve(
    session: WebSession,
    *,
    port: int = 0,
    ready: Callable[[str], None] = print,
) -> None:
    """Connect, serve the page until cancelled (Ctrl-C), then end the session."""
    import asyncio

    server = WebProgrammer(session)
    await server.start(port=port)
    await session.open()
    ready(server.page_url)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
