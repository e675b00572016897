"""End to end through the command line: `pump-emulator serve` as a subprocess, stopped by SIGTERM
or killed, and its options."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import protocol as p
from emulator import EmulatorServer, read_key

from .e2e_client import Client, SerialTransport
from .e2e_helpers import (
    SERIAL,
    fill_and_run,
    serve_subprocess,
)
from .emulator_helpers import wait_ready

# --- the command line -------------------------------------------------------------------------


async def test_cli_serve_runs_until_sigterm_and_saves_state(tmp_path: Path) -> None:
    state, ready, trace = tmp_path / "state", tmp_path / "ready.json", tmp_path / "t.jsonl"
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(state),
         "--ready-file", str(ready), "--trace", str(trace), "--speed", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        info = wait_ready(proc, ready)
        assert info["speed_factor"] == 10
        key = read_key(Path(info["key_files"]["clinician"]))
        t = SerialTransport(info["port"])
        c = Client(t, info["pump_serial"], p.Role.CLINICIAN, key)
        await c.handshake()
        await asyncio.sleep(0.3)  # 2 s self test at x10
        await fill_and_run(c)
        await t.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    text = out.decode()
    assert info["port"] in text and "clinician.key" in text and "stopped" in text
    for blob in (text, err.decode(), trace.read_text()):
        assert key.to_hex() not in blob
    # the state survived: a fresh emulator on the same directory has the program
    async with EmulatorServer(state) as server:
        assert server.device.pump.status().daily_dose_ng == 10_000_000


def test_cli_serve_with_no_arguments_is_the_main_job(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline().decode() for _ in range(4)]
        port = banner[1].split()[2]
        assert banner[0].startswith("pump 1234 (SynchroMed II 20 mL)")
        assert Path(port).exists() and "clinician.key" in banner[3]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert (tmp_path / ".local/state/itp-emulator/pump-1234/pump.sqlite").exists()


def test_cli_refuses_bad_options(tmp_path: Path) -> None:
    for args in (["--speed", "-1"], ["--pump-serial", "0"], ["--mqtt", "http://x"]):
        r = subprocess.run(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(tmp_path), *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert r.returncode == 2 and b"error" in r.stderr, (args, r.stderr)


async def test_acknowledged_commands_survive_sigkill(tmp_path: Path) -> None:
    state, ready = tmp_path / "state", tmp_path / "ready.json"
    proc = serve_subprocess(state, ready, "--speed", "100")
    acked: list[tuple[bytes, int]] = []
    try:
        info = json.loads(ready.read_text())
        key = read_key(Path(info["key_files"]["clinician"]))
        c = Client(SerialTransport(info["port"]), SERIAL, p.Role.CLINICIAN, key)
        await c.handshake()
        await asyncio.sleep(0.05)  # the 2 s self test at x100
        await fill_and_run(c)
        for i in range(20):
            cid = uuid.uuid4().bytes
            ack = await c.command(
                p.SetContinuousDose, dose_ng_per_day=5_000_000 + i * 100_000, command_id=cid
            )
            acked.append((cid, ack.event_seq))
        proc.kill()  # no chance to write anything more
        proc.wait()
        await c.t.close()
        proc = serve_subprocess(state, ready, "--speed", "100")
        info = json.loads(ready.read_text())
        c = Client(SerialTransport(info["port"]), SERIAL, p.Role.CLINICIAN, key)
        await c.handshake()
        for cid, event_seq in acked:
            status = await c.call(p.GetCommandStatus(command_id=cid))
            assert (status.state, status.event_seq) == (p.CommandState.APPLIED, event_seq)
        assert (await c.status()).daily_dose_ng == 5_000_000 + 19 * 100_000
        await c.t.close()
    finally:
        proc.kill()
        proc.wait()
