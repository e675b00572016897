"""Errors a user meets on the command line (issue 19 items 4, 5, 8): a clear message, the
documented exit status, no traceback, no internal names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emulator._scenario import ScenarioError, builtin_scenarios, load_scenario


def _emulator(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd,
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
