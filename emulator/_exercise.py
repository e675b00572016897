"""Graded exercises: a scenario's `[exercise]` part (docs/emulator.md section 14, "Graded
exercises"): the task given to the trainee and the checks on the pump's state and log after
the trainee's actions, the time taken and the warnings overridden.
`grade()` scores a live or finished pump; the
report is JSON and HTML (`write_grade`).

The grader reads the emulated pump (the firmware model), never the trainee's programmer: the
state it checks is what the pump holds. The warnings a trainee confirmed are known only to the
programmer: the web programmer's activity file (`pump-programmer web --activity FILE`) carries
them, and `grade(..., activity=...)` counts them.

    [exercise]
    task = "Refill with baclofen 2000 mcg/mL and keep the daily dose."
    max_minutes = 20
    max_warnings_overridden = 0

    [[exercise.check]]
    what = "the refill is recorded"
    event = "refill"            # a record of this kind after the start (min_count, max_count)

    [[exercise.check]]
    drug = "baclofen"           # state: drug, concentration, daily_dose, mode, reservoir_min_ml,
    concentration = "2000mcg/mL"  # reservoir_max_ml, no_alarm, steps, patient_bolus, lockout_min
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any

import firmware_model as fm

from ._exercise_plot import Trace, series, svg
from ._scenario_units import ScenarioError, _enum, concentration, mass_ng, volume_nl

CHECK_KEYS = {
    "what", "event", "min_count", "max_count", "drug", "concentration", "daily_dose", "mode",
    "reservoir_min_ml", "reservoir_max_ml", "no_alarm", "alarm_state", "alarm", "steps",
    "patient_bolus", "patient_bolus_dose", "lockout_min", "max_per_day", "suspended",
}  # fmt: skip
EXERCISE_KEYS = {"task", "check", "max_minutes", "max_warnings_overridden", "hint"}
_CHANGES = {fm.EventKind.SESSION_OPENED, fm.EventKind.SESSION_CLOSED, fm.EventKind.SECURITY}


@dataclasses.dataclass(frozen=True)
class Exercise:
    task: str
    checks: tuple[dict[str, Any], ...]
    max_minutes: float | None = None
    max_warnings_overridden: int | None = None
    hint: str = ""


@dataclasses.dataclass(frozen=True)
class Start:
    """Where an exercise started on a pump: the newest log record then, and its clock."""

    seq: int
    clock_ms: int


def parse_exercise(data: Any) -> Exercise:
    if not isinstance(data, dict):
        raise ScenarioError("exercise: a table (task, check, max_minutes, ...)")
    extra = set(data) - EXERCISE_KEYS
    if extra:
        raise ScenarioError(f"exercise: unknown key(s) {', '.join(sorted(extra))}")
    task = data.get("task")
    if not isinstance(task, str) or not task.strip():
        raise ScenarioError("exercise.task: the task given to the trainee, as text")
    checks = data.get("check", [])
    if not isinstance(checks, list) or not checks:
        raise ScenarioError("exercise.check: at least one [[exercise.check]]")
    for i, c in enumerate(checks, 1):
        where = f"exercise.check[{i}]"
        if not isinstance(c, dict):
            raise ScenarioError(f"{where}: a table of fields")
        unknown = set(c) - CHECK_KEYS
        if unknown:
            raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if set(c) <= {"what", "min_count", "max_count"}:
            raise ScenarioError(f"{where}: say what to check (event, drug, daily_dose, ...)")
        _evaluate(c, where, None, Start(0, 0))  # every value parses, before any trainee acts
    minutes = data.get("max_minutes")
    if minutes is not None and not (isinstance(minutes, int | float) and minutes > 0):
        raise ScenarioError("exercise.max_minutes: a number of minutes > 0")
    overridden = data.get("max_warnings_overridden")
    if overridden is not None and not (isinstance(overridden, int) and overridden >= 0):
        raise ScenarioError("exercise.max_warnings_overridden: a whole number >= 0")
    return Exercise(task.strip(), tuple(checks), minutes, overridden, str(data.get("hint", "")))


def start_of(pump: fm.Pump) -> Start:
    return Start(pump.event_seq, pump.clock_ms)


# --- checks ----------------------------------------------------------------------------------


def _describe(c: dict[str, Any]) -> str:
    if "what" in c:
        return str(c["what"])
    return ", ".join(f"{k} = {v}" for k, v in c.items())


def _evaluate(
    c: dict[str, Any], where: str, pump: fm.Pump | None, start: Start
) -> list[tuple[bool, str]]:
    """(ok, what was found) for every condition of one check; with no pump, only parse."""
    out: list[tuple[bool, str]] = []
    st = pump.status() if pump is not None else None
    records = [e for e in pump.events() if e.seq > start.seq] if pump is not None else []
    if "event" in c:
        kind = _enum(fm.EventKind, c["event"], f"{where}.event")
        low, high = c.get("min_count", 1), c.get("max_count")
        if st is not None:
            n = sum(1 for e in records if e.kind is kind)
            ok = n >= low and (high is None or n <= high)
            out.append((ok, f"{n} {kind.name.lower()} record(s)"))
    if "drug" in c:
        drug = _enum(fm.Drug, c["drug"], f"{where}.drug")
        if st is not None:
            out.append((st.drug is drug, f"drug {st.drug.name.lower()}"))
    if "concentration" in c:
        value, _ = concentration(c["concentration"], f"{where}.concentration")
        if st is not None:
            out.append((st.conc_ng_per_ml == value, f"concentration {st.conc_ng_per_ml} ng/mL"))
    if "daily_dose" in c:
        dose = mass_ng(c["daily_dose"], f"{where}.daily_dose")
        if st is not None:
            out.append((st.daily_dose_ng == dose, f"daily dose {st.daily_dose_ng} ng/day"))
    if "mode" in c:
        mode = _enum(fm.Mode, c["mode"], f"{where}.mode")
        if st is not None:
            ok = st.mode is mode and not st.suspended
            out.append((ok, f"mode {st.mode.name.lower()}" + (" suspended" * st.suspended)))
    for key, sign in (("reservoir_min_ml", 1), ("reservoir_max_ml", -1)):
        if key in c:
            nl = volume_nl(c[key], f"{where}.{key}")
            if st is not None:
                ok = (st.reservoir_nl - nl) * sign >= 0
                out.append((ok, f"reservoir {st.reservoir_nl / fm.NL_PER_ML:g} mL"))
    if "no_alarm" in c:
        alarm = _enum(fm.Alarm, c["no_alarm"], f"{where}.no_alarm")
        if pump is not None:
            raised = [a for a in pump.alarms() if a.alarm is alarm]
            state = raised[0].state.name.lower() if raised else "none"
            out.append((not raised, f"{alarm.name.lower()}: {state}"))
    if "alarm" in c or "alarm_state" in c:
        alarm = _enum(fm.Alarm, c.get("alarm"), f"{where}.alarm")
        want = _enum(fm.AlarmState, c.get("alarm_state"), f"{where}.alarm_state")
        if pump is not None:
            raised = [a for a in pump.alarms() if a.alarm is alarm]
            now = raised[0].state if raised else None
            shown = now.name.lower() if now else "not raised"
            out.append((now is want, f"{alarm.name.lower()}: {shown}"))
    if "steps" in c:
        steps = c["steps"]
        if not isinstance(steps, int) or steps < 1:
            raise ScenarioError(f"{where}.steps: a number of schedule steps >= 1")
        if pump is not None:
            n = len(pump.schedule) if st is not None and st.mode is fm.Mode.SCHEDULE else 0
            out.append((n == steps, f"{n} flex step(s)"))
    if "suspended" in c:
        if not isinstance(c["suspended"], bool):
            raise ScenarioError(f"{where}.suspended: true or false")
        if st is not None:
            out.append((st.suspended == c["suspended"], f"suspended {st.suspended}"))
    _patient(c, where, pump, out)
    return out


def _patient(
    c: dict[str, Any], where: str, pump: fm.Pump | None, out: list[tuple[bool, str]]
) -> None:
    pb = pump.patient_bolus if pump is not None else None
    if "patient_bolus" in c:
        if not isinstance(c["patient_bolus"], bool):
            raise ScenarioError(f"{where}.patient_bolus: true or false")
        if pb is not None:
            out.append((pb.enabled == c["patient_bolus"], f"patient bolus enabled {pb.enabled}"))
    if "patient_bolus_dose" in c:
        dose = mass_ng(c["patient_bolus_dose"], f"{where}.patient_bolus_dose")
        if pb is not None:
            out.append((pb.dose_ng == dose, f"patient bolus {pb.dose_ng} ng"))
    if "lockout_min" in c:
        minutes = c["lockout_min"]
        if not isinstance(minutes, int) or minutes < 0:
            raise ScenarioError(f"{where}.lockout_min: whole minutes")
        if pb is not None:
            out.append((pb.lockout_ms == minutes * fm.MS_PER_MIN,
                        f"lockout {pb.lockout_ms // fm.MS_PER_MIN} min"))  # fmt: skip
    if "max_per_day" in c:
        n = c["max_per_day"]
        if not isinstance(n, int) or n < 0:
            raise ScenarioError(f"{where}.max_per_day: a whole number")
        if pb is not None:
            out.append((pb.max_per_24h == n, f"at most {pb.max_per_24h} a day"))


# --- grading ---------------------------------------------------------------------------------


def grade(
    exercise: Exercise,
    pump: fm.Pump,
    start: Start,
    *,
    activity: list[dict[str, Any]] | None = None,
    trace: Trace | None = None,
) -> dict[str, Any]:
    """Score what the trainee did since `start`: each check right or wrong, with what the pump
    holds; the time taken (pump clock, start to the last programmer change); the warnings the
    trainee confirmed (from the programmer's activity, when given); with the exercise's
    `trace`, the plot's series of reservoir and dose (`plot`, else None)."""
    results: list[dict[str, Any]] = []
    for i, c in enumerate(exercise.checks, 1):
        found = _evaluate(c, f"exercise.check[{i}]", pump, start)
        ok = all(f[0] for f in found)
        results.append({"check": _describe(c), "ok": ok, "found": "; ".join(f[1] for f in found)})
    changes = [
        e
        for e in pump.events()
        if e.seq > start.seq and e.source is fm.Source.PROGRAMMER and e.kind not in _CHANGES
    ]
    taken = (changes[-1].time_ms - start.clock_ms) / fm.MS_PER_MIN if changes else 0.0
    if exercise.max_minutes is not None:
        ok = bool(changes) and taken <= exercise.max_minutes
        results.append(
            {
                "check": f"done within {exercise.max_minutes:g} min",
                "ok": ok,
                "found": f"{taken:.1f} min" if changes else "nothing was done",
            }
        )
    overridden = None
    if activity is not None:
        overridden = [
            str(w)
            for a in activity
            if isinstance(a, dict) and a.get("what") == "sent"
            for w in (a.get("warnings_confirmed") or [])
        ]
        if exercise.max_warnings_overridden is not None:
            results.append(
                {
                    "check": f"at most {exercise.max_warnings_overridden} warning(s) overridden",
                    "ok": len(overridden) <= exercise.max_warnings_overridden,
                    "found": "; ".join(overridden) or "none",
                }
            )
    right = sum(1 for r in results if r["ok"])
    status = pump.status()
    return {
        "task": exercise.task,
        "passed": right == len(results),
        "score": f"{right}/{len(results)}",
        "right": right,
        "total": len(results),
        "checks": results,
        "minutes_taken": round(taken, 1),
        "warnings_overridden": overridden,
        "pump": {
            "serial": pump.serial,
            "drug": status.drug.name.lower(),
            "concentration_ng_per_ml": status.conc_ng_per_ml,
            "daily_dose_ng": status.daily_dose_ng,
            "reservoir_ml": status.reservoir_nl / fm.NL_PER_ML,
            "mode": status.mode.name.lower(),
        },
        "plot": series(trace, pump) if trace is not None else None,
    }


def read_activity(path: Path) -> list[dict[str, Any]]:
    """The web programmer's activity file (JSON lines); a line that is not JSON is an error."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise ScenarioError(f"{path}:{n}: not JSON") from None
    return rows


def write_grade(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """grade.json and grade.html in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "grade.json"
    js.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    page = out_dir / "grade.html"
    page.write_text(grade_html(result), encoding="utf-8")
    return [js, page]


def grade_html(result: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr class={'ok' if r['ok'] else 'wrong'}><td>{'right' if r['ok'] else 'WRONG'}</td>"
        f"<td>{e(r['check'])}</td><td>{e(r['found'])}</td></tr>"
        for r in result["checks"]
    )
    verdict = "passed" if result["passed"] else "not passed"
    plot = ""
    if result.get("plot"):
        plot = "<h2>Reservoir and dose over the exercise</h2>" + svg(result["plot"])
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Exercise report</title>"
        "<style>body{font:20px system-ui,sans-serif;margin:2rem}td{padding:.3rem .8rem}"
        ".ok td:first-child{color:#136f2a}.wrong td:first-child{color:#a30000;font-weight:700}"
        "</style>"
        f"<h1>Exercise report: {verdict} ({result['score']})</h1>"
        f"<p><b>Task:</b> {e(result['task'])}</p>"
        f"<p>Time taken: {result['minutes_taken']} min (pump clock)</p>"
        f"<table><tr><th></th><th>check</th><th>the pump holds</th></tr>{rows}</table>"
        f"{plot}</html>\n"
    )
