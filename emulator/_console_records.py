"""The event log read aloud for the instructor console: each record's category (the log's
filter groups) and the sentence a trainee understands (`describe`), and a record as the streams
send it (`record`). Integers stay integers on the wire; only the text says mL, mg or days."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import firmware_model as fm
import protocol as p

EVENT_CATEGORIES: dict[str, str] = {
    "POWER_ON": "system",
    "PROGRAM_CHANGED": "therapy",
    "DRUG_CHANGED": "therapy",
    "REFILL": "therapy",
    "BOLUS_STARTED": "therapy",
    "BOLUS_COMPLETED": "therapy",
    "BOLUS_CANCELLED": "therapy",
    "BOLUS_DENIED": "therapy",
    "PATIENT_BOLUS_SETTINGS": "therapy",
    "SUSPENDED": "therapy",
    "RESUMED": "therapy",
    "CLOCK_SET": "therapy",
    "ALARM_SETTINGS": "alarm",
    "ALARM_RAISED": "alarm",
    "ALARM_CLEARED": "alarm",
    "ALARM_SILENCED": "alarm",
    "ALARM_ACKNOWLEDGED": "alarm",
    "ALARM_TEST": "alarm",
    "MOTOR_STALL": "fault",
    "MOTOR_RECOVERED": "fault",
    "MRI_EXPOSURE": "fault",
    "FAULT": "fault",
    "BATTERY": "fault",
    "SECURITY": "session",
    "SESSION_OPENED": "session",
    "SESSION_CLOSED": "session",
    "COMMAND_REJECTED": "session",
    "CONTROL": "control",
    "ZONE_SET": "therapy",
    "ZONE_NAME": "therapy",
}


def _name(enum: Any, value: int) -> str:
    try:
        return str(enum(value).name)
    except ValueError:
        return str(value)


def _bits(value: int) -> str:
    return ", ".join(a.name or "?" for a in fm.Alarm if a.value & value) or "none"


def _ml(nl: int) -> str:
    return f"{nl / fm.NL_PER_ML:.3f} mL"


def _trim(x: float, places: int) -> str:
    text = f"{x:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def mass(ng: int, unit: fm.ConcentrationUnit) -> str:
    """The one rule for a mass, shared with the console's panel (console.js fmtMass): in the
    unit the drug's concentration was entered in (2000 mcg/mL stays 2000 mcg/mL, never
    2 mg/mL), mcg to 3 decimals and mg to 4, trailing zeros dropped."""
    if unit is fm.ConcentrationUnit.MCG_PER_ML:
        return f"{_trim(ng / fm.NG_PER_MCG, 3)} mcg"
    return f"{_trim(ng / fm.NG_PER_MG, 4)} mg"


def _duration(ms: int) -> str:
    if ms >= fm.DAY_MS:
        return f"{ms / fm.DAY_MS:.2f} days"
    if ms >= fm.MS_PER_HOUR:
        return f"{ms / fm.MS_PER_HOUR:.2f} h"
    return f"{ms / fm.MS_PER_MIN:.1f} min"


CONTROL_TEXT: dict[int, Callable[[int], str]] = {
    1: lambda b: f"emulator started ({_duration(b)} applied for the time it was down)",
    2: lambda b: "emulator stopped",
    3: lambda b: f"speed set to x{b / 1000:g}" if b else "pump time paused",
    4: lambda b: f"time advanced by {_duration(b)}",
    5: lambda b: "link cut" if b < 0 else f"link impaired ({b / 10_000:g} % dropped)",
    6: lambda b: "pump reset to a training scenario",
    10: lambda b: f"true reservoir set (was {_ml(b)})",
    fm.CONTROL_CAP_ASPIRATION: lambda b: (
        "catheter access port aspirated: "
        + next((t for f, t in fm.FINDING_TEXT.items() if f == b), f"finding {b}")
    ),
    fm.CONTROL_CATHETER_FILLED: lambda b: f"fluid path filled with the drug ({_ml(b)})",
}


def describe(e: fm.Event, unit: fm.ConcentrationUnit = fm.ConcentrationUnit.MG_PER_ML) -> str:
    """One line a trainee understands for an event-log record; masses in `unit`, the pump's
    concentration unit (as its panel shows them)."""
    k, a, b = e.kind, e.a, e.b

    def _mass(ng: int) -> str:
        return mass(ng, unit)

    E = fm.EventKind
    text: dict[fm.EventKind, Callable[[], str]] = {
        E.POWER_ON: lambda: f"power on, serial {b}",
        E.PROGRAM_CHANGED: lambda: f"program {_name(fm.Mode, a)}, {_mass(b)}/day",
        E.DRUG_CHANGED: lambda: f"drug {_name(fm.Drug, a)}, {_mass(b)}/mL",
        E.REFILL: lambda: f"refill: {_ml(a)} added, discrepancy {b / fm.NL_PER_ML:+.3f} mL",
        E.BOLUS_STARTED: lambda: f"{_name(fm.BolusKind, a)} bolus started, {_mass(b)}",
        E.BOLUS_COMPLETED: lambda: f"{_name(fm.BolusKind, a)} bolus completed, {_mass(b)}",
        E.BOLUS_CANCELLED: lambda: f"{_name(fm.BolusKind, a)} bolus cancelled after {_mass(b)}",
        E.BOLUS_DENIED: lambda: (
            f"patient bolus denied: {_name(fm.Reason, a)}"
            + (f", possible in {_duration(b)}" if b else "")
        ),
        E.PATIENT_BOLUS_SETTINGS: lambda: (
            f"patient bolus enabled, {_mass(b)} per bolus" if a else "patient bolus disabled"
        ),
        E.ALARM_RAISED: lambda: f"alarm {_bits(a)} raised ({_name(fm.Priority, b)} priority)",
        E.ALARM_CLEARED: lambda: f"alarm {_bits(a)} cleared",
        E.ALARM_SILENCED: lambda: f"alarm {_bits(a)} silenced",
        E.ALARM_ACKNOWLEDGED: lambda: f"alarm {_bits(a)} acknowledged",
        E.ALARM_TEST: lambda: f"alarm test: {_name(fm.Tone, a)}",
        E.MOTOR_STALL: lambda: "motor stall" + (" (MRI)" if a == 1 else ""),
        E.MOTOR_RECOVERED: lambda: f"motor recovered after {_duration(a)}",
        E.SUSPENDED: lambda: "delivery suspended",
        E.RESUMED: lambda: "delivery resumed",
        E.CLOCK_SET: lambda: f"pump clock set ({(b - a) / 1000:+.0f} s)",
        E.ALARM_SETTINGS: lambda: f"alarm settings: low reservoir at {_ml(a)}",
        E.BATTERY: lambda: f"battery {_name(fm.BatteryState, a)}, {b / 10:g} % left",
        E.MRI_EXPOSURE: lambda: f"MRI exposure, {_duration(b)}",
        E.FAULT: lambda: (
            f"fault {_name(fm.FaultKind, a)} "
            + ("cleared" if b == 0 else "injected" if b == 1 else f"injected ({b})")
        ),
        E.SECURITY: lambda: f"refused {b} frame(s): {_name(p.ErrorCode, a)}",
        E.SESSION_OPENED: lambda: f"{_name(p.Role, a).lower()} session opened",
        E.SESSION_CLOSED: lambda: f"session closed: {_name(p.SessionEndReason, a)}",
        E.COMMAND_REJECTED: lambda: f"{_name(fm.Command, b)} rejected: {_name(fm.Reason, a)}",
        E.CONTROL: lambda: CONTROL_TEXT[a](b) if a in CONTROL_TEXT else f"control action {a}",
        E.ZONE_SET: lambda: f"clock set: {p.offset_hhmm(b)} (was {p.offset_hhmm(a)})",
        E.ZONE_NAME: lambda: p.zone_name_part_text(a, b),
    }
    make = text.get(k)
    return make() if make else f"{k.name} a={a} b={b}"


def record(
    e: fm.Event, unit: fm.ConcentrationUnit = fm.ConcentrationUnit.MG_PER_ML
) -> dict[str, Any]:
    """An event-log record as the streams send it: the control plane's fields, plus text
    (masses in `unit`, the pump's concentration unit)."""
    return {
        "seq": e.seq,
        "time_ms": e.time_ms,
        "kind": e.kind.name,
        "source": e.source.name,
        "command_id": e.command_id.hex(),
        "a": e.a,
        "b": e.b,
        "category": EVENT_CATEGORIES.get(e.kind.name, "system"),
        "text": describe(e, unit),
    }


def records(
    events: Sequence[fm.Event], unit: fm.ConcentrationUnit = fm.ConcentrationUnit.MG_PER_ML
) -> list[dict[str, Any]]:
    """`record` of each, where a clock sync's ZONE_SET reads with the zone names its ZONE_NAME
    records carry: "clock set: -05:00 America/New_York (was +00:00 UTC)"."""
    zones = p.zone_changes((e.seq, int(e.kind), e.a, e.b) for e in events)
    out = [record(e, unit) for e in events]
    for r in out:
        change = zones.get(r["seq"])
        if change is not None:
            r["text"] = change.text()
    return out
