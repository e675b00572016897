"""What a clinician types on the web programmer's forms, read into the protocol's units:
"500 mcg/day", "3 mg", "2000 mcg/mL", "18.5 mL", "10 min", "07:00=600mcg". Each parser raises
`BadInput` naming the field and showing an example, so a wrong entry changes nothing."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import protocol as p

from . import cli
from ._errors import BadInput


def _read(fn: Callable[[str], Any], text: object, field: str, example: str) -> Any:
    if not isinstance(text, str) or not text.strip():
        raise BadInput(f"{field}: enter a value, e.g. {example}")
    try:
        return fn(text)
    except argparse.ArgumentTypeError as exc:
        raise BadInput(f"{field}: {exc} (e.g. {example})") from None


def mass(text: object, field: str, *, per_day: bool = False) -> int:
    """A mass with its unit (mg, mcg): nanograms. With `per_day`, '/day' may follow."""
    example = "500 mcg/day or 3 mg/day" if per_day else "50 mcg or 1 mg"
    if isinstance(text, str) and "/" in text and not per_day:
        raise BadInput(f"{field}: a dose, not a rate (e.g. {example})")
    if isinstance(text, str) and "/ml" in text.lower().replace(" ", ""):
        raise BadInput(f"{field}: that is a concentration; give a dose (e.g. {example})")
    return int(_read(cli.mass_ng, text, field, example))


def volume(text: object, field: str) -> int:
    """A volume in mL ('18.5' or '18.5 mL'): nanolitres."""
    if isinstance(text, str) and text.strip().lower().endswith(("mg", "mcg", "ug")):
        raise BadInput(f"{field}: a volume in mL, not a mass (e.g. 18.5 mL)")
    return int(_read(lambda t: cli.volume_nl(t.replace(" ", "")), text, field, "18.5 mL"))


def minutes(text: object, field: str) -> int:
    """A duration in minutes ('10' or '10 min'): ms."""
    return int(_read(lambda t: cli.minutes_ms(t.replace(" ", "")), text, field, "10 min"))


def concentration(text: object, field: str) -> tuple[int, p.ConcentrationUnit]:
    """'2000 mcg/mL' or '25 mg/mL': (ng/mL, the unit shown)."""
    example = "2000 mcg/mL or 25 mg/mL"
    if not isinstance(text, str) or "/ml" not in text.lower().replace(" ", ""):
        raise BadInput(f"{field}: a concentration with its unit, e.g. {example}")
    value, unit = _read(cli.conc, text, field, example)
    if value <= 0:
        raise BadInput(f"{field}: must be > 0 (e.g. {example})")
    return int(value), unit


def steps(text: object, field: str) -> list[tuple[int, int]]:
    """One step a line (or comma-separated), HH:MM=DOSE: [(start minute, ng/day)]."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput(f"{field}: one step a line, e.g. 00:00=400mcg")
    out = []
    for part in text.replace(",", "\n").splitlines():
        if part.strip():
            out.append(_read(cli.schedule_step, part.replace(" ", ""), field, "07:00=600mcg"))
    return out


def drug(text: object, field: str) -> p.Drug:
    names = [d.name.lower() for d in p.Drug if d.value]
    if not isinstance(text, str) or text.strip().upper() not in p.Drug.__members__:
        raise BadInput(f"{field}: one of {', '.join(names)}")
    d = p.Drug[text.strip().upper()]
    if d is p.Drug.NONE:
        raise BadInput(f"{field}: one of {', '.join(names)}")
    return d


def count(text: object, field: str, low: int, high: int) -> int:
    try:
        n = int(str(text).strip())
    except ValueError:
        raise BadInput(f"{field}: a whole number {low} .. {high}") from None
    if not low <= n <= high:
        raise BadInput(f"{field}: a whole number {low} .. {high}")
    return n


def alarms(names: object) -> p.Alarm:
    if not isinstance(names, list) or not names:
        raise BadInput("choose at least one alarm")
    bits = p.Alarm(0)
    for n in names:
        if not isinstance(n, str) or n.upper() not in p.Alarm.__members__:
            raise BadInput(f"unknown alarm {n!r}")
        bits |= p.Alarm[n.upper()]
    return bits
