"""Faults a trainer or a test injects through the model (never by poking fields), and their logic.

Each is a small frozen value; `Pump.inject(fault)` applies its real consequence and logs it,
`Pump.clear_fault(kind)` ends it where a real pump could recover or be reset. `FaultsMixin` owns
that logic: the checks and consequences of each fault, the motor stall and its recovery, MRI
exposure by profile, and which faults are active.

A new fault: its frozen value here (and in the `Fault` union), a `FaultKind` (_types.py), a
`case` in `inject` (checks first, then its FAULT record, then its consequence), a `case` in
`clear_fault` and a line in `active_faults` if it can end; the state it needs in
`State.faults` (_state.py: snapshots follow by themselves); its effect on delivery in
_delivery.py (`_flow`, `_next_internal`) if it changes what flows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._command import CommandMixin
from ._core import MAX_ERROR_PPM, MIN_ERROR_PPM
from ._state import NO_COMMAND
from ._types import (
    MS_PER_HOUR,
    PPM,
    Alarm,
    BatteryState,
    Command,
    EventKind,
    FaultKind,
    MriBehaviour,
    Reason,
    Source,
)


@dataclass(frozen=True, slots=True)
class MotorStall:
    """The rotor stops (shaft wear, gear corrosion, shorting: domain #16-#17). Critical alarm;
    no drug flows; the calculated volume keeps following the program, so the under-delivery
    also shows as a refill discrepancy. Recovers by itself after `recover_after_ms` if given."""

    recover_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CatheterOcclusion:
    """The catheter is blocked. An implant has no pump-side sensor: no alarm, the calculated
    volume keeps falling while the true volume does not; only a refill discrepancy reveals it.
    An external pump's pressure sensor raises DOWNSTREAM_OCCLUSION until it is cleared."""


@dataclass(frozen=True, slots=True)
class CatheterLeak:
    """A share of what leaves the catheter goes to the tissue, not the intrathecal space: a tear
    (share < 100 %) or a disconnection (share_ppm = 1000000). The drug did leave the reservoir:
    no refill discrepancy, no alarm; the patient is under-dosed (_catheter.py)."""

    share_ppm: int


@dataclass(frozen=True, slots=True)
class CatheterKink:
    """A kink or partial occlusion holds back `restriction_ppm` of the flow: that share stays
    in the reservoir (a refill discrepancy), the patient gets the rest. An implant has no
    sensor: no alarm. An external pump's pressure sensor raises DOWNSTREAM_OCCLUSION (and
    stops) until it is cleared. Injecting it again sets the new share."""

    restriction_ppm: int


@dataclass(frozen=True, slots=True)
class CatheterGranuloma:
    """A catheter-tip mass: the share of the flow it holds back grows from `start_ppm` to
    `end_ppm`, one equal step a day (rounded down) over `days` days, then stays."""

    end_ppm: int
    days: int
    start_ppm: int = 0


MAX_GRANULOMA_DAYS = 3650


@dataclass(frozen=True, slots=True)
class PocketFill:
    """At the next refill, `volume_nl` of the added volume misses the reservoir and goes into
    the subcutaneous pocket; it shows as a discrepancy at the refill after."""

    volume_nl: int


@dataclass(frozen=True, slots=True)
class CriticalMemoryError:
    """Critical data corrupt: delivery stops until the pump is reprogrammed."""


@dataclass(frozen=True, slots=True)
class NoncriticalMemoryError:
    """Non-critical data corrupt: a low-priority alarm, cleared by acknowledging it."""


@dataclass(frozen=True, slots=True)
class MriExposure:
    """An MRI scan of `duration_ms`. SynchroMed: the motor stalls and recovers
    `recovery_delay_ms` after the scan (2-24 h, domain #19). Prometra II: the valve closes
    (up to 10 uL passes) until reset. Constant flow: unaffected (logged only)."""

    duration_ms: int = 30 * 60_000
    recovery_delay_ms: int = 2 * MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class DeliveryInaccuracy:
    """Sets the device's delivery error: + over-infuses, - under-infuses (max +14.5 %)."""

    error_ppm: int


@dataclass(frozen=True, slots=True)
class PrematureEri:
    """The battery reaches the elective replacement indicator now (domain #11)."""


@dataclass(frozen=True, slots=True)
class PrematureEos:
    """The battery reaches end of service now: the pump stops for good (domain #11)."""


@dataclass(frozen=True, slots=True)
class AirInLine:
    """External pump only: air reaches its air detector; critical alarm, the pump stops (and
    knows it: its calculated volume stops too) until the line is re-primed (`clear_fault`)."""


@dataclass(frozen=True, slots=True)
class ExternalBatteryLow:
    """External pump only: its replaceable cells run low; a non-critical alarm, delivery goes
    on; replacing the cells (`clear_fault`) ends it."""


@dataclass(frozen=True, slots=True)
class LowBatteryReset:
    """Battery voltage collapse and reset: critical alarm, rate forced to the profile's safe
    minimum until reprogrammed (domain #11-#12)."""


Fault = (
    MotorStall
    | CatheterOcclusion
    | CatheterLeak
    | CatheterKink
    | CatheterGranuloma
    | PocketFill
    | CriticalMemoryError
    | NoncriticalMemoryError
    | MriExposure
    | DeliveryInaccuracy
    | PrematureEri
    | PrematureEos
    | LowBatteryReset
    | AirInLine
    | ExternalBatteryLow
)

# faults of an external pump's own sensors: (alarm, fault kind, what a pump without it lacks)
_EXTERNAL = {
    AirInLine: (Alarm.AIR_IN_LINE, FaultKind.AIR_IN_LINE, "air-in-line detector"),
    ExternalBatteryLow: (
        Alarm.EXTERNAL_BATTERY_LOW,
        FaultKind.EXTERNAL_BATTERY_LOW,
        "replaceable cells",
    ),
}


# --- the fault logic ----------------------------------------------------------------------------


class FaultsMixin(CommandMixin):
    """Injecting and clearing faults, and their lasting consequences."""

    __slots__ = ()

    def active_faults(self) -> frozenset[FaultKind]:
        f = self._s.faults
        kinds = set()
        if f.stalled:
            kinds.add(FaultKind.MOTOR_STALL)
        if f.occluded:
            kinds.add(FaultKind.CATHETER_OCCLUSION)
        if f.leak_ppm:
            kinds.add(FaultKind.CATHETER_LEAK)
        if f.kink_ppm:
            kinds.add(FaultKind.CATHETER_KINK)
        if f.granuloma_since >= 0:
            kinds.add(FaultKind.CATHETER_GRANULOMA)
        if f.pocket_fill_nl:
            kinds.add(FaultKind.POCKET_FILL)
        if f.valve_closed:
            kinds.add(FaultKind.FLOW_VALVE_CLOSED)
        if f.error_ppm != self._profile.accuracy_error_ppm:
            kinds.add(FaultKind.DELIVERY_INACCURACY)
        raised = int(self.active_alarms)  # int: a flag enum's & costs a microsecond each
        if raised:
            if raised & Alarm.CRITICAL_MEMORY_ERROR:
                kinds.add(FaultKind.CRITICAL_MEMORY_ERROR)
            if raised & Alarm.NONCRITICAL_MEMORY_ERROR:
                kinds.add(FaultKind.NONCRITICAL_MEMORY_ERROR)
            for alarm, kind, _ in _EXTERNAL.values():
                if raised & alarm:
                    kinds.add(kind)
        if self._s.safe_mode:
            kinds.add(FaultKind.LOW_BATTERY_RESET)
        return frozenset(kinds)

    def inject(
        self, fault: Fault, *, source: Source = Source.CONTROL, command_id: bytes = NO_COMMAND
    ) -> int:
        """Injects a fault with its real consequence. Returns the seq of its log record."""
        c = self._command(Command.INJECT_FAULT, command_id, source)
        s = self._s
        prof = self._profile
        f = s.faults
        battery_faults = (PrematureEri, PrematureEos, LowBatteryReset)
        if isinstance(fault, battery_faults) and prof.battery is None:
            c.reject(Reason.MODE_NOT_SUPPORTED, "this pump has no battery")
        if isinstance(fault, (MotorStall, LowBatteryReset)) and prof.fixed_rate_nl_per_day:
            c.reject(Reason.MODE_NOT_SUPPORTED, "a propellant-driven pump has no motor")
        external = _EXTERNAL.get(type(fault))
        if external is not None and not external[0] & prof.alarms:
            c.reject(Reason.MODE_NOT_SUPPORTED, f"{prof.name} has no {external[2]}")
        if s.battery is BatteryState.END_OF_SERVICE and not isinstance(
            fault, (CatheterOcclusion, CatheterLeak, CatheterKink, CatheterGranuloma, PocketFill)
        ):
            c.reject(Reason.PUMP_STOPPED, "the pump is at end of service")
        match fault:
            case MotorStall(recover_after_ms=rec):
                if rec is not None and rec <= 0:
                    c.reject(Reason.INVALID_VALUE, "recover_after_ms must be > 0")
                seq = c.log(EventKind.FAULT, int(FaultKind.MOTOR_STALL), 1)
                self._stall(0 if rec is None else s.now + rec, source, command_id, cause=0)
            case CatheterOcclusion():
                seq = c.log(EventKind.FAULT, int(FaultKind.CATHETER_OCCLUSION), 1)
                f.occluded = True
                # an external pump senses it (an implant does not: its mask lacks the bit)
                self._raise(Alarm.DOWNSTREAM_OCCLUSION, source, command_id)
            case CatheterLeak(share_ppm=share):
                if not 0 < share <= PPM:
                    c.reject(Reason.INVALID_VALUE, "leak share must be 1 .. 1000000 ppm")
                seq = c.log(EventKind.FAULT, int(FaultKind.CATHETER_LEAK), share)
                f.leak_ppm = share
            case CatheterKink(restriction_ppm=held):
                if not 0 < held <= PPM:
                    c.reject(Reason.INVALID_VALUE, "kink restriction must be 1 .. 1000000 ppm")
                seq = c.log(EventKind.FAULT, int(FaultKind.CATHETER_KINK), held)
                f.kink_ppm = held
                # an external pump's line-pressure sensor sees a kinked line; an implant cannot
                self._raise(Alarm.DOWNSTREAM_OCCLUSION, source, command_id)
            case CatheterGranuloma(end_ppm=end, days=days, start_ppm=start):
                if not 0 <= start < end <= PPM:
                    c.reject(
                        Reason.INVALID_VALUE,
                        "granuloma: 0 <= start_ppm < end_ppm <= 1000000 (it only grows)",
                    )
                if not 1 <= days <= MAX_GRANULOMA_DAYS:
                    c.reject(
                        Reason.INVALID_VALUE, f"granuloma days must be 1 .. {MAX_GRANULOMA_DAYS}"
                    )
                if f.granuloma_since >= 0:
                    c.reject(Reason.INVALID_STATE, "a granuloma is already growing: clear it first")
                seq = c.log(EventKind.FAULT, int(FaultKind.CATHETER_GRANULOMA), end)
                self._start_granuloma(start, end, days)
            case PocketFill(volume_nl=vol):
                if not 0 < vol <= prof.reservoir_nl:
                    c.reject(
                        Reason.INVALID_VALUE,
                        "pocket-fill volume must be 1 nL .. the reservoir capacity",
                    )
                seq = c.log(EventKind.FAULT, int(FaultKind.POCKET_FILL), vol)
                f.pocket_fill_nl = vol
            case DeliveryInaccuracy(error_ppm=err):
                if not MIN_ERROR_PPM <= err <= MAX_ERROR_PPM:
                    c.reject(
                        Reason.INVALID_VALUE,
                        f"error must be {MIN_ERROR_PPM} .. {MAX_ERROR_PPM} ppm "
                        "(14.5 % is the over-infusion hazard bound)",
                    )
                seq = c.log(EventKind.FAULT, int(FaultKind.DELIVERY_INACCURACY), err)
                f.error_ppm = err
            case CriticalMemoryError():
                seq = c.log(EventKind.FAULT, int(FaultKind.CRITICAL_MEMORY_ERROR), 1)
                self._raise(Alarm.CRITICAL_MEMORY_ERROR, source, command_id)
            case NoncriticalMemoryError():
                seq = c.log(EventKind.FAULT, int(FaultKind.NONCRITICAL_MEMORY_ERROR), 1)
                self._raise(Alarm.NONCRITICAL_MEMORY_ERROR, source, command_id)
            case MriExposure(duration_ms=dur, recovery_delay_ms=delay):
                if dur <= 0 or delay < 0:
                    c.reject(
                        Reason.INVALID_VALUE, "MRI duration must be > 0 and recovery delay >= 0"
                    )
                seq = c.log(EventKind.MRI_EXPOSURE, int(prof.mri), dur)
                self._mri(dur, delay, source, command_id)
            case PrematureEri():
                if s.battery is not BatteryState.OK:
                    c.reject(Reason.INVALID_STATE, "the battery is already past ERI")
                seq = c.log(EventKind.FAULT, int(FaultKind.PREMATURE_ERI), 1)
                self._eri(source, command_id)
            case PrematureEos():
                seq = c.log(EventKind.FAULT, int(FaultKind.PREMATURE_EOS), 1)
                self._eos(source, command_id)
            case AirInLine() | ExternalBatteryLow():
                assert external is not None
                alarm, kind, _ = external
                if self.active_alarms & alarm:
                    c.reject(Reason.INVALID_STATE, f"{kind.name} is already active")
                seq = c.log(EventKind.FAULT, int(kind), 1)
                self._raise(alarm, source, command_id)
            case LowBatteryReset():
                seq = c.log(EventKind.FAULT, int(FaultKind.LOW_BATTERY_RESET), 1)
                if s.bolus is not None:
                    self._end_bolus(cancelled=True, source=Source.PUMP, command_id=command_id)
                s.safe_mode = True
                self._raise(Alarm.LOW_BATTERY_RESET, source, command_id)
            case _:
                raise TypeError(f"not a fault: {fault!r}")
        self._settle()
        return seq

    def clear_fault(
        self, kind: FaultKind, *, source: Source = Source.CONTROL, command_id: bytes = NO_COMMAND
    ) -> int:
        """Ends a fault: motor recovery, occlusion, kink, granuloma or leak repaired (catheter
        revision), pending pocket fill dropped, accuracy back to the profile's, Prometra valve
        reset, memory errors cleared (service). Battery faults end only with a new pump:
        refused."""
        c = self._command(Command.CLEAR_FAULT, command_id, source)
        f = self._s.faults
        if kind not in self.active_faults():
            c.reject(Reason.INVALID_STATE, f"{kind.name} is not active")
        if kind in (FaultKind.PREMATURE_ERI, FaultKind.PREMATURE_EOS, FaultKind.LOW_BATTERY_RESET):
            c.reject(
                Reason.INVALID_STATE,
                f"{kind.name} ends with reprogramming or replacement, not a reset",
            )
        seq = c.log(EventKind.FAULT, int(kind), 0)
        match kind:
            case FaultKind.MOTOR_STALL:
                self._recover(source, command_id)
            case FaultKind.CATHETER_OCCLUSION:
                f.occluded = False
                if not f.kink_ppm:
                    self._resolve(Alarm.DOWNSTREAM_OCCLUSION, source, command_id)
            case FaultKind.CATHETER_LEAK:
                f.leak_ppm = 0
            case FaultKind.CATHETER_KINK:
                f.kink_ppm = 0
                if not f.occluded:
                    self._resolve(Alarm.DOWNSTREAM_OCCLUSION, source, command_id)
            case FaultKind.CATHETER_GRANULOMA:
                self._end_granuloma()
            case FaultKind.POCKET_FILL:
                f.pocket_fill_nl = 0
            case FaultKind.DELIVERY_INACCURACY:
                f.error_ppm = self._profile.accuracy_error_ppm
            case FaultKind.FLOW_VALVE_CLOSED:
                f.valve_closed = False
                self._resolve(Alarm.FLOW_VALVE_CLOSED, source, command_id)
            case FaultKind.CRITICAL_MEMORY_ERROR:
                self._resolve(Alarm.CRITICAL_MEMORY_ERROR, source, command_id)
            case FaultKind.NONCRITICAL_MEMORY_ERROR:
                self._resolve(Alarm.NONCRITICAL_MEMORY_ERROR, source, command_id)
            case FaultKind.AIR_IN_LINE:
                self._resolve(Alarm.AIR_IN_LINE, source, command_id)
            case FaultKind.EXTERNAL_BATTERY_LOW:
                self._resolve(Alarm.EXTERNAL_BATTERY_LOW, source, command_id)
            case _:  # pragma: no cover - every active fault kind is handled above
                raise AssertionError(kind)
        self._settle()
        return seq

    def _stall(self, recover_at: int, source: Source, command_id: bytes, cause: int) -> None:
        s = self._s
        f = s.faults
        if not f.stalled:
            f.stalled = True
            f.stall_started_at = s.now
            self._log(EventKind.MOTOR_STALL, Source.PUMP, command_id, cause, 0)
        f.stall_recover_at = recover_at
        self._raise(Alarm.MOTOR_STALL, source, command_id)

    def _recover(self, source: Source, command_id: bytes) -> None:
        s = self._s
        f = s.faults
        f.stalled = False
        f.stall_recover_at = 0
        self._log(EventKind.MOTOR_RECOVERED, Source.PUMP, command_id, s.now - f.stall_started_at, 0)
        self._resolve(Alarm.MOTOR_STALL, source, command_id)

    def _mri(self, duration: int, delay: int, source: Source, command_id: bytes) -> None:
        s = self._s
        match self._profile.mri:
            case MriBehaviour.MOTOR_STALL:
                self._stall(s.now + duration + delay, source, command_id, cause=1)
            case MriBehaviour.VALVE_CLOSES:
                # up to 10 uL escapes before the valve shuts (domain #30)
                leak = min(
                    self._profile.mri_valve_leak_nl,
                    max(0, s.true_nl - self._profile.empty_threshold_nl),
                )
                if not s.faults.valve_closed and leak:
                    self._physical(leak)
                s.faults.valve_closed = True
                self._raise(Alarm.FLOW_VALVE_CLOSED, source, command_id)
            case MriBehaviour.UNAFFECTED:
                pass
