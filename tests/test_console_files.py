"""The instructor console's static files, its URL on the command line, and the catalogue and
OpenAPI entries of its routes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulatorServer, ServerOptions
from emulator._console import FILES
from emulator._control import ROUTES, openapi

from .console_helpers import (
    control_of,
    get_json,
    server,
)
from .emulator_helpers import http_request as http
from .emulator_helpers import wait_ready

__all__ = ["server"]  # the console's pump fixture (tests/console_helpers.py), used by name

ROOT = Path(__file__).resolve().parent.parent


# --- static files, catalogue, OpenAPI --------------------------------------------------------


async def test_console_files_are_served_only_with_console(tmp_path: Path) -> None:
    options = ServerOptions(control=("127.0.0.1", 0), pty=False)
    async with EmulatorServer(tmp_path / "a", options) as plain:
        status, _, body = await http(control_of(plain).url, "GET", "/console/")
        assert status == 404 and b"--console" in body
    options = ServerOptions(console=True, pty=False)  # --console alone: control on port 0
    async with EmulatorServer(tmp_path / "b", options) as server:
        cp = control_of(server)
        assert cp.console_url.startswith(f"{cp.url}/console/#token=")
        status, headers, body = await http(cp.url, "GET", "/console/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "connect-src 'self'" in headers["content-security-policy"]
        assert b'src="console.js"' in body
        status, headers, _ = await http(cp.url, "GET", "/console/console.js")
        assert status == 200 and headers["content-type"].startswith("text/javascript")
        status, headers, _ = await http(cp.url, "GET", "/console")
        assert status == 301 and headers["location"] == "/console/"
        assert (await http(cp.url, "GET", "/console/secrets.txt"))[0] == 404
        assert (await http(cp.url, "GET", "/console/..%2f_control.py"))[0] == 404


def _ready(cmd: list[str], ready: Path, log: Path) -> tuple[subprocess.Popen[bytes], Any]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", *cmd, "--ready-file", str(ready)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, wait_ready(proc, ready, log)


@pytest.mark.parametrize("command", ["serve", "fleet"])
def test_the_command_line_prints_the_console_url(
    command: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if command == "serve":
        cmd = ["serve", "--state-dir", str(tmp_path / "s"), "--no-serial", "--console"]
    else:
        broker = request.getfixturevalue("broker")
        cmd = ["fleet", "--count", "3", "--mqtt", broker.url, "--console", "--name", "console"]
    proc, info = _ready(cmd, tmp_path / "ready.json", tmp_path / "log")
    try:
        token = info["control_token"]
        assert info["console"] == f"{info['control']}/console/#token={token}"
        with urllib.request.urlopen(info["control"] + "/console/", timeout=10) as r:
            assert r.status == 200 and b"console.js" in r.read()
        req = urllib.request.Request(info["control"] + "/v1/pumps")
        req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert len(json.loads(r.read())) == (1 if command == "serve" else 3)
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
    assert info["console"] in (tmp_path / "log").read_text()  # printed for the instructor


def test_the_page_fetches_nothing_from_elsewhere() -> None:
    """No CDN, no web font, no external script: every file is in the package."""
    folder = ROOT / "emulator" / "console"
    assert {f.name for f in folder.iterdir()} == set(FILES)
    for name in FILES:
        text = (folder / name).read_text()
        urls = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)
        assert all(u == "http://www.w3.org/2000/svg" for u in urls), (name, urls)
        assert "@import" not in text and "url(" not in text


async def test_the_catalogue_and_openapi_describe_the_console_routes(
    server: EmulatorServer,
) -> None:
    cp = control_of(server)
    cat = await get_json(cp.url, "/v1/catalogue", cp.token)
    assert cat["faults"]["MOTOR_STALL"]["params"]["recover_after_ms"]["default"] is None
    assert cat["faults"]["PREMATURE_EOS"]["irreversible"]
    assert not cat["faults"]["MOTOR_STALL"]["irreversible"]
    assert cat["alarms"]["MOTOR_STALL"]["tone"] == "TWO_TONE"
    assert cat["alarms"]["LOW_RESERVOIR"]["tone"] == "SINGLE_TONE"
    assert "low-reservoir-alarm-day" in [s["name"] for s in cat["scenarios"]]
    doc = openapi()
    stream = doc["paths"]["/v1/pumps/{serial}/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert [q["name"] for q in stream["parameters"] if q["in"] == "query"] == ["access_token"]
    assert doc["paths"]["/console/"]["get"]["security"] == []
    assert {r.kind for r in ROUTES} == {"json", "stream", "static"}
