"""Tables of docs/firmware_model.md, generated from the model's own data (one source of truth).
The event-record table (section 11) is the protocol's: `python -m protocol.gen --write` renders
it from protocol/_event_values.py, the one source of what `a` and `b` mean.

python -m firmware_model._doc --write   # rewrite the generated sections
python -m firmware_model._doc --check   # exit 1 if they are stale (also a test)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from ._alarms import CATALOGUE
from ._profiles import DEFAULT_LIBRARY, PROFILES
from ._types import (
    NG_PER_MCG,
    NG_PER_MG,
    NL_PER_ML,
    YEAR_MS,
    Capability,
    ConcentrationUnit,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "firmware_model.md"


def _ml(nl: int) -> str:
    return f"{nl / NL_PER_ML:g}"


def profiles_table() -> str:
    rows = [
        "| profile | reservoir mL | rate range mL/day | steps | capabilities | accuracy | MRI "
        "| battery service life | low / empty threshold mL | discrepancy limit mL |",
        "|---|---:|---|---:|---|---:|---|---|---|---:|",
    ]
    for p in PROFILES.values():
        caps = ", ".join(str(c.name).lower() for c in Capability if p.capabilities & c)
        rate = (
            f"fixed {_ml(p.fixed_rate_nl_per_day)}"
            if p.fixed_rate_nl_per_day
            else f"{_ml(p.min_rate_nl_per_day)} .. {_ml(p.max_rate_nl_per_day)}"
        )
        life = (
            ("none (propellant)" if p.fixed_rate_nl_per_day else "none (external, replaceable)")
            if p.battery is None
            else (f"{p.battery.service_life_ms / YEAR_MS:g} years")
        )
        rows.append(
            f"| `{p.id.name}` {p.name} | {_ml(p.reservoir_nl)} | {rate} | {p.max_schedule_steps} "
            f"| {caps} | {p.accuracy_error_ppm / 10_000:+g} % | {p.mri.name.lower()} | {life} "
            f"| {_ml(p.default_low_threshold_nl)} / {_ml(p.empty_threshold_nl)} "
            f"| {_ml(p.discrepancy_limit_nl)} |"
        )
    return "\n".join(rows)


def alarms_table() -> str:
    rows = [
        "| alarm | bit | class | IEC priority | tone | stops delivery | latching | cleared by "
        "| meaning |",
        "|---|---:|---|---|---|---|---|---|---|",
    ]
    for a, s in CATALOGUE.items():
        rows.append(
            f"| `{a.name}` | {int(a)} | {'critical' if s.critical else 'non-critical'} "
            f"| {s.priority.name.lower()} | {s.tone.name.lower().replace('_', '-')} "
            f"| {'yes' if s.stops_delivery else 'no'} | {'yes' if s.latching else 'no'} "
            f"| {s.cleared_by.value} | {s.description} |"
        )
    return "\n".join(rows)


def library_table() -> str:
    rows = [
        "| drug | unit | soft limit /day | hard limit /day | max concentration | patient bolus |",
        "|---|---|---:|---:|---:|---|",
    ]
    for e in DEFAULT_LIBRARY.values():
        per = NG_PER_MG if e.unit is ConcentrationUnit.MG_PER_ML else NG_PER_MCG
        u = "mg" if per == NG_PER_MG else "mcg"

        def show(ng: int, per: int = per, u: str = u) -> str:
            return "none" if not ng else f"{ng / per:g} {u}"

        rows.append(
            f"| {e.drug.name.lower()} | {u}/mL | {show(e.soft_limit_ng_per_day)} "
            f"| {show(e.hard_limit_ng_per_day)} | {show(e.max_concentration_ng_per_ml)}/mL "
            f"| {'yes' if e.patient_bolus_allowed else 'no'} |"
        )
    return "\n".join(rows)


TABLES = {
    "profiles": profiles_table,
    "alarms": alarms_table,
    "library": library_table,
}


def _filler(table: str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group(1) + table + "\n" + m.group(2)


def render(text: str) -> str:
    for name, fn in TABLES.items():
        pattern = re.compile(
            rf"(<!-- begin generated: {name} -->\n)(?:.*?\n)?(<!-- end generated: {name} -->)",
            re.S,
        )
        if not pattern.search(text):
            raise ValueError(f"docs/firmware_model.md lacks the {name} markers")
        text = pattern.sub(_filler(fn()), text)
    return text


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    fresh = render(current)
    if "--write" in argv:
        DOC.write_text(fresh, encoding="utf-8")
        return 0
    if fresh != current:
        print("docs/firmware_model.md is stale: run python -m firmware_model._doc --write")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
