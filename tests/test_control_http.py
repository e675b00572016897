"""The control plane's HTTP layer (emulator/_control_http.py on aiohttp): what it answers to a
request it cannot parse, and what it logs for one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from emulator._control_http import HttpServer

MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"POST /v1/pumps HTTP/1.1\r\nHost: x\r\nContent-Length: twelve\r\n\r\n",
    b"GET /v1/pumps HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (70 * 1024) + b"\r\n\r\n",
]


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return head + await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("raw", MALFORMED, ids=["request-line", "content-length", "long-header"])
async def test_a_malformed_request_is_refused_and_logged_on_one_line(
    raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def handle(
        method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        seen.append(target)
        return 200, {"ok": True}

    server = HttpServer(handle)
    _host, port = await server.start("127.0.0.1", 0)
    try:
        with caplog.at_level(logging.DEBUG, logger="emulator.control"):
            answer = await _exchange(port, raw)
            ok = await _exchange(port, b"GET /v1/pumps HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        await server.close()
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400"
    assert seen == ["/v1/pumps"]  # the refused request reached no handler; the next one did
    assert ok.startswith(b"HTTP/1.1 200 ")
    records = [r for r in caplog.records if r.name.startswith("emulator.control")]
    assert records, "a refused request leaves a record"
    for r in records:
        assert r.levelno <= logging.WARNING, r.getMessage()
        assert r.exc_info is None and r.exc_text is None  # no traceback for a client's mistake
        assert "\n" not in r.getMessage()
