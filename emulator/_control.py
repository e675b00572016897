"""The control plane: an HTTP JSON API for trainers and test code, separate from the pump's
telemetry and unreachable through it (docs/emulator.md section 12).

Served by an aiohttp application embedded in the emulator's event loop (`_control_http`),
loopback by default, with a bearer token. Each resource module (`_control_state`,
`_control_time`, `_control_faults`, `_control_link`, `_control_scenarios`, `_control_fleet`,
and the console's files in `_console`) declares its routes once in a `ROUTES` table with their
JSON-schema request body and answer: the same tables route and validate requests and generate
the OpenAPI document served at `/openapi.json`. Every change is applied at the current model
time, logged as a CONTROL record (`source` CONTROL) and committed before the answer. The same
server streams live state as Server-Sent Events and, with `console=True`, serves the
instructor console's static page (emulator/_console.py).
"""

from __future__ import annotations

import hmac
import json
import secrets
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import (
    _console,
    _control_faults,
    _control_fleet,
    _control_link,
    _control_scenarios,
    _control_state,
    _control_time,
)
from ._console import Hub, Raw
from ._control_api import ERROR, MAX_ADVANCE_MS, Call, ControlError, Route, answer, validate
from ._control_faults import FAULTS, IRREVERSIBLE_FAULTS
from ._control_fleet import catalogue, summary
from ._control_state import state
from ._control_time import MAX_STEPS, UNTIL
from ._runtime import Runtime

if TYPE_CHECKING:
    from ._control_http import HttpServer

__all__ = [
    "FAULTS",
    "IRREVERSIBLE_FAULTS",
    "MAX_ADVANCE_MS",
    "MAX_STEPS",
    "ROUTES",
    "UNTIL",
    "ControlError",
    "ControlPlane",
    "Route",
    "catalogue",
    "openapi",
    "state",
    "summary",
    "validate",
]


async def _openapi(call: Call) -> Any:
    return openapi()


ROUTES: list[Route] = [
    Route(
        "GET",
        "/openapi.json",
        "This document.",
        _openapi,
        answer=answer(openapi={"type": "string"}, paths={"type": "object"}),
        public=True,
    ),
    *_control_fleet.ROUTES,
    *_control_state.ROUTES,
    *_control_time.ROUTES,
    *_control_faults.ROUTES,
    *_control_scenarios.ROUTES,
    *_control_link.ROUTES,
    *_console.ROUTES,
]

_CONTENT: dict[str, dict[str, Any]] = {
    "stream": {"text/event-stream": {}},
    "static": {"text/html": {}, "text/javascript": {}, "text/css": {}, "image/svg+xml": {}},
}
_REFUSALS = {
    "400": "bad input: nothing changed",
    "401": "missing or wrong bearer token",
    "404": "no such pump or fault",
    "409": "refused in the pump's current state",
}


def openapi() -> dict[str, Any]:
    """The OpenAPI document, from the route tables."""
    error = {"application/json": {"schema": ERROR}}
    paths: dict[str, Any] = {}
    for r in ROUTES:
        ok = _CONTENT.get(r.kind) or {"application/json": {"schema": r.answer or {}}}
        op: dict[str, Any] = {
            "summary": r.summary,
            "responses": {
                "200": {"description": "done", "content": ok},
                **{c: {"description": d, "content": error} for c, d in _REFUSALS.items()},
            },
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in r.placeholders
            ]
            + [
                {"name": n, "in": "query", "description": d, "schema": {"type": "string"}}
                for n, d in r.query
            ],
        }
        if r.path == "/console":
            op["responses"]["301"] = {"description": "moved to /console/"}
        if r.public:
            op["security"] = []
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": r.body}},
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "itp emulator control plane", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def new_token() -> str:
    """A fresh control token: 24 random bytes, URL-safe. Never one starting with "-", which a
    command line reads as an option (`pump-emulator ctl --token -Xy...` failed about once in
    64 starts)."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


class ControlPlane:
    """Serves the control API for the runtimes it is given (one per pump); with `console`, also
    the instructor console's page."""

    def __init__(
        self, runtimes: Mapping[int, Runtime], token: str | None = None, *, console: bool = False
    ) -> None:
        self.runtimes = runtimes
        self.token = token or new_token()
        self.console = console
        self.paused_speed: dict[int, int] = {}  # serial -> speed before the pause
        self.hub = Hub(runtimes, state, summary)
        self.address: tuple[str, int] = ("", 0)
        self._http: HttpServer | None = None

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def console_url(self) -> str:
        """The page, with the token in the fragment (never sent to the server or logged)."""
        return f"{self.url}/console/#token={urllib.parse.quote(self.token, safe='')}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        from ._control_http import HttpServer  # aiohttp is imported only to serve

        server = HttpServer(self.handle)
        self.address = await server.start(host, port)
        self._http = server
        if self.console:
            self.hub.start()
            for rt in self.runtimes.values():  # programmer commands reach the page at once
                rt.observers.append(self.hub.changed)
        return self.address

    async def close(self) -> None:
        for rt in self.runtimes.values():
            if self.hub.changed in rt.observers:
                rt.observers.remove(self.hub.changed)
        await self.hub.close()  # ends the event streams
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- requests -----------------------------------------------------------------------------

    async def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        """One request: (HTTP status, JSON payload). Refusals change nothing."""
        path, _, query_text = target.partition("?")
        query = dict(q.split("=", 1) for q in query_text.split("&") if "=" in q)
        try:
            route, params = self._route(method, path)
            value: Any = None
            if route.kind != "static":
                if not route.public:
                    self._authorize(headers, query if route.kind == "stream" else None)
                if route.body is not None:
                    try:
                        value = json.loads(body or b"null")
                    except ValueError:
                        raise ControlError(400, "the body must be JSON") from None
                    validate(route.body, value)
                elif body:
                    raise ControlError(400, "this request takes no body")
            runtime = self._runtime(params["serial"]) if "serial" in params else None
            if runtime is not None and route.kind == "json" and route.method != "GET":
                self.hub.before_change(runtime)  # the plot shows a step, not a slope
            payload = await route.handler(Call(self, path, runtime, params, value, query, headers))
            return (payload.status if isinstance(payload, Raw) else 200), payload
        except ControlError as exc:
            return exc.status, {"error": exc.message}

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for r in ROUTES:
            m = r.regex.match(path)
            if m:
                if r.method == method:
                    return r, m.groupdict()
                allowed.append(r.method)
        if allowed:
            raise ControlError(405, f"{method} {path}: use {', '.join(allowed)}")
        raise ControlError(404, f"no such resource: {path} (see /openapi.json)")

    def _authorize(self, headers: Mapping[str, str], query: Mapping[str, str] | None) -> None:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth and query is not None and "access_token" in query:
            # Streams only: a browser's EventSource cannot send an Authorization header.
            scheme, token = "bearer", urllib.parse.unquote(query["access_token"])
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.encode(), self.token.encode()
        ):
            raise ControlError(401, "missing or wrong bearer token (printed at start)")

    def _runtime(self, serial: str) -> Runtime:
        try:
            return self.runtimes[int(serial)]
        except (ValueError, KeyError):
            raise ControlError(404, f"no pump {serial} here (GET /v1/pumps)") from None
