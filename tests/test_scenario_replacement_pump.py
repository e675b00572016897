"""The replacement-pump scenario (emulator/scenarios/replacement-pump-new-serial.toml): a
scenario's `[pump] serial` is the serial `serve --scenario` serves, so a trainer can stage
the wrong-pump mistake of docs/programmer.md section 9.1 with one command, and the one-wand
line of section 9.2 on the same pump (docs/firmware_model.md section 21)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._scenario import load_scenario, run_scenario

from .emulator_helpers import wait_ready

NAME = "replacement-pump-new-serial"
SPEED = 100_000


def test_the_scenario_names_its_serial_and_runs() -> None:
    """The scenario's pump is the SynchroMed II 40 mL serial 1235, filled with 40 mL of
    baclofen 2000 mcg/mL at 300 mcg/day: 0.15 mL/day, so 40 mL lasts 266 days and no low
    reservoir alarm comes in its 3 days; the priming bolus (85 cm x 2.6 uL/cm = 221 uL of
    catheter plus the pump's tubing) completes within the first hour."""
    scenario = load_scenario(NAME)
    assert (scenario.serial, scenario.serial_named) == (1235, True)
    result = run_scenario(scenario)
    assert result.passed, result.results
    assert result.pumps == [{"day": 0.0, "profile": "SynchroMed II 40 mL", "serial": 1235}]


def test_a_scenario_without_a_serial_keeps_the_served_one() -> None:
    scenario = load_scenario("routine-refill")
    assert scenario.serial_named is False


async def test_serve_scenario_serves_its_serial_and_the_old_card_is_the_wrong_pump(
    tmp_path: Path,
) -> None:
    """The programmer still set to pump 1234 is told which pump answered; connecting to
    1235, as the narration says, interrogates the filled pump; a second programmer on the
    wand line is told the line is held."""
    options = ServerOptions(scenario=NAME, speed_milli=SPEED)
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.device.pump.serial == 1235
        key = server.key_files[p.Role.CLINICIAN]
        line = f"serial://{server.port_path}"
        with pytest.raises(programmer.WrongPump) as e:
            async with programmer.connect(f"{line}?pump=1234", key=key, journal=tmp_path / "j"):
                pass
        assert (e.value.asked, e.value.answered) == (1234, 1235)
        assert str(e.value).startswith("wrong pump: a pump answering as 1235 is on serial://")
        assert not server.device.security.sessions
        async with programmer.connect(f"{line}?pump=1235", key=key, journal=tmp_path / "j") as pump:
            seen = await pump.interrogate()
            assert seen.device.serial_number == 1235
            assert seen.drug is not None and seen.drug.drug is p.Drug.BACLOFEN
            assert seen.status.reservoir_volume_nl < 40_000_000  # the priming bolus took some
            with pytest.raises(programmer.LineHeld):
                async with programmer.connect(line, key=key, journal=tmp_path / "k"):
                    pass


async def test_an_existing_memory_of_another_pump_is_refused_clearly(tmp_path: Path) -> None:
    """A state directory holding pump 1234 is not silently turned into pump 1235."""
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=SPEED)) as server:
        assert server.device.pump.serial == 1234
    with pytest.raises(Exception, match="holds pump 1234, not 1235: use another --state-dir"):
        async with EmulatorServer(tmp_path / "pump", ServerOptions(scenario=NAME)):
            pass


def test_the_cli_keeps_a_scenario_pump_in_its_own_default_state_dir(tmp_path: Path) -> None:
    """`serve --scenario` with no --state-dir and no --pump-serial keeps pump 1235 in
    itp-emulator/pump-1235, beside (not inside) the default pump 1234's memory."""
    ready = tmp_path / "ready.json"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    with (tmp_path / "log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--scenario", NAME,
             "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL, stderr=log, env=env,
        )  # fmt: skip
    try:
        info = wait_ready(proc, ready, tmp_path / "log", timeout_s=20)
        assert info["pump_serial"] == 1235
        assert info["state"] == str(tmp_path / "state" / "itp-emulator" / "pump-1235")
    finally:
        proc.terminate()
        proc.wait(10)
