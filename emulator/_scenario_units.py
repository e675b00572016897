"""Scenario values in human units: durations, doses, volumes and concentrations as a scenario
file writes them, parsed to the model's integers, and the error a scenario file gets.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import firmware_model as fm

NL_PER_ML = fm.NL_PER_ML
_MASS = {"ng": 1, "mcg": fm.NG_PER_MCG, "ug": fm.NG_PER_MCG, "mg": fm.NG_PER_MG}


class ScenarioError(ValueError):
    """A scenario file that cannot be used: the message names the entry and the field."""


# --- units -----------------------------------------------------------------------------------


def duration_ms(value: Any, where: str) -> int:
    """'30d', '2d 6h', '90m', '45s' or a number of ms."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: a duration like '30d', '2d 6h' or '90m'")
    total = Decimal(0)
    units = {"d": fm.DAY_MS, "h": fm.MS_PER_HOUR, "m": fm.MS_PER_MIN, "s": 1000, "ms": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)", value)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)|\s", "", value):
        raise ScenarioError(f"{where}: {value!r} is not a duration like '30d' or '2d 6h'")
    for number, unit in parts:
        total += Decimal(number) * units[unit]
    return int(total)


def mass_ng(value: Any, where: str) -> int:
    """'3mg', '500mcg', '0.1 mg'."""
    text = str(value).strip().lower().replace(" ", "").removesuffix("/day")
    for unit in sorted(_MASS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                ng = Decimal(text[: -len(unit)]) * _MASS[unit]
            except InvalidOperation:
                break
            if ng >= 0 and ng == ng.to_integral_value():
                return int(ng)
            break
    raise ScenarioError(f"{where}: {value!r} is not a dose like '3mg' or '500mcg'")


def volume_nl(value: Any, where: str) -> int:
    try:
        nl = Decimal(str(value)) * NL_PER_ML
    except InvalidOperation:
        raise ScenarioError(f"{where}: {value!r} is not a volume in mL") from None
    if nl < 0 or nl != nl.to_integral_value():
        raise ScenarioError(f"{where}: {value!r} is not a volume in mL")
    return int(nl)


def concentration(value: Any, where: str) -> tuple[int, fm.ConcentrationUnit]:
    text = str(value).strip().lower().replace(" ", "").removesuffix("/ml")
    unit = (
        fm.ConcentrationUnit.MCG_PER_ML
        if text.endswith(("mcg", "ug"))
        else fm.ConcentrationUnit.MG_PER_ML
    )
    return mass_ng(text, where), unit


def _enum(enum: Any, value: Any, where: str) -> Any:
    try:
        return enum[str(value).upper()]
    except KeyError:
        names = ", ".join(m.name.lower() for m in enum)
        raise ScenarioError(f"{where}: {value!r} is not one of {names}") from None
