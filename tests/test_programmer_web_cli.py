"""`pump-programmer web` as a user runs it: it connects, prints the page's address (127.0.0.1,
the token in the fragment), serves the page with its Content-Security-Policy and the API behind
the token, and ends on Ctrl-C. The page itself is tested in a browser: test_programmer_web.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import protocol as p
from emulator import EmulatorServer, ServerOptions

from .emulator_helpers import http_request


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(speed_milli=1000, scenario="low-reservoir-alarm-day")
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


async def start(server: EmulatorServer, tmp_path: Path, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "programmer.cli", "web",
        "--connect", f"serial://{server.port_path}",
        "--key", str(server.key_files[p.Role.CLINICIAN]),
        "--journal", str(tmp_path / "journal.sqlite"), *extra,
        env={**os.environ}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_the_web_command_serves_the_page_and_the_api_behind_a_token(
    server: EmulatorServer, tmp_path: Path
) -> None:
    proc = await start(server, tmp_path, "--activity", str(tmp_path / "activity.jsonl"))
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("web programmer: open http://127.0.0.1:"), line
        page = line.split("open ", 1)[1].strip()
        url, token = page.split("#token=")
        base = url.rstrip("/")
        status, headers, body = await http_request(base, "GET", "/", None)
        assert status == 200 and b"Clinician programmer" in body
        assert "default-src 'none'" in dict(headers)["content-security-policy"]
        status, _, body = await http_request(base, "GET", "/api/session", None)
        assert status == 401  # no token, no pump
        status, _, body = await http_request(base, "GET", "/api/session", None, token=token)
        assert status == 200 and json.loads(body)["state"] == "connected"
        status, _, body = await http_request(base, "GET", "/api/summary", None, token=token)
        rows = dict(json.loads(body)["rows"])
        assert rows["drug"] == "baclofen" and rows["daily dose"] == "500 mcg/day"
        status, _, body = await http_request(
            base, "POST", "/api/prepare", {"kind": "dose", "form": {"dose": "lots"}}, token=token
        )
        assert status == 400 and "daily dose" in json.loads(body)["error"]
        status, _, body = await http_request(base, "GET", "/nothing.js", None)
        assert status == 404
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 130


async def test_the_web_command_refuses_a_patient_role(
    server: EmulatorServer, tmp_path: Path
) -> None:
    proc = await start(server, tmp_path, "--role", "patient")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"clinician" in err
