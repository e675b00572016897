"""Errors a user meets on the command line (issue 19 items 4, 5, 8): a clear message, the
documented exit status, no traceback, no internal names."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._scenario import ScenarioError, builtin_scenarios, load_scenario
from programmer.cli import main as programmer_main

from .test_programmer_cli import cli


def _emulator(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args],
        check=False, capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip


def test_serve_on_a_missing_serial_device_says_so_and_exits_2(tmp_path: Path) -> None:
    done = _emulator("serve", "--port", "/dev/nonexistent", "--state-dir", str(tmp_path / "s"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "pump-emulator: error: cannot open serial port /dev/nonexistent: No such file or directory"
    )


def test_an_unknown_scenario_name_says_no_such_scenario_and_lists_the_shipped_ones(
    tmp_path: Path,
) -> None:
    done = _emulator("scenario", "run", "no-such-scenario", cwd=tmp_path)
    assert done.returncode == 2
    assert "TOML" not in done.stderr
    assert "no such scenario or file: 'no-such-scenario'" in done.stderr
    for name in builtin_scenarios():
        assert name in done.stderr
    assert list(tmp_path.iterdir()) == []  # no report directory for a scenario that never ran


@pytest.mark.parametrize("source", ["missing.toml", "routine-refil", Path("nope/x.toml")])
def test_load_scenario_names_a_missing_file_or_name(source: str | Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario or file"):
        load_scenario(source)


def test_a_scenario_file_without_the_toml_suffix_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "mine.scenario"
    path.write_text('name = "mine"\n[pump]\nprofile = "synchromed-ii-20"\n', encoding="utf-8")
    assert load_scenario(str(path)).name == "mine"


# --- pump-programmer (item 8) -----------------------------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=100_000)) as s:
        yield s


async def test_the_wrong_pump_message_shows_only_the_options_the_user_gave(
    server: EmulatorServer, tmp_path: Path
) -> None:
    rc, _, err = await cli(
        server,
        tmp_path,
        "interrogate",
        env={"ITP_CONNECT": f"serial://{server.port_path}?pump=999"},
    )
    assert rc == 4 and "a pump answering as 1234" in err and "not pump 999" in err
    assert "baud" not in err  # the user never gave ?baud=9600
    assert f"on serial://{server.port_path}," in err
    assert (
        str(programmer.parse_address("serial:///dev/x?baud=19200")) == "serial:///dev/x?baud=19200"
    )
    assert str(programmer.parse_address("/dev/x")) == "serial:///dev/x"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("set-dose", "-5mg"), "argument dose: '-5mg': cannot be negative"),
        (("bolus", "-1mg"), "argument dose: '-1mg': cannot be negative"),
        (
            ("refill", "--withdrawn", "0", "--added", "-5ml"),
            "argument --added: '-5ml': cannot be negative",
        ),
        (("schedule", "00:00=-1mg"), "cannot be negative"),
    ],
)
def test_a_negative_value_is_called_negative_not_a_missing_argument(
    args: tuple[str, ...], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        programmer_main([*args, "--connect", "/dev/null"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "required" not in err and "expected one argument" not in err


async def test_a_patient_key_on_a_clinician_command_says_it_needs_the_clinician_key(
    server: EmulatorServer, tmp_path: Path
) -> None:
    patient = {"ITP_KEY_FILE": str(server.key_files[p.Role.PATIENT])}
    before = server.device.pump.program_version
    rc, _, err = await cli(server, tmp_path, "set-dose", "3mg", "--role", "patient", env=patient)
    assert rc == 6
    assert err.startswith("pump-programmer: set-dose needs the clinician key")
    for internal in ("GET_DRUG", "SET_", "ROLE_FORBIDDEN", "Refused"):
        assert internal not in err
    assert server.device.pump.program_version == before
    # the patient key without --role: the handshake fails; the message says which key it needs
    rc, _, err = await cli(server, tmp_path, "set-dose", "3mg", env=patient)
    assert rc == 5 and "set-dose needs the clinician key" in err
    assert server.device.pump.program_version == before


# --- overfill, refused on the Finish screen (item 6) ------------------------------------------


async def test_an_overfill_is_refused_up_front_with_the_capacity(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """50 mL into a 20 mL pump: the Finish screen refuses it before showing a diff or a
    discrepancy warning (no --yes/--confirm needed to find out), naming the capacity; the
    pump's state is unchanged. The library refuses it the same way (BadInput)."""
    before = server.device.pump.program_version
    reservoir = server.device.pump.status().reservoir_nl
    rc, out, err = await cli(
        server, tmp_path, "refill", "--withdrawn", "0", "--added", "50",
        "--drug", "morphine", "--concentration", "25mg/mL",
    )  # fmt: skip
    assert rc == 2, (out, err)
    assert "capacity is 20 mL" in err and "added 50 mL" in err
    assert "new reservoir" not in out and "discrepancy" not in out + err
    assert server.device.pump.program_version == before
    assert server.device.pump.status().reservoir_nl == reservoir
    async with programmer.connect(
        f"serial://{server.port_path}",
        key=server.key_files[p.Role.CLINICIAN],
        journal=tmp_path / "journal.sqlite",
    ) as pump:
        with pytest.raises(programmer.BadInput, match="capacity is 20 mL"):
            await pump.prepare_refill(
                withdrawn_nl=0, added_nl=20_000_001, drug=p.Drug.MORPHINE, conc_ng_per_ml=1000
            )
        change = await pump.prepare_refill(
            withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE, conc_ng_per_ml=1000
        )  # exactly full is fine
        assert change.diff[0][2] == "20 mL"
