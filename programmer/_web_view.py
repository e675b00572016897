"""What the web programmer's pages show, as plain JSON: the interrogation summary and the event
log, every number with its unit (volumes in mL, masses in the drug's unit, dates in UTC), the
way programmer/_show.py words the Finish screens."""

from __future__ import annotations

from typing import Any

import protocol as p

from ._interrogation import Interrogation
from ._show import conc, daily, date, mass, minutes, ml
from ._zone import offset_text


def _names(flags: p.Alarm) -> list[str]:
    return [str(a.name).lower() for a in p.Alarm if a.value and a in flags]


def status_rows(dev: p.DeviceInfo, st: p.Status) -> list[tuple[str, str]]:
    """The summary's rows that one STATUS answers: drug, concentration, dose, reservoir, the
    next refill and alarm dates, battery (shown first, while the rest is read)."""
    unit = st.concentration_unit
    return [
        ("pump", f"{dev.model.name.replace('_', ' ')}, serial {dev.serial_number}"),
        ("pump clock", date(st.pump_time_ms)),
        ("drug", st.drug.name.lower() if st.drug is not p.Drug.NONE else "none recorded"),
        ("concentration", conc(st.concentration_ng_per_ml, unit)),
        ("mode", st.mode.name.lower() + (" (suspended)" if st.suspended else "")),
        ("daily dose", daily(st.daily_dose_ng, unit)),
        ("rate", f"{ml(st.current_rate_nl_per_day)}/day"),
        ("reservoir", f"{st.reservoir_volume_nl / 1_000_000:.2f} mL"),
        ("reservoir capacity", ml(dev.reservoir_capacity_nl)),
        ("low-reservoir alarm at", ml(st.low_reservoir_threshold_nl)),
        ("next refill (low-reservoir alarm)", date(st.low_reservoir_at_ms)),
        ("empty", date(st.empty_at_ms)),
        ("last refill", date(st.last_refill_at_ms)),
        ("battery", f"{st.battery.name.lower()} ({st.battery_remaining_permille / 10:g} %)"),
        ("battery replacement due", date(st.replacement_due_at_ms)),
    ]


def status_summary(dev: p.DeviceInfo, st: p.Status) -> dict[str, Any]:
    """The first screen, from STATUS alone: the active alarms by name (their details follow
    with the full interrogation)."""
    alarms = [
        {"alarm": name, "priority": "", "state": "active", "critical": False, "raised": "",
         "silenced_until": ""}
        for name in _names(st.active_alarms)
    ]  # fmt: skip
    return {
        "rows": status_rows(dev, st),
        "alarms": alarms,
        "complete": False,
        "unit": "mcg" if st.concentration_unit is p.ConcentrationUnit.MCG_PER_ML else "mg",
        "max_schedule_steps": dev.max_schedule_steps,
    }


def summary(snap: Interrogation) -> dict[str, Any]:
    """The interrogation screen: (label, value) rows in reading order, the alarms, the raw
    values a test or a grader compares with."""
    st, dev = snap.status, snap.device
    unit = st.concentration_unit
    drug = snap.drug
    rows = status_rows(dev, st)
    if snap.local_clock is not None:
        lc = snap.local_clock
        rows.insert(2, ("local time", f"{date(lc.local_ms)[:-4]} {lc.zone} "
                                      f"({offset_text(lc.utc_offset_ms)})"))  # fmt: skip
    if drug is not None and drug.drug is not p.Drug.NONE:
        rows.append(("soft limit", daily(drug.soft_limit_ng_per_day, unit)))
        rows.append(("hard limit", daily(drug.hard_limit_ng_per_day, unit)))
    pb = snap.patient_bolus
    rows.append(
        (
            "patient bolus",
            f"{mass(pb.dose_ng, unit)} over {minutes(pb.duration_ms)}, lockout "
            f"{minutes(pb.lockout_ms)}, at most {pb.max_per_24h} a day"
            if pb.enabled
            else "disabled",
        )
    )
    program = snap.program
    if program is not None and program.steps:
        rows.append(
            (
                "schedule",
                "; ".join(
                    f"{s.start_minute // 60:02d}:{s.start_minute % 60:02d} "
                    f"{daily(s.dose_ng_per_day, unit)}"
                    for s in program.steps
                ),
            )
        )
    alarms = [
        {
            "alarm": str(a.alarm.name).lower(),
            "priority": a.priority.name.lower(),
            "state": a.state.name.lower(),
            "critical": a.critical,
            "raised": date(a.raised_at_ms),
            "silenced_until": date(a.silenced_until_ms),
        }
        for a in snap.alarms
    ]
    return {
        "rows": rows,
        "alarms": alarms,
        "complete": True,
        "unit": "mcg" if unit is p.ConcentrationUnit.MCG_PER_ML else "mg",
        "max_schedule_steps": dev.max_schedule_steps,
        "raw": {
            "serial": dev.serial_number,
            "drug": st.drug.name,
            "concentration_ng_per_ml": st.concentration_ng_per_ml,
            "daily_dose_ng": st.daily_dose_ng,
            "reservoir_nl": st.reservoir_volume_nl,
            "program_version": st.program_version,
            "mode": st.mode.name,
            "active_alarms": _names(st.active_alarms),
        },
        "warning": snap.local_clock.warning() if snap.local_clock else None,
    }


def event(r: p.EventRecord, detail: str = "") -> dict[str, Any]:
    try:
        kind = p.EventKind(r.kind).name.lower().replace("_", " ")
    except ValueError:
        kind = f"record {r.kind}"  # a newer pump's kind: shown raw
    return {
        "seq": r.seq,
        "time": date(r.time_ms),
        "kind": kind,
        "source": r.source.name.lower(),
        "a": r.value_a,
        "b": r.value_b,
        "detail": detail,
    }


def verdict(diff: list[tuple[str, str, str]], warnings: list[str]) -> str | None:
    """The refill's discrepancy verdict: within the limits or to investigate."""
    rows = {name: new for name, _, new in diff}
    if "discrepancy" not in rows:
        return None
    beyond = any(w.startswith("discrepancy") for w in warnings)
    return (
        f"expected residual {rows['expected residual']}, aspirated {rows['withdrawn']}: "
        f"discrepancy {rows['discrepancy']} "
        + ("BEYOND the limits: investigate before refilling" if beyond else "within the limits")
    )
