"""How values read on the Finish screen (programmer/_change.py): volumes in mL, masses in the
drug's unit, durations in minutes, pump-clock dates in UTC."""

from __future__ import annotations

import time

import protocol as p

from . import calc


def ml(nl: int) -> str:
    return f"{nl / calc.NL_PER_ML:g} mL"


def mass(ng: int, unit: p.ConcentrationUnit) -> str:
    if unit is p.ConcentrationUnit.MCG_PER_ML:
        return f"{ng / calc.NG_PER_MCG:g} mcg"
    return f"{ng / calc.NG_PER_MG:g} mg"


def daily(ng: int, unit: p.ConcentrationUnit) -> str:
    return f"{mass(ng, unit)}/day"


def minutes(ms: int) -> str:
    return f"{ms / 60_000:g} min"


def conc(ng_per_ml: int, unit: p.ConcentrationUnit) -> str:
    return f"{mass(ng_per_ml, unit)}/mL"


def date(ms: int | None) -> str:
    if not ms:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + " UTC"
