"""Units in messages match what the user typed and what the panel shows (issue 19 item 7): the
`ctl reservoir` volume (mL) is refused in mL; the OpenAPI document's range for the true
reservoir is the largest profile's capacity and says the bound is per profile, and each pump's
validation refuses above its own capacity; the event log writes masses by the panel's rule."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import firmware_model as fm
import protocol as p
from emulator import EmulatorServer, PumpDevice, Runtime, ServerOptions, VirtualClock
from emulator._console_records import describe, mass, record
from emulator._control import ControlPlane, openapi

from .console_helpers import Sse

SERIAL = 1234


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(
        speed_milli=0, control=("127.0.0.1", 0), console=True, scenario="low-reservoir-alarm-day"
    )
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


async def _ctl(server: EmulatorServer, *args: str) -> tuple[int | None, str, str]:
    assert server.control is not None
    env = {
        **os.environ,
        "ITP_CONTROL_URL": server.control.url,
        "ITP_CONTROL_TOKEN": server.control.token,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator.cli", "ctl", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_ctl_reservoir_is_refused_in_the_millilitres_typed(server: EmulatorServer) -> None:
    true_before = server.device.pump.status().true_reservoir_nl
    rc, _, err = await _ctl(server, "reservoir", "50")
    assert rc == 2
    assert err.strip() == (
        f"pump-emulator ctl: reservoir 50 mL is more than pump {SERIAL} holds: "
        "its capacity is 20 mL"
    )
    assert "nL" not in err and "volume_nl" not in err
    rc, _, err = await _ctl(server, "reservoir", "-5ml")
    assert rc == 2 and "'-5ml': a volume cannot be negative" in err
    assert server.device.pump.status().true_reservoir_nl == true_before
    rc, out, _ = await _ctl(server, "reservoir", "12.5ml")
    assert rc == 0 and json.loads(out)["status"]["true_reservoir_nl"] == 12_500_000


def _runtime(profile: fm.ProfileId, serial: int) -> Runtime:
    pump = fm.Pump.create(serial=serial, profile=profile, now_ms=1_800_000_000_000)
    keys = {r: p.SecretKey(secrets.token_bytes(32)) for r in p.Role}
    return Runtime(PumpDevice(pump, keys, clock=VirtualClock(pump.now, 1000)))


def test_the_documented_reservoir_range_agrees_with_each_pumps_validation() -> None:
    schema = openapi()["paths"]["/v1/pumps/{serial}/reservoir"]["put"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["true_volume_nl"]
    capacities = {pid: prof.reservoir_nl for pid, prof in fm.PROFILES.items()}
    assert schema["minimum"] == 0
    assert schema["maximum"] == max(capacities.values())  # no profile's fill is refused by it
    assert "per profile" in schema["description"] and "capacity_nl" in schema["description"]
    runtimes = {9000 + i: _runtime(pid, 9000 + i) for i, pid in enumerate(capacities)}
    cp = ControlPlane(runtimes, token="t")

    async def put(serial: int, volume: int) -> tuple[int, object]:
        return await cp.handle(
            "PUT",
            f"/v1/pumps/{serial}/reservoir",
            {"authorization": "Bearer t"},
            json.dumps({"true_volume_nl": volume}).encode(),
        )

    async def check() -> None:
        for serial, rt in runtimes.items():
            capacity = rt.device.pump.profile.reservoir_nl
            status, answer = await put(serial, capacity + 1)
            assert status == 400, (rt.device.pump.profile.name, answer)
            text = json.dumps(answer)
            assert f"body.true_volume_nl must be 0 .. {capacity}" in text
            if capacity < schema["maximum"]:  # refused by this pump, not by the document
                assert f"holds {capacity // fm.NL_PER_ML} mL" in text
            assert rt.device.pump.status().true_reservoir_nl != capacity + 1
            status, _ = await put(serial, capacity)
            assert status == 200 and rt.device.pump.status().true_reservoir_nl == capacity
            status, _ = await put(serial, schema["maximum"] + 1)
            assert status == 400  # beyond the document: the schema's own validation

    asyncio.run(check())


MCG, MG = fm.ConcentrationUnit.MCG_PER_ML, fm.ConcentrationUnit.MG_PER_ML


@pytest.mark.parametrize(
    ("ng", "unit", "shown"),
    [
        (2_000_000, MCG, "2000 mcg"),  # the panel's 2000 mcg/mL, never 2 mg/mL
        (2_000_000, MG, "2 mg"),
        (500_000, MG, "0.5 mg"),  # never 500 mcg on a mg pump
        (525_000, MCG, "525 mcg"),
        (1, MCG, "0.001 mcg"),
        (25_000_000, MG, "25 mg"),
        (123_456, MG, "0.1235 mg"),  # 4 decimals, as console.js fmtMass
        (0, MG, "0 mg"),
    ],
)
def test_one_rule_for_a_mass(ng: int, unit: fm.ConcentrationUnit, shown: str) -> None:
    assert mass(ng, unit) == shown


def test_the_log_writes_a_concentration_in_the_pumps_unit() -> None:
    e = fm.Event(7, 0, fm.EventKind.DRUG_CHANGED, fm.Source.PROGRAMMER, fm.NO_COMMAND, 2, 2_000_000)
    assert describe(e, MCG).endswith(", 2000 mcg/mL")
    assert describe(e, MG).endswith(", 2 mg/mL")
    assert record(e, MCG)["text"] == describe(e, MCG)


async def test_the_console_log_and_panel_use_one_unit(server: EmulatorServer) -> None:
    """A baclofen pump filled at 2000 mcg/mL: its state says MCG_PER_ML and the log's
    DRUG_CHANGED record says 2000 mcg/mL (it said 2 mg/mL while the panel said 2000 mcg/mL)."""
    assert server.control is not None
    cp = server.control
    stream = await Sse.open(cp.url, f"/v1/pumps/{SERIAL}/stream?access_token={cp.token}")
    try:
        _, state = await stream.until("state")
        assert state["status"]["conc_unit"] == "MCG_PER_ML"
        _, log = await stream.until("log")
    finally:
        stream.close()
    texts = [r["text"] for r in log["records"] if r["kind"] == "DRUG_CHANGED"]
    assert texts and all(t.endswith(" mcg/mL") for t in texts), texts
    assert any(t.endswith(", 2000 mcg/mL") for t in texts), texts
    program = [r["text"] for r in log["records"] if r["kind"] == "PROGRAM_CHANGED"]
    assert program and all(" mcg/day" in t for t in program), program
