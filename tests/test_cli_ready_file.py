"""The ready file of `pump-emulator serve` names a control-plane URL a client can open, on an
IPv6 loopback too (the host in brackets, RFC 3986 section 3.2.2)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .emulator_helpers import wait_ready


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_the_ready_file_names_an_ipv6_control_url_in_brackets(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    with (tmp_path / "log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(tmp_path / "s"),
             "--ready-file", str(ready), "--control", "[::1]:0"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        info = wait_ready(proc, ready, tmp_path / "log", timeout_s=20)
        assert info["control"].startswith("http://[::1]:"), info["control"]
        with urllib.request.urlopen(info["control"] + "/openapi.json", timeout=5) as answer:
            assert answer.status == 200
            assert json.load(answer)["openapi"].startswith("3.")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("0", ("127.0.0.1", 0)),
        ("8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_control_addresses(text: str, address: tuple[str, int]) -> None:
    from emulator._cli_common import control_address

    assert control_address(text) == address


@pytest.mark.parametrize("text", ["", "x", "::1:0", ":80", "[::1]:", "1:65536", "-1"])
def test_bad_control_addresses_are_refused(text: str) -> None:
    from emulator._cli_common import control_address

    with pytest.raises(ValueError):
        control_address(text)


def test_the_fleet_refuses_a_bad_control_address_before_starting(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "fleet", "--count", "1",
         "--mqtt", "mqtt://127.0.0.1:1", "--control", "::1:0"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "IPv6 host goes in brackets" in done.stderr
    assert "Traceback" not in done.stderr
