"""Training scenarios: every built-in one runs with its expectations checked; the format's
errors are clear; the report is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator._scenario import (
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    run_scenario,
    write_report,
)

MINIMAL = """
name = "t"
[run]
duration = "3d"
[[timeline]]
at = "0d"
action = "refill"
withdrawn_ml = 0
added_ml = 20
drug = "morphine"
concentration = "25mg/mL"
[[timeline]]
at = "0d"
action = "dose"
dose = "3mg"
"""


def test_there_are_at_least_eight_training_scenarios() -> None:
    assert len(builtin_scenarios()) >= 8


@pytest.mark.parametrize("name", builtin_scenarios())
def test_builtin_scenario_meets_its_expectations(name: str) -> None:
    report = run_scenario(load_scenario(name))
    failures = [r["detail"] for r in report.results if not r["passed"]]
    assert report.results and not failures, failures


def test_a_failed_expectation_is_reported() -> None:
    text = MINIMAL + '[[expect]]\nalarm = "low_reservoir"\nby_day = 2\n'
    report = run_scenario(load_scenario(text))
    assert not report.passed
    assert "LOW_RESERVOIR" in report.results[0]["detail"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('[[timeline]]\nat = "1d"\naction = "teleport"\n', "action must be one of"),
        ('[[timeline]]\nat = "soon"\naction = "dose"\ndose = "1mg"\n', "duration"),
        ('[[timeline]]\nat = "1d"\naction = "dose"\ndose = "1 spoon"\n', "dose like"),
        ('[[timeline]]\nat = "1d"\naction = "dose"\nrate = 1\n', "takes no rate"),
        ('[[expect]]\nmood = "calm"\n', "say what to expect"),
        ('[[expect]]\nalarm = "x"\nby_day = 1\ncolour = 2\n', "unknown field"),
        ("[weather]\nsunny = true\n", "unknown section"),
        ('[[timeline]]\nat = "1d"\naction = "dose"\ndose = "40mg"\n', "refused"),
    ],
)
def test_bad_scenarios_are_refused_with_a_clear_message(extra: str, fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment):
        run_scenario(load_scenario(MINIMAL + extra))


def test_report_has_a_json_summary_and_a_png_plot(tmp_path: Path) -> None:
    report = run_scenario(load_scenario("low-reservoir-alarm-day"))
    written = write_report(report, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"] and summary["alarms"][0]["alarm"] == "LOW_RESERVOIR"
    assert round(summary["alarms"][0]["day"]) == 72
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(written) == 2


def test_scenario_cli_exit_codes(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "emulator.cli", "scenario", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    listed = run("list")
    assert listed.returncode == 0 and "routine-refill" in listed.stdout
    ok = run("run", "routine-refill", "--out", str(tmp_path / "a"), "--no-plot")
    assert ok.returncode == 0 and "PASSED" in ok.stdout
    failing = tmp_path / "failing.toml"
    failing.write_text(MINIMAL + '[[expect]]\nalarm = "motor_stall"\nby_day = 3\n')
    bad = run("run", str(failing), "--out", str(tmp_path / "b"), "--no-plot")
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    err = run("run", str(broken))
    assert err.returncode == 2 and "TOML" in err.stderr


async def test_serve_starts_from_a_scenario(tmp_path: Path) -> None:
    import firmware_model as fm
    from emulator import EmulatorServer, ServerOptions

    options = ServerOptions(scenario="patient-bolus-lockout", pty=False)
    async with EmulatorServer(tmp_path, options) as server:
        pump = server.device.pump
        assert pump.patient_bolus.enabled and pump.status().daily_dose_ng == 3_000_000
        assert pump.status().drug is fm.Drug.MORPHINE
    with pytest.raises(ScenarioError):
        async with EmulatorServer(tmp_path / "b", ServerOptions(scenario="nonexistent.toml")):
            pass
