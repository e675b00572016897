"""The Finish screen's common parts: `Change` (a prepared change and its commit), the
drug-library limits, the predicted alarm dates, and `command()`, the command with its id and
compare-and-set version (how values read on the screen: programmer/_show.py).

Each workflow has its own module, programmer/_finish_<name>.py (`_finish_refill.py` is the
refill Finish screen), holding one `prepare_<name>(pump, ...)`: it reads what it needs, checks
the input, lists the diff rows, builds the `command()` and returns the `Change` with its
warnings. `Pump` binds them as its `prepare_*` methods (the table in programmer/_pump.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import protocol as p

from . import calc
from ._errors import BadInput, ConfirmationNeeded, Refused
from ._show import date, mass

if TYPE_CHECKING:
    from ._pump import Pump

Row = tuple[str, str, str]  # (setting, old, new), as a person reads them
M = TypeVar("M", bound=p.Message)


@dataclasses.dataclass
class Change:
    """A prepared change (the Finish screen): review `diff` and `warnings`, then `commit()`."""

    title: str
    message: p.Message
    diff: list[tuple[str, str, str]]  # (setting, old, new), as a person reads them
    warnings: list[str]
    _send: Callable[[p.Message], Awaitable[Any]] = dataclasses.field(repr=False)
    result: Any = None

    async def commit(self, *, confirm: bool = False) -> Any:
        """Send the change. Warnings need `confirm=True` (it sets confirm_soft_limit)."""
        msg = self.message
        if self.warnings:
            if not confirm:
                raise ConfirmationNeeded(self.warnings)
            if _confirmable(type(msg)):
                msg = dataclasses.replace(msg, confirm_soft_limit=True)  # type: ignore[type-var]
        self.result = await self._send(msg)
        return self.result


def _confirmable(kind: type[p.Message]) -> bool:
    """Whether a command carries confirm_soft_limit (the clinician's confirmation)."""
    return "confirm_soft_limit" in {f.name for f in kind.FIELDS}


def command(pump: Pump, st: p.Status, kind: type[M], **fields: Any) -> M:
    """A Finish screen's command: `kind` with `fields`, a new command id and compare-and-set
    on the program version of `st` (confirm_soft_limit unset: `Change.commit` sets it)."""
    if _confirmable(kind):
        fields["confirm_soft_limit"] = False
    build: Callable[..., M] = kind
    return build(command_id=pump._id(), expected_program_version=st.program_version, **fields)


async def read_context(pump: Pump) -> tuple[p.Status, p.DrugInfo]:
    """What most Finish screens start from: the status, then the drug record."""
    return await pump.status(), await pump.drug()


def need_drug(drug: p.DrugInfo) -> None:
    """A rate is derived from the concentration: there must be a drug record."""
    if drug.drug is p.Drug.NONE or not drug.concentration_ng_per_ml:
        raise BadInput("no drug recorded: record a refill first")


def limits(drug: p.DrugInfo, daily_ng: int, what: str) -> list[str]:
    """The drug library's limits for a daily dose: a hard limit raises BadInput, a soft limit
    is a warning the clinician must confirm."""
    unit = drug.concentration_unit
    if drug.hard_limit_ng_per_day and daily_ng > drug.hard_limit_ng_per_day:
        raise BadInput(
            f"{what} {mass(daily_ng, unit)}/day is beyond the hard limit of "
            f"{mass(drug.hard_limit_ng_per_day, unit)}/day for {drug.drug.name}: "
            "it cannot be overridden"
        )
    if drug.soft_limit_ng_per_day and daily_ng > drug.soft_limit_ng_per_day:
        return [
            f"{what} {mass(daily_ng, unit)}/day exceeds the soft limit of "
            f"{mass(drug.soft_limit_ng_per_day, unit)}/day for {drug.drug.name}"
        ]
    return []


def dates(st: p.Status, rate_nl_per_day: int) -> tuple[int | None, int | None]:
    """Predicted low-reservoir and empty dates (pump clock) at a steady daily volume."""
    volume = st.reservoir_volume_nl
    low = calc.time_to_volume_ms(volume, st.low_reservoir_threshold_nl, rate_nl_per_day)
    empty = calc.time_to_volume_ms(volume, 0, rate_nl_per_day)
    return (
        None if low is None else st.pump_time_ms + low,
        None if empty is None else st.pump_time_ms + empty,
    )


def alarm_rows(st: p.Status, low: int | None, empty: int | None) -> list[Row]:
    """The predicted low-reservoir and empty dates, now and after the change."""
    return [
        ("low-reservoir alarm", date(st.low_reservoir_at_ms), date(low)),
        ("empty", date(st.empty_at_ms), date(empty)),
    ]


async def fluid_path(
    pump: Pump, catheter_length_cm: int | None, pump_tubing_nl: int | None, nl_per_cm: int
) -> tuple[int, int, str]:
    """The catheter's and the pump tubing's volumes, and where they came from: the pump's own
    (CATHETER_INFO, protocol 1.1) when no length is given, else length x `nl_per_cm` plus
    `pump_tubing_nl` (default 0) as the clinician entered them (the only way with a 1.0 pump).
    """
    if catheter_length_cm is None:
        try:
            info = await pump.catheter()
        except Refused as exc:
            if exc.code is not p.ErrorCode.UNKNOWN_MESSAGE:
                raise
            raise BadInput(
                "this pump does not report its catheter (protocol 1.0): give the catheter "
                "length (catheter_length_cm)"
            ) from None
        tubing = info.pump_tubing_nl if pump_tubing_nl is None else pump_tubing_nl
        return info.catheter_volume_nl, tubing, "from the pump"
    catheter = calc.catheter_volume_nl(catheter_length_cm, nl_per_cm)
    return catheter, pump_tubing_nl or 0, f"{catheter_length_cm} cm catheter"
