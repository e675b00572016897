"""The pytest plugin, as a programmer developer uses it: an example suite run with pytester in
a fresh pytest process (the plugin is found through its entry point)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = """
from pathlib import Path

import pytest
import programmer
from protocol import Drug


@pytest.mark.pump(speed=1000)
def test_refill_dose_and_the_low_reservoir_alarm(pump_emulator, tmp_path):
    with programmer.connect_sync(
        pump_emulator.connection, key=pump_emulator.key_file, journal=tmp_path / "j"
    ) as pump:
        pump.prepare_refill(
            withdrawn_nl=0, added_nl=20_000_000, drug=Drug.MORPHINE, conc_ng_per_ml=25_000_000
        ).commit()
        pump.prepare_dose(3_000_000).commit()
    pump_emulator.control.advance(until="next-alarm")
    assert "LOW_RESERVOIR" in pump_emulator.control.state()["status"]["active_alarms"]


@pytest.mark.pump(profile="prometra-ii-40", serial=77)
def test_profile_and_serial(pump_emulator):
    state = pump_emulator.control.state()
    assert state["profile"] == "Prometra II 40 mL" and state["serial"] == 77


@pytest.mark.parametrize("pump_emulator", [{"profile": "constant-flow"}], indirect=True)
def test_indirect_parameters(pump_emulator):
    assert pump_emulator.control.state()["profile"].startswith("Constant")


@pytest.mark.pump(scenario="low-reservoir-alarm-day", speed=1000)
def test_a_scenario_starting_state(pump_emulator):
    state = pump_emulator.control.state()
    assert state["status"]["drug"] == "BACLOFEN" and state["status"]["reservoir_nl"] > 19_000_000


@pytest.mark.pump(speed=1000)
def test_over_mqtt_with_a_fault(pump_emulator_mqtt, tmp_path):
    assert pump_emulator_mqtt.connection.startswith("mqtt://")
    pump_emulator_mqtt.control.inject("motor_stall")
    with programmer.connect_sync(
        pump_emulator_mqtt.connection, key=pump_emulator_mqtt.key_file, journal=tmp_path / "j"
    ) as pump:
        assert [a.alarm.name for a in pump.alarms()] == ["MOTOR_STALL"]

"""


def test_the_plugin_serves_an_example_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_example=EXAMPLE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=5)


def test_an_unknown_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
from pathlib import Path

import pytest

@pytest.mark.pump(colour="blue")
def test_x(pump_emulator):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*unknown option*colour*"])


def test_a_plugin_user_sees_no_pytest_asyncio_loop_scope_warning(pytester: pytest.Pytester) -> None:
    """A user's project without `asyncio_default_fixture_loop_scope` in its configuration: the
    plugin sets it (to "function", pytest-asyncio's future default), so pytest-asyncio's
    deprecation warning never shows; -W error turns that warning into a failed run."""
    pytester.makepyfile(
        test_plain="def test_x(pump_emulator):\n    assert pump_emulator.connection\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "-W", "error::pytest.PytestDeprecationWarning"
    )
    result.assert_outcomes(passed=1)
    assert "asyncio_default_fixture_loop_scope" not in result.stdout.str() + result.stderr.str()


def test_a_users_own_loop_scope_is_kept(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = module\n")
    pytester.makepyfile(test_plain="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*asyncio_default_fixture_loop_scope=module*"])


def test_the_readme_plugin_example_is_the_test_ci_runs() -> None:
    """README's "Testing your own programmer code" block is tests/test_readme_plugin_example.py,
    byte for byte (imports included), so the example a user copies is one CI runs."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Testing your own programmer code") :]
    block = section.split("```python\n", 1)[1].split("```\n", 1)[0]
    example = (root / "tests" / "test_readme_plugin_example.py").read_text(encoding="utf-8")
    assert block == example
    assert "from protocol import ConcentrationUnit, Drug" in block
