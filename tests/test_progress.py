"""Progress on a terminal (issue 19 item 9): a CLI operation that can take more than a second
says what it is doing on stderr when stderr is a terminal, and is silent under --json and when
stderr is a pipe or a file (scripts see only the result)."""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.testing import Broker

from .emulator_helpers import wait_ready


def _run_with_tty_stderr(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run `args` with stderr on a fresh pseudo-terminal; (exit status, stdout, terminal text)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.stdout is not None
        with proc.stdout:
            out = proc.stdout.read().decode()
        rc = proc.wait(60)
    finally:
        os.close(master)
    return rc, out, b"".join(chunks).decode(errors="replace")


@contextlib.contextmanager
def dead_serial_port() -> Iterator[str]:
    """A pseudo-terminal nobody answers on: a wand with no pump in range."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


@pytest.fixture
def programmer_env(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "clinician.key"
    key.write_text(secrets.token_hex(32) + "\n")  # random: never a run of zeros in a store
    key.chmod(0o600)
    return {**os.environ, "ITP_KEY_FILE": str(key), "ITP_JOURNAL": str(tmp_path / "j.sqlite")}


PROGRAMMER = [sys.executable, "-m", "programmer.cli"]


def test_connecting_to_a_dead_port_shows_each_attempt_on_a_terminal(
    programmer_env: dict[str, str],
) -> None:
    with dead_serial_port() as port:
        rc, _, tty = _run_with_tty_stderr(
            [*PROGRAMMER, "interrogate", "--connect", port, "--timeout", "0.1"], programmer_env
        )
    assert rc == 4
    assert f"connecting to serial://{port}: attempt 1 of 5" in tty
    assert f"connecting to serial://{port}: attempt 5 of 5" in tty
    assert "\r\x1b[K" in tty  # the status line is cleared before the error
    assert tty.rstrip().endswith(f"no answer from a pump on serial://{port}")


@pytest.mark.parametrize("how", ["json", "pipe"])
def test_no_progress_under_json_or_without_a_terminal(
    programmer_env: dict[str, str], how: str
) -> None:
    with dead_serial_port() as port:
        args = [*PROGRAMMER, "interrogate", "--connect", port, "--timeout", "0.1"]
        if how == "json":
            rc, _, err = _run_with_tty_stderr([*args, "--json"], programmer_env)
        else:
            done = subprocess.run(
                args, capture_output=True, text=True, env=programmer_env, timeout=60, check=False
            )
            rc, err = done.returncode, done.stderr
    assert rc == 4
    assert "connecting" not in err and "\x1b" not in err and "\r" not in err.replace("\r\n", "\n")
    assert "no answer from a pump" in err


def test_fleet_start_counts_the_pumps_on_a_terminal_only(tmp_path: Path, broker: Broker) -> None:
    """`fleet --count 250`: "starting pumps: 100 of 250" ... "250 of 250" on a terminal, then
    the line is cleared before the fleet's own banner; nothing of it in a pipe. (A broker: the
    ready file, which says the fleet is running, waits for the connection.)"""
    args = [sys.executable, "-m", "emulator.cli", "fleet", "--count", "250",
            "--mqtt", broker.url, "--beacon-interval", "0",
            "--ready-file", str(tmp_path / "ready.json")]  # fmt: skip
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 60
        while b"250 of 250" not in seen or not (tmp_path / "ready.json").exists():
            assert proc.poll() is None, f"the fleet exited ({proc.returncode}): {seen!r}"
            assert time.monotonic() < deadline, f"no ready file within 60 s: {seen!r}"
            if select.select([master], [], [], 0.05)[0]:  # the ready file follows the output
                seen += os.read(master, 4096)
        proc.terminate()
        proc.wait(30)
    finally:
        os.close(master)
    text = seen.decode(errors="replace")
    assert "starting pumps: 100 of 250" in text
    assert "starting pumps: 250 of 250\x1b[K\r\x1b[K" in text  # then cleared
    (tmp_path / "ready.json").unlink()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(proc, tmp_path / "ready.json")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"starting pumps" not in err and b"\x1b" not in err
