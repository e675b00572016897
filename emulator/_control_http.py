"""The control plane on the wire: an aiohttp application embedded in the running event loop
(`web.AppRunner` and `web.TCPSite`), handing every request to `ControlPlane.handle` (the route
tables dispatch, so the in-process entry and the server cannot differ) and every stream to a
`web.StreamResponse`. aiohttp parses HTTP and keeps connections alive; this module adds the
limits, JSON on every refusal and the shutdown that ends streams and idle connections.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ._console import Raw, Stream

log = logging.getLogger("emulator.control")


class _OneLineRefusals(logging.Filter):
    """A request aiohttp could not parse is the client's mistake, not the emulator's: one
    WARNING line saying what was wrong, not an ERROR with the parser's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = " ".join(str(exc.message).split())
            record.msg = f"{record.getMessage()}: refused ({exc.code}): {reason}"
            record.args = None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


# what aiohttp itself logs (a request it could not parse), under the control plane's logger
_wire_log = logging.getLogger("emulator.control.http")
_wire_log.addFilter(_OneLineRefusals())

MAX_HEADER = 16 * 1024  # request line and headers together
MAX_LINE = 64 * 1024  # one line: above it aiohttp refuses the request itself (400)
MAX_BODY = 64 * 1024
SHUTDOWN_S = 2.0  # closing waits this long for a request being answered

Handle = Callable[[str, str, Mapping[str, str], bytes], Awaitable[tuple[int, Any]]]


def _reply(status: int, payload: Any, *, close: bool = False) -> web.Response:
    if isinstance(payload, Raw):
        headers = {"Content-Type": payload.content_type, **dict(payload.headers)}
        resp = web.Response(status=status, body=payload.body, headers=headers)
    else:
        data = json.dumps(payload).encode()
        resp = web.Response(status=status, body=data, headers={"Content-Type": "application/json"})
    if close:
        resp.force_close()
    return resp


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """What aiohttp itself refuses, and what should never happen, still answers in JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return _reply(exc.status, {"error": exc.reason}, close=True)
    except ConnectionError:
        raise
    except Exception:
        log.exception("control request %s %s failed", request.method, request.path)
        return _reply(500, {"error": "internal error (see the emulator's log)"}, close=True)


class HttpServer:
    """Serves `handle(method, target, headers, body) -> (status, payload)` over HTTP/1.1."""

    def __init__(self, handle: Handle) -> None:
        self._handle = handle
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_errors])
        app.router.add_route("*", "/{tail:.*}", self._http)  # the route tables dispatch
        # No access log: a stream's URL carries the token (?access_token=). What aiohttp logs
        # (a request it could not parse) goes to the control plane's logger, on one line.
        runner = web.AppRunner(
            app,
            access_log=None,
            logger=_wire_log,
            shutdown_timeout=SHUTDOWN_S,
            lingering_time=0,  # a refused body is not read to its end: the connection closes
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        sock = runner.addresses[0]
        return (sock[0], sock[1])

    async def close(self) -> None:
        """Stop listening, close idle keep-alive connections (a browser keeps some), and give
        requests being answered SHUTDOWN_S to finish (streams end first: the hub closed)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _http(self, request: web.Request) -> web.StreamResponse:
        head = len(request.raw_path) + sum(len(k) + len(v) + 4 for k, v in request.raw_headers)
        if head > MAX_HEADER:
            return _reply(431, {"error": "request header too large"}, close=True)
        if (request.content_length or 0) > MAX_BODY:
            return _reply(413, {"error": "body too large or bad length"}, close=True)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _reply(413, {"error": "body too large or bad length"}, close=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, payload = await self._handle(request.method, request.raw_path, headers, body)
        if not isinstance(payload, Stream):
            return _reply(status, payload)
        # The connection is the stream's until it ends.
        resp = web.StreamResponse(headers=dict(Stream.HEADERS))
        resp.force_close()
        await resp.prepare(request)
        await resp.write(Stream.OPENING)
        transport = request.transport
        await payload.run(resp.write, lambda: transport is None or transport.is_closing())
        return resp
