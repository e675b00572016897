"""Project-wide checks: lint, format and types clean; layering holds; CLIs and bench run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*cmd: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_ruff_lint_is_clean() -> None:
    r = _run(str(BIN / "ruff"), "check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_is_clean() -> None:
    r = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean_and_strict_where_promised() -> None:
    r = _run(str(BIN / "mypy"))
    assert r.returncode == 0, r.stdout + r.stderr
    config = (ROOT / "pyproject.toml").read_text()
    assert 'module = ["protocol.*", "firmware_model.*"]\nstrict = true' in config


FORBIDDEN_IN_PURE = {
    "asyncio", "socket", "serial", "aiomqtt", "paho", "sqlite3", "time", "threading",
    "emulator", "programmer", "firmware_model", "random", "secrets",
}  # fmt: skip


def _imports(package: str, exclude: str = "") -> set[str]:
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        if path.name == exclude:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_protocol_is_sans_io_and_imports_no_other_layer() -> None:
    # gen.py, the build-time generator, may use a seeded random.Random for example values;
    # nothing else in the package may touch randomness, clocks or I/O libraries.
    bad = _imports("protocol") & FORBIDDEN_IN_PURE - {"random"}
    assert not bad, f"protocol imports {bad}"
    runtime = _imports("protocol", exclude="gen.py")
    assert not runtime & FORBIDDEN_IN_PURE, runtime & FORBIDDEN_IN_PURE


def test_firmware_model_is_pure_and_imports_no_other_layer() -> None:
    bad = _imports("firmware_model") & (FORBIDDEN_IN_PURE | {"protocol", "datetime", "os"})
    assert not bad, f"firmware_model imports {bad}"


def test_programmer_imports_only_protocol() -> None:
    assert not _imports("programmer") & {"emulator", "firmware_model"}


@pytest.mark.parametrize("script", ["pump-emulator", "pump-programmer"])
def test_console_scripts_report_their_version(script: str) -> None:
    r = _run(str(BIN / script), "--version")
    assert r.returncode == 0 and "0.1.0" in r.stdout, r.stdout + r.stderr


def test_emulator_demo_shows_replay_and_forgery_refused() -> None:
    r = _run(str(BIN / "pump-emulator"), "demo")
    assert r.returncode == 0, r.stderr
    assert "refused: Replayed" in r.stdout and "refused: AuthFailed" in r.stdout


def test_programmer_decode_inspects_frames_and_reports_errors() -> None:
    from protocol import gen

    frame = gen.handshake_vectors()["frames"]["set_continuous_dose"]
    r = _run(str(BIN / "pump-programmer"), "decode", frame)
    assert r.returncode == 0 and "dose_ng_per_day=500000" in r.stdout, r.stdout + r.stderr
    r = _run(str(BIN / "pump-programmer"), "decode", frame[:-4] + "0000")
    assert r.returncode == 1 and "BadCrc" in r.stdout
    r = _run(str(BIN / "pump-programmer"), "decode", "not hex")
    assert r.returncode == 2 and "not hexadecimal" in r.stderr


def test_codec_benchmark_runs() -> None:
    """Smoke test only: the benchmark prints ratios, speed is never asserted in tests."""
    r = _run(sys.executable, "bench/codec.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "hand/ours" in r.stdout and "stream" in r.stdout


def test_simulation_benchmark_runs() -> None:
    """Smoke test only: speed is measured by bench/simulate.py, never asserted here."""
    r = _run(sys.executable, "bench/simulate.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cost ratio" in r.stdout and "1-min ticks" in r.stdout


def test_roundtrip_benchmark_runs() -> None:
    """Smoke test only: round-trip ratios are measured by bench/roundtrip.py, never asserted."""
    r = _run(sys.executable, "bench/roundtrip.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pty status / floor" in r.stdout and "mqtt status / floor" in r.stdout


def test_session_renewal_benchmark_runs() -> None:
    """Smoke test only: the cost of renewing a forgotten session is measured, not asserted."""
    r = _run(sys.executable, "bench/session_renewal.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ratio forgotten / in session" in r.stdout and "plain errors ignored: 1" in r.stdout


def test_console_benchmark_runs() -> None:
    """Smoke test only: the console's load time is measured by bench/console.py, not here."""
    r = _run(sys.executable, "bench/console.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ratio console / baseline" in r.stdout


def test_fleet_benchmark_runs() -> None:
    """Smoke test only: fleet figures are measured by bench/fleet.py, never asserted here."""
    r = _run(sys.executable, "bench/fleet.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "raw baseline" in r.stdout and "target" in r.stdout


def test_mqtt_flood_benchmark_runs() -> None:
    """Smoke test only: the pump's RSS under a flood is measured by bench/mqtt_flood.py."""
    r = _run(sys.executable, "bench/mqtt_flood.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "answered requests" in r.stdout and "RSS grew" in r.stdout


def test_bridge_benchmark_runs() -> None:
    """Smoke test only: the bridged-broker figures are measured by bench/bridge.py."""
    r = _run(sys.executable, "bench/bridge.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "across the bridge" in r.stdout and "kept" in r.stdout


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2, "the README opens with exactly two commands"
    install_and_run, test_command = block
    assert "pump-emulator" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == test_command


def test_web_programmer_benchmark_runs() -> None:
    """Smoke test only: time to the first interrogation on screen is measured by
    bench/web_first_interrogation.py, never asserted here."""
    r = _run(sys.executable, "bench/web_first_interrogation.py", "--quick")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ratio web summary / baseline" in r.stdout
