"""`pump-programmer` against a real emulator over a pty: tables, --json, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import protocol as p
from emulator import EmulatorServer, ServerOptions
from programmer.cli import conc, mass_ng, schedule_step, volume_nl


async def cli(
    server: EmulatorServer, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int | None, str, str]:
    """Run pump-programmer as a subprocess while this event loop keeps the emulator serving."""
    base = {
        **os.environ,
        "ITP_CONNECT": f"serial://{server.port_path}",
        "ITP_KEY_FILE": str(server.key_files[p.Role.CLINICIAN]),
        "ITP_JOURNAL": str(tmp_path / "journal.sqlite"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "programmer.cli", *args,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(speed_milli=100_000, trace=tmp_path / "trace.jsonl")
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


async def test_workflows_and_exit_codes(server: EmulatorServer, tmp_path: Path) -> None:
    rc, out, _ = await cli(server, tmp_path, "interrogate")
    assert rc == 0 and "reservoir" in out and "STOPPED" in out
    rc, out, err = await cli(server, tmp_path, "refill", "--withdrawn", "0", "--added", "20",
                             "--drug", "morphine", "--concentration", "25mg/mL")  # fmt: skip
    assert rc == 0 and "25 mg/mL" in out and "not sent" in err
    assert server.device.pump.status().reservoir_nl == 0
    rc, out, _ = await cli(server, tmp_path, "refill", "--withdrawn", "0", "--added", "20",
                           "--drug", "morphine", "--concentration", "25mg/mL", "--yes")  # fmt: skip
    assert rc == 0 and "RefillResult" in out
    rc, out, _ = await cli(server, tmp_path, "set-dose", "3mg", "--yes")
    assert rc == 0 and server.device.pump.status().daily_dose_ng == 3_000_000
    rc, out, err = await cli(server, tmp_path, "set-dose", "20mg", "--yes")
    assert rc == 3 and "soft limit" in err  # warnings not confirmed
    rc, _, _ = await cli(server, tmp_path, "set-dose", "20mg", "--yes", "--confirm")
    assert rc == 0 and server.device.pump.status().daily_dose_ng == 20_000_000
    rc, _, err = await cli(server, tmp_path, "set-dose", "60mg", "--yes", "--confirm")
    assert rc == 2 and "hard limit" in err
    rc, _, err = await cli(server, tmp_path, "bolus", "--cancel")
    assert rc == 6 and "INVALID_STATE" in err  # refused by the pump
    rc, out, _ = await cli(server, tmp_path, "log", "--last", "3", "--json")
    records = json.loads(out)
    assert rc == 0 and len(records) == 3  # the cancel refused, its session closed, this one
    assert [r["kind"] for r in records] == [
        p.EventKind.COMMAND_REJECTED,
        p.EventKind.SESSION_CLOSED,
        p.EventKind.SESSION_OPENED,
    ]
    rc, out, _ = await cli(server, tmp_path, "schedule", "00:00=8mg", "12:00=12mg", "--yes")
    assert rc == 0 and server.device.pump.schedule == ((0, 8_000_000), (720, 12_000_000))
    rc, out, _ = await cli(server, tmp_path, "alarms", "test", "--single")
    assert rc == 0 and "SINGLE_TONE" in out
    rc, out, _ = await cli(server, tmp_path, "alarms", "list")
    assert rc == 0 and "no alarms" in out
    assert (await cli(server, tmp_path, "suspend"))[0] == 0
    assert server.device.pump.status().suspended
    assert (await cli(server, tmp_path, "resume"))[0] == 0
    rc, out, _ = await cli(server, tmp_path, "clock", "--json")
    assert rc == 0 and json.loads(out)["speed_factor_milli"] == 100_000
    rc, out, _ = await cli(server, tmp_path, "interrogate", "--json")
    assert json.loads(out)["status"]["daily_dose_ng"] == 10_000_000  # the schedule's total


async def test_unreachable_wrong_key_and_bad_input(server: EmulatorServer, tmp_path: Path) -> None:
    rc, _, err = await cli(server, tmp_path, "interrogate",
                           env={"ITP_CONNECT": "serial:///dev/no-such-port"})  # fmt: skip
    assert rc == 4 and "Unreachable" in err
    wrong = tmp_path / "wrong.key"
    wrong.write_text("00" * 32)
    wrong.chmod(0o600)
    rc, _, err = await cli(server, tmp_path, "interrogate", env={"ITP_KEY_FILE": str(wrong)})
    assert rc == 5 and "KeyMismatch" in err
    rc, _, err = await cli(server, tmp_path, "interrogate", env={"ITP_CONNECT": "ftp://x"})
    assert rc == 2
    rc, _, err = await cli(server, tmp_path, "set-dose", "3 apples")
    assert rc == 2


async def test_replay_of_an_emulator_trace(server: EmulatorServer, tmp_path: Path) -> None:
    assert (await cli(server, tmp_path, "interrogate"))[0] == 0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "programmer.cli", "replay", str(tmp_path / "trace.jsonl"),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 0
    assert "Hello(" in text and "Status(" in text and "sealed" in text


def test_human_units_are_exact() -> None:
    assert mass_ng("3mg") == 3_000_000 and mass_ng("500mcg") == 500_000
    assert mass_ng("0.1 mg/day") == 100_000
    assert volume_nl("2.5") == 2_500_000 and volume_nl("0.221mL") == 221_000
    assert conc("2000mcg/mL") == (2_000_000, p.ConcentrationUnit.MCG_PER_ML)
    assert schedule_step("07:00=600mcg") == (420, 600_000)
    for bad in ("3", "x mg", "-1mg", "0.0000001mg"):
        with pytest.raises(argparse.ArgumentTypeError):
            mass_ng(bad)
