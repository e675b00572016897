"""Programs: the drug record (set_drug), the basal program (continuous, multi-step schedule,
bridge after a concentration change), suspend and resume, and what a new program clears.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from ._command import Cmd, CommandMixin
from ._core import NEVER
from ._delivery import _schedule_x1440
from ._state import NO_COMMAND, Applied
from ._types import (
    DAY_MS,
    MINUTES_PER_DAY,
    Alarm,
    BolusKind,
    Capability,
    Command,
    ConcentrationUnit,
    Drug,
    EventKind,
    Mode,
    Reason,
    Source,
)


class ProgramsMixin(CommandMixin):
    __slots__ = ()

    @property
    def schedule(self) -> tuple[tuple[int, int], ...]:
        return tuple(self._s.steps)

    @property
    def program_dose_ng_per_day(self) -> int:
        """CONTINUOUS and BRIDGE: the programmed daily dose (0 in other modes)."""
        s = self._s
        return s.dose_ng_per_day if s.mode in (Mode.CONTINUOUS, Mode.BRIDGE) else 0

    @property
    def bridge_ends_at_ms(self) -> int | None:
        s = self._s
        if s.mode is not Mode.BRIDGE or self._basal is None:
            return None
        x = self._program_reach(s.bridge_left_nl, NEVER - 1) if s.bolus is None else None
        if x is None:  # a bolus also pushes the dead volume: estimate at the bridge rate
            x = s.now + -(-s.bridge_left_nl * DAY_MS // s.bridge_rate_nl_per_day)
        return x + s.clock_offset_ms

    def set_drug(
        self,
        drug: Drug,
        conc_ng_per_ml: int,
        unit: ConcentrationUnit,
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Corrects the drug record. A concentration or drug change stops the basal program
        until it is re-confirmed (SET_CONTINUOUS_DOSE, SET_SCHEDULE or START_BRIDGE); on a
        constant-flow pump it changes the dose at once and is checked against the limits."""
        c = self._begin(Command.SET_DRUG, command_id, source, expected_version)
        s = self._s
        c.check_drug(drug, conc_ng_per_ml, unit)
        if s.bolus is not None and (drug, conc_ng_per_ml) != (s.drug, s.conc_ng_per_ml):
            c.reject(Reason.INVALID_STATE, "a bolus is running: cancel it before changing the drug")
        if self._profile.fixed_rate_nl_per_day:
            c.check_dose_limits(
                drug, self._fixed_daily_dose_x1440(conc_ng_per_ml), confirm_soft_limit
            )
        self._apply_drug(drug, conc_ng_per_ml, unit, command_id)
        return c.commit(EventKind.DRUG_CHANGED, int(drug), conc_ng_per_ml)

    def set_continuous_dose(
        self,
        dose_ng_per_day: int,
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Simple continuous mode; the rate is derived: dose * 10^6 / concentration, floored."""
        c = self._begin(Command.SET_CONTINUOUS_DOSE, command_id, source, expected_version)
        c.require(Capability.CONTINUOUS | Capability.VARIABLE_RATE)
        c.require_drug()
        s = self._s
        if dose_ng_per_day <= 0:
            c.reject(Reason.INVALID_VALUE, "dose must be > 0 ng/day (use SUSPEND to stop delivery)")
        rate = self._rate_for(dose_ng_per_day, s.conc_ng_per_ml)
        c.check_rate(rate, "rate")
        c.check_dose_limits(s.drug, dose_ng_per_day * MINUTES_PER_DAY, confirm_soft_limit)
        return self._install(c, Mode.CONTINUOUS, dose_ng_per_day, rate, [])

    def set_schedule(
        self,
        steps: Iterable[tuple[int, int]],
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """A multi-step daily schedule of (start minute, dose ng/day) steps, the first at 0."""
        c = self._begin(Command.SET_SCHEDULE, command_id, source, expected_version)
        c.require(Capability.SCHEDULE)
        c.require_drug()
        s = self._s
        plan = [(int(m), int(d)) for m, d in steps]
        if not 1 <= len(plan) <= self._profile.max_schedule_steps:
            c.reject(
                Reason.INVALID_VALUE,
                f"a schedule has 1 .. {self._profile.max_schedule_steps} steps",
            )
        starts = [m for m, _ in plan]
        if (
            starts[0] != 0
            or any(b <= a for a, b in itertools.pairwise(starts))
            or starts[-1] >= MINUTES_PER_DAY
        ):
            c.reject(
                Reason.INVALID_VALUE,
                "step start minutes must begin at 0, strictly increase, stay < 1440",
            )
        if any(d < 0 for _, d in plan) or not any(d for _, d in plan):
            c.reject(
                Reason.INVALID_VALUE,
                "step doses must be >= 0 and at least one > 0 (use SUSPEND to stop)",
            )
        for i, (_, dose) in enumerate(plan):
            if dose:
                c.check_rate(self._rate_for(dose, s.conc_ng_per_ml), f"step {i + 1} rate")
        c.check_dose_limits(s.drug, _schedule_x1440(plan), confirm_soft_limit)
        return self._install(c, Mode.SCHEDULE, 0, 0, plan)

    def start_bridge(
        self,
        dead_volume_nl: int,
        previous_conc_ng_per_ml: int,
        dose_ng_per_day: int,
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """After a concentration change: the old concentration's rate until the dead volume is
        flushed (duration = ceil(dead * DAY / old rate)), then continuous at the new rate."""
        c = self._begin(Command.START_BRIDGE, command_id, source, expected_version)
        c.require(Capability.BRIDGE)
        c.require_drug()
        s = self._s
        if dead_volume_nl <= 0 or previous_conc_ng_per_ml <= 0 or dose_ng_per_day <= 0:
            c.reject(
                Reason.INVALID_VALUE, "dead volume, previous concentration and dose must all be > 0"
            )
        old_rate = self._rate_for(dose_ng_per_day, previous_conc_ng_per_ml)
        new_rate = self._rate_for(dose_ng_per_day, s.conc_ng_per_ml)
        c.check_rate(old_rate, "bridge rate")
        c.check_rate(new_rate, "rate after the bridge")
        c.check_dose_limits(s.drug, dose_ng_per_day * MINUTES_PER_DAY, confirm_soft_limit)
        s.bridge_rate_nl_per_day = old_rate
        s.bridge_left_nl = dead_volume_nl
        return self._install(c, Mode.BRIDGE, dose_ng_per_day, new_rate, [])

    def suspend(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Stopped-pump mode until RESUME; a running bolus is cancelled."""
        c = self._begin(Command.SUSPEND, command_id, source, expected_version)
        c.require(Capability.VARIABLE_RATE)
        s = self._s
        if s.suspended or s.mode is Mode.STOPPED:
            c.reject(Reason.INVALID_STATE, "the pump is already stopped")
        if s.bolus is not None:
            self._end_bolus(cancelled=True, source=source, command_id=command_id)
        s.suspended = True
        return c.commit(EventKind.SUSPENDED, int(s.mode), 0)

    def resume(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        c = self._begin(Command.RESUME, command_id, source, expected_version)
        s = self._s
        if not s.suspended:
            c.reject(Reason.INVALID_STATE, "the pump is not suspended")
        s.suspended = False
        return c.commit(EventKind.RESUMED, int(s.mode), 0)

    def _apply_drug(
        self, drug: Drug, conc: int, unit: ConcentrationUnit, command_id: bytes
    ) -> None:
        s = self._s
        changed = (drug, conc) != (s.drug, s.conc_ng_per_ml)
        s.drug, s.conc_ng_per_ml, s.conc_unit = Drug(drug), conc, ConcentrationUnit(unit)
        if not changed:
            return
        if self._profile.fixed_rate_nl_per_day:
            return  # the flow is fixed: the dose follows the concentration
        if s.mode is not Mode.STOPPED:
            s.mode = Mode.STOPPED
            s.steps = []
            self._log(EventKind.PROGRAM_CHANGED, Source.PUMP, command_id, int(Mode.STOPPED), 0)
        s.awaiting_program = True
        if s.patient.enabled:
            s.patient.enabled = False
            self._log(
                EventKind.PATIENT_BOLUS_SETTINGS, Source.PUMP, command_id, 0, s.patient.dose_ng
            )

    def _install(
        self, c: Cmd, mode: Mode, dose: int, rate: int, steps: list[tuple[int, int]]
    ) -> Applied:
        """Applies a validated new program (SET_CONTINUOUS_DOSE, SET_SCHEDULE, START_BRIDGE)."""
        s = self._s
        self._reprogrammed(c.command_id, c.source)
        if s.bolus is not None and s.bolus.kind is BolusKind.CLINICIAN_SINGLE:
            s.bolus.kind = BolusKind.CLINICIAN  # the newer program wins over "then stop"
        s.mode, s.dose_ng_per_day, s.rate_nl_per_day, s.steps = mode, dose, rate, steps
        return c.commit(
            EventKind.PROGRAM_CHANGED, int(mode), self._daily_dose_x1440() // MINUTES_PER_DAY
        )

    def _reprogrammed(self, command_id: bytes, source: Source) -> None:
        """A new program clears what only reprogramming clears."""
        s = self._s
        s.awaiting_program = False
        s.suspended = False
        if s.safe_mode:
            s.safe_mode = False
            self._resolve(Alarm.LOW_BATTERY_RESET, source, command_id)
        self._resolve(Alarm.CRITICAL_MEMORY_ERROR, source, command_id)
