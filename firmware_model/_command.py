"""The command path, written once: who asked (`Cmd`), the checks every command shares, the refusal
and the tail.

A command method opens `c = self._begin(Command.X, command_id, source, expected_version)` (the
preamble: a 16-byte id, the self test, end of service, the program version), validates
completely with `c.require(...)`, `c.check_rate(...)`, ... or `c.reject(reason, detail)`, and only
then applies and ends with `c.commit(kind, a, b)` (bump the program version, log the effect,
settle) or `c.done(seq)`. A refusal raises `Rejected` and leaves one log record, COMMAND_REJECTED
or, for a patient request, BOLUS_DENIED, and nothing else.
"""

from __future__ import annotations

from typing import NoReturn

from ._core import PumpCore
from ._errors import Rejected
from ._members import BATTERY_EOS
from ._state import Applied
from ._types import (
    MINUTES_PER_DAY,
    Capability,
    Command,
    ConcentrationUnit,
    Drug,
    EventKind,
    Reason,
    Source,
)


class Cmd:
    """One command on its way: what it is, its id and its source, carried to every check, every
    refusal and every record it writes."""

    __slots__ = ("_pump", "cmd", "command_id", "source")

    def __init__(self, pump: PumpCore, cmd: Command, command_id: bytes, source: Source) -> None:
        self._pump = pump
        self.cmd = cmd
        self.command_id = command_id
        self.source = source

    def log(self, kind: EventKind, a: int, b: int) -> int:
        """A record of this command's effect (its source, its id)."""
        return self._pump._log(kind, self.source, self.command_id, a, b)

    # --- refusing (raise Rejected, change nothing but the log) --------------------------------

    def reject(self, reason: Reason, detail: str, value: int = 0) -> NoReturn:
        cmd = self.cmd
        if cmd is Command.REQUEST_PATIENT_BOLUS:
            kind, b = EventKind.BOLUS_DENIED, value
        else:
            kind, b = EventKind.COMMAND_REJECTED, int(cmd)
        self._pump._log(kind, self.source, self.command_id, int(reason), b)
        raise Rejected(reason, detail, cmd)

    def require(self, cap: Capability) -> None:
        prof = self._pump._profile
        if (prof.capabilities & cap) != cap:
            self.reject(
                Reason.MODE_NOT_SUPPORTED,
                f"{prof.name} does not support "
                f"{(cap.name or str(int(cap))).lower().replace('_', ' ')}"
                + (
                    ": its rate is fixed, the daily dose changes with the concentration at refill"
                    if prof.fixed_rate_nl_per_day
                    and cap
                    & (Capability.CONTINUOUS | Capability.SCHEDULE | Capability.VARIABLE_RATE)
                    else ""
                ),
            )

    def require_drug(self) -> None:
        s = self._pump._s
        if s.drug is Drug.NONE or s.conc_ng_per_ml <= 0:
            self.reject(Reason.INVALID_STATE, "no drug recorded: record a refill first")

    def check_drug(self, drug: Drug, conc: int, unit: ConcentrationUnit) -> None:
        lim = self._pump._library.get(drug)
        if lim is None:
            self.reject(Reason.DRUG_NOT_ALLOWED, f"{Drug(drug).name} is not in the drug library")
        elif conc <= 0 or (
            lim.max_concentration_ng_per_ml and conc > lim.max_concentration_ng_per_ml
        ):
            self.reject(
                Reason.INVALID_VALUE,
                f"concentration must be 1 .. {lim.max_concentration_ng_per_ml} ng/mL "
                f"for {drug.name}",
            )
        if unit not in (ConcentrationUnit.MG_PER_ML, ConcentrationUnit.MCG_PER_ML):
            self.reject(Reason.INVALID_VALUE, "unknown unit")

    def check_rate(self, rate: int, what: str, *, allow_below_min: bool = False) -> None:
        pump = self._pump
        prof = pump._profile
        lim = pump._library.get(pump._s.drug)
        top = prof.max_rate_nl_per_day
        if lim is not None and lim.max_rate_nl_per_day:
            top = min(top, lim.max_rate_nl_per_day)
        low = 1 if allow_below_min else prof.min_rate_nl_per_day
        if not low <= rate <= top:
            self.reject(
                Reason.RATE_OUT_OF_RANGE, f"{what} {rate} nL/day is outside {low} .. {top} nL/day"
            )

    def check_dose_limits(self, drug: Drug, dose_x1440: int, confirm: bool) -> None:
        lim = self._pump._library.get(drug)
        if lim is None:
            return
        if lim.hard_limit_ng_per_day and dose_x1440 > lim.hard_limit_ng_per_day * MINUTES_PER_DAY:
            self.reject(
                Reason.HARD_LIMIT,
                f"{dose_x1440 // MINUTES_PER_DAY} ng/day exceeds the hard limit of "
                f"{lim.hard_limit_ng_per_day} ng/day for {drug.name}",
            )
        if (
            lim.soft_limit_ng_per_day
            and not confirm
            and dose_x1440 > lim.soft_limit_ng_per_day * MINUTES_PER_DAY
        ):
            self.reject(
                Reason.SOFT_LIMIT_UNCONFIRMED,
                f"{dose_x1440 // MINUTES_PER_DAY} ng/day exceeds the soft limit of "
                f"{lim.soft_limit_ng_per_day} ng/day for {drug.name}: confirm it",
            )

    # --- the tail of an applied command -------------------------------------------------------

    def commit(self, kind: EventKind, a: int, b: int, *, bump: bool = True) -> Applied:
        """Bump the program version (therapy changed), log the effect, settle: in this order,
        as every command always has."""
        if bump:
            self._pump._s.program_version += 1
        return self.done(self.log(kind, a, b))

    def done(self, seq: int, *, bump: bool = False) -> Applied:
        """The effect is logged as `seq`: bump the program version if asked, settle."""
        pump = self._pump
        if bump:
            pump._s.program_version += 1
        pump._settle()
        return Applied(pump._s.program_version, seq)


class CommandMixin(PumpCore):
    __slots__ = ()

    def _command(self, cmd: Command, command_id: bytes, source: Source) -> Cmd:
        """A command that skips the preamble (faults and control actions)."""
        return Cmd(self, cmd, command_id, source)

    def _begin(
        self,
        cmd: Command,
        command_id: bytes,
        source: Source,
        expected_version: int | None,
        *,
        therapy: bool = True,
        post: bool = True,
    ) -> Cmd:
        """The preamble every programmer command shares, in this order."""
        s = self._s
        if len(command_id) != 16:
            raise ValueError("command_id must be 16 bytes")
        c = Cmd(self, cmd, command_id, source)
        if post and s.now < s.post_until:
            c.reject(Reason.BUSY, f"power-on self test: retry in {s.post_until - s.now} ms")
        if therapy and s.battery is BATTERY_EOS:
            c.reject(Reason.PUMP_STOPPED, "the pump is at end of service: replace it")
        if expected_version is not None and expected_version != s.program_version:
            c.reject(
                Reason.PROGRAM_VERSION_MISMATCH,
                f"program version is {s.program_version}, not {expected_version}: "
                "interrogate again",
            )
        return c
