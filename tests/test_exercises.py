"""Graded exercises (emulator/_exercise.py): every built-in exercise can be done right through
the programmer library over the real protocol and then passes; doing nothing fails; a wrong
`[exercise]` part is refused with a message naming the field."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._exercise import grade, grade_html, start_of, write_grade
from emulator._scenario import ScenarioError, builtin_scenarios, load_scenario, starting_pump

MCG = 1_000
MG = 1_000_000
ML = 1_000_000
EXERCISES = [n for n in builtin_scenarios() if n.startswith("exercise-")]


async def refill(pump: programmer.Pump, withdrawn: int, conc: int, drug: p.Drug) -> None:
    change = await pump.prepare_refill(
        withdrawn_nl=withdrawn, added_nl=20 * ML, drug=drug, conc_ng_per_ml=conc
    )
    await change.commit(confirm=bool(change.warnings))


async def refill_keep_dose(pump: programmer.Pump) -> None:
    await refill(pump, 8 * ML, 2000 * MCG, p.Drug.BACLOFEN)


async def concentration_bridge(pump: programmer.Pump) -> None:
    await refill(pump, 10 * ML, 2000 * MCG, p.Drug.BACLOFEN)
    await (await pump.prepare_bridge(1000 * MCG, 400 * MCG)).commit()


async def flex_schedule(pump: programmer.Pump) -> None:
    steps = [(0, 400 * MCG), (7 * 60, 600 * MCG), (22 * 60, 400 * MCG)]
    await (await pump.prepare_schedule(steps)).commit()


async def patient_bolus(pump: programmer.Pump) -> None:
    change = await pump.prepare_patient_bolus(
        enabled=True, dose_ng=MG // 4, duration_ms=600_000, lockout_ms=7_200_000, max_per_24h=4
    )
    await change.commit(confirm=bool(change.warnings))


async def low_reservoir_alarm(pump: programmer.Pump) -> None:
    alarms = await pump.alarms()
    assert [a.alarm for a in alarms] == [p.Alarm.LOW_RESERVOIR]
    await refill(pump, 1_500_000, 2000 * MCG, p.Drug.BACLOFEN)
    if await pump.alarms():
        await pump.acknowledge_alarms(p.Alarm.LOW_RESERVOIR)


async def discrepancy(pump: programmer.Pump) -> None:
    change = await pump.prepare_refill(
        withdrawn_nl=4 * ML, added_nl=20 * ML, drug=p.Drug.MORPHINE, conc_ng_per_ml=25 * MG
    )
    assert any("beyond the limits" in w for w in change.warnings)  # the finding
    await pump.suspend()  # and the refill is not recorded


RIGHT: dict[str, Callable[[programmer.Pump], Awaitable[None]]] = {
    "exercise-refill-keep-dose": refill_keep_dose,
    "exercise-concentration-bridge": concentration_bridge,
    "exercise-flex-schedule": flex_schedule,
    "exercise-patient-bolus": patient_bolus,
    "exercise-low-reservoir-alarm": low_reservoir_alarm,
    "exercise-discrepancy": discrepancy,
}


def test_there_are_six_exercises_each_with_a_right_attempt() -> None:
    assert sorted(EXERCISES) == sorted(RIGHT)


@pytest.fixture
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(speed_milli=1000, scenario=request.param)
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


@pytest.mark.parametrize("served", EXERCISES, indirect=True)
async def test_an_exercise_done_right_passes_and_nothing_done_fails(
    served: EmulatorServer, tmp_path: Path
) -> None:
    rt = served.runtime
    assert rt is not None and rt.exercise is not None and served.port_path
    exercise, start = rt.exercise
    before = grade(exercise, rt.device.pump, start, activity=[])
    assert not before["passed"]  # nothing done yet
    name = served.options.scenario
    assert name is not None
    async with programmer.connect(
        f"serial://{served.port_path}",
        key=served.key_files[p.Role.CLINICIAN],
        journal=tmp_path / "journal.sqlite",
    ) as pump:
        await RIGHT[name](pump)
    after = grade(exercise, rt.device.pump, start)
    assert after["passed"], after["checks"]
    assert 0 <= after["minutes_taken"] < 1


@pytest.mark.parametrize(
    ("part", "why"),
    [
        ('task = ""\n[[exercise.check]]\nevent = "refill"', "exercise.task"),
        ('task = "t"', "at least one"),
        ('task = "t"\n[[exercise.check]]\nwhat = "x"', "say what to check"),
        ('task = "t"\n[[exercise.check]]\ndrug = "aspirin"', "exercise.check[1].drug"),
        ('task = "t"\n[[exercise.check]]\ndaily_dose = "5"', "exercise.check[1].daily_dose"),
        ('task = "t"\ncolour = 1\n[[exercise.check]]\nevent = "refill"', "unknown key"),
        ('task = "t"\nmax_minutes = -1\n[[exercise.check]]\nevent = "refill"', "max_minutes"),
    ],
)
def test_a_wrong_exercise_part_is_refused_naming_the_field(part: str, why: str) -> None:
    with pytest.raises(ScenarioError, match=why.replace("[", r"\[").replace("]", r"\]")):
        load_scenario(f'name = "x"\n[exercise]\n{part}\n')


async def test_the_report_plots_reservoir_and_dose_over_the_exercise(tmp_path: Path) -> None:
    """A refill on a paused clock: the trace holds the start and the state after the refill
    (the point just before it equals the start), so the plot has exactly two points; the JSON
    holds the series in mL and mcg/day and grade.html an SVG with two points per line."""
    options = ServerOptions(speed_milli=0, scenario="exercise-refill-keep-dose")
    async with EmulatorServer(tmp_path / "pump", options) as served:
        rt = served.runtime
        assert rt is not None and rt.exercise is not None and served.port_path
        before = rt.device.pump.status()
        async with programmer.connect(
            f"serial://{served.port_path}",
            key=served.key_files[p.Role.CLINICIAN],
            journal=tmp_path / "journal.sqlite",
        ) as pump:
            await refill_keep_dose(pump)
        exercise, start = rt.exercise
        result = grade(exercise, rt.device.pump, start, trace=rt.exercise_trace)
        after = rt.device.pump.status()
    plot = result["plot"]
    assert plot["points"] == 2
    assert plot["clock_ms"] == [before.clock_ms, after.clock_ms]
    assert plot["reservoir_ml"] == [before.reservoir_nl / ML, after.reservoir_nl / ML]
    assert plot["true_reservoir_ml"] == [
        before.true_reservoir_nl / ML,
        after.true_reservoir_nl / ML,
    ]
    assert plot["daily_dose_mcg"] == [before.daily_dose_ng / MCG, after.daily_dose_ng / MCG]
    assert plot["reservoir_ml"][0] != plot["reservoir_ml"][1]  # the refill is a step
    json_path, html_path = write_grade(result, tmp_path / "report")
    assert json.loads(json_path.read_text())["plot"] == plot
    page = html_path.read_text()
    assert '<svg id="plot"' in page and 'data-points="2"' in page
    for line in ("reservoir", "true-reservoir"):
        points = re.search(rf'class="{line}"[^>]* points="([^"]*)"', page)
        assert points is not None and len(points.group(1).split()) == 2
    dose = re.search(r'class="dose"[^>]* points="([^"]*)"', page)
    assert dose is not None and len(dose.group(1).split()) == 3  # drawn as steps


def test_a_report_without_a_trace_has_no_plot() -> None:
    scenario = load_scenario("exercise-refill-keep-dose")
    assert scenario.exercise is not None
    pump = starting_pump(scenario, now_ms=0, serial=1)
    result = grade(scenario.exercise, pump, start_of(pump))
    assert result["plot"] is None
    assert "<svg" not in grade_html(result)
