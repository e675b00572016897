"""The pump: `Pump`, a thin facade composed of one mixin per concept, and `Status`.

Every method lives with its concept (see the theory of operation in firmware_model/__init__.py
and the table in docs/firmware_model.md); this module only creates a pump and reads `status()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._alarms import _NO_ALARMS, AlarmsMixin
from ._battery import BatteryMixin
from ._boluses import BolusesMixin
from ._catheter import CatheterMixin
from ._clock import ClockMixin, clinic_clock_problem
from ._command import CommandMixin
from ._core import (
    CONTROL_TRUE_RESERVOIR,
    HAZARD_PPM,
    MAX_ERROR_PPM,
    MAX_SILENCE_MS,
    MIN_ERROR_PPM,
    NEVER,
    STOPPED_ALARM_MS,
)
from ._delivery import DeliveryMixin
from ._errors import TimeWentBackwards
from ._fast import frozen_maker
from ._faults import FaultsMixin
from ._log import LogMixin
from ._members import BOLUS_NONE
from ._profiles import DEFAULT_LIBRARY, PROFILES, DrugLimits, Profile
from ._programs import ProgramsMixin
from ._refill import RefillMixin
from ._state import NO_COMMAND, Segment, State
from ._types import (
    DAY_MS,
    DEFAULT_CATHETER_NL,
    MINUTES_PER_DAY,
    Alarm,
    BatteryState,
    BolusKind,
    ConcentrationUnit,
    Drug,
    EventKind,
    FaultKind,
    Mode,
    ProfileId,
    Source,
)

__all__ = [
    "CONTROL_TRUE_RESERVOIR",
    "HAZARD_PPM",
    "MAX_ERROR_PPM",
    "MAX_SILENCE_MS",
    "MIN_ERROR_PPM",
    "NEVER",
    "STOPPED_ALARM_MS",
    "Pump",
    "Status",
]


@dataclass(frozen=True, slots=True)
class Status:
    """Everything a runtime, a control plane or a test wants to see at once."""

    now: int  # model time
    clock_ms: int  # pump clock
    program_version: int
    event_seq: int  # newest record
    mode: Mode
    suspended: bool
    awaiting_program: bool
    safe_mode: bool
    bolus: BolusKind
    delivering: bool  # drug truly flowing out of the reservoir
    basal_rate_nl_per_day: int
    current_rate_nl_per_day: int  # basal + bolus, as commanded
    daily_dose_ng: int  # of the basal program
    daily_volume_nl: int
    drug: Drug
    conc_ng_per_ml: int
    conc_unit: ConcentrationUnit
    reservoir_nl: int  # calculated
    true_reservoir_nl: int
    low_threshold_nl: int
    active_alarms: Alarm
    battery: BatteryState
    battery_remaining_permille: int
    low_reservoir_at_ms: int | None
    empty_at_ms: int | None
    last_refill_at_ms: int | None
    eri_at_ms: int | None  # reached or predicted
    eos_at_ms: int | None
    program_total_nl: int
    pumped_total_nl: int
    patient_total_nl: int
    patient_dose_ng: int
    faults: frozenset[FaultKind]
    utc_offset_ms: int = 0  # local clock = clock_ms + utc_offset_ms (schedules run on it)
    zone: str = "UTC"  # IANA name the offset was set for (display only)


_make_status = frozen_maker(Status)  # Status(...) without a frozen setattr per field


class Pump(
    ProgramsMixin,
    BolusesMixin,
    RefillMixin,
    AlarmsMixin,
    FaultsMixin,
    CatheterMixin,
    BatteryMixin,
    ClockMixin,
    DeliveryMixin,
    LogMixin,
    CommandMixin,
):
    """One implanted pump. Create with `Pump.create(...)`; restore with
    `firmware_model.restore(...)`."""

    __slots__ = ()

    def __init__(self, profile: Profile, library: Mapping[Drug, DrugLimits], state: State) -> None:
        self._profile = profile
        self._library = dict(library)
        self._s = state
        self._basal = None
        self._next = None
        self._im_prof = None
        self._im_c0 = self._im_c1 = self._im_val = 0
        self._step_cache = {}
        self._last_schedule = None
        self._last_x1440 = None
        self._eri_hint = -1
        self._replan()

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        profile: Profile | ProfileId = ProfileId.SYNCHROMED_II_20,
        *,
        serial: int,
        now_ms: int,
        clock_ms: int | None = None,
        implanted_at_ms: int | None = None,
        catheter_volume_nl: int = DEFAULT_CATHETER_NL,
        accuracy_error_ppm: int | None = None,
        utc_offset_ms: int = 0,
        zone: str = "UTC",
        library: Mapping[Drug, DrugLimits] = DEFAULT_LIBRARY,
    ) -> Pump:
        """A freshly implanted, empty pump, powering on at model time `now_ms`.

        `clock_ms` sets the pump clock (default: equal to model time). The catheter and pump
        tubing hold `catheter_volume_nl + profile.pump_tubing_nl` of drug-free fluid until
        primed (default catheter: 85 cm x 2.6 uL/cm, domain.md 2.3). `utc_offset_ms` and `zone`
        are the clinic's clock it starts with (default UTC); another than UTC is logged after
        POWER_ON as a sync from UTC would be (ZONE_SET, ZONE_NAME)."""
        prof = PROFILES[profile] if isinstance(profile, ProfileId) else profile
        if not 1 <= serial <= 0xFFFF_FFFE:
            raise ValueError("serial must be 1 .. 0xFFFFFFFE")
        if catheter_volume_nl < 0:
            raise ValueError("catheter_volume_nl must be >= 0")
        error = prof.accuracy_error_ppm if accuracy_error_ppm is None else accuracy_error_ppm
        if not MIN_ERROR_PPM <= error <= MAX_ERROR_PPM:
            raise ValueError(f"accuracy_error_ppm must be {MIN_ERROR_PPM} .. {MAX_ERROR_PPM}")
        problem = clinic_clock_problem(utc_offset_ms, zone)
        if problem is not None:
            raise ValueError(problem)
        implanted = now_ms if implanted_at_ms is None else implanted_at_ms
        if implanted > now_ms:
            raise ValueError("implanted_at_ms is in the future")
        offset = 0 if clock_ms is None else clock_ms - now_ms
        s = State(
            serial=serial,
            now=now_ms,
            clock_offset_ms=offset,
            implanted_at=implanted,
            post_until=now_ms + prof.post_ms,
        )
        s.low_threshold_nl = prof.default_low_threshold_nl
        s.faults.error_ppm = error
        dead = catheter_volume_nl + prof.pump_tubing_nl
        s.catheter = [Segment(dead, 0)] if dead else []
        if prof.fixed_rate_nl_per_day:
            s.mode = Mode.CONTINUOUS
            s.rate_nl_per_day = prof.fixed_rate_nl_per_day
        if prof.battery is None:
            s.battery = BatteryState.NOT_APPLICABLE
        else:
            s.battery_used_bu = prof.battery.idle_bu_per_ms * (now_ms - implanted)
        pump = cls(prof, library, s)
        pump._log(EventKind.POWER_ON, Source.PUMP, NO_COMMAND, int(prof.id), serial)
        pump._set_zone(Source.PUMP, NO_COMMAND, utc_offset_ms, zone)
        pump._settle()
        return pump

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def library(self) -> Mapping[Drug, DrugLimits]:
        return dict(self._library)

    @property
    def program_version(self) -> int:
        return self._s.program_version

    @property
    def serial(self) -> int:
        return self._s.serial

    def beacon_state(self) -> tuple[int, bool, Alarm, BatteryState]:
        """What a telemetry beacon carries (clock ms, delivering, active alarms, battery), as
        `status()` has them, without its predictions: a fleet sends 20,000 a second."""
        s = self._s
        return s.now + s.clock_offset_ms, self._flowing(), self.active_alarms, s.battery

    def beacon_state_at(self, t: int) -> tuple[int, bool, Alarm, BatteryState]:
        """`beacon_state()` at model time `t` (>= now), as `advance_to(t)` would leave it. What
        a beacon carries changes only at the model's own events (and commands); when none
        comes by `t` the model stays where it is (the next event time is cached between
        them), so a fleet's idle pump costs no integration per beacon. Integration is exact
        (integers, carried remainders), so where the model is advanced later changes
        nothing."""
        s = self._s
        if t < s.now:
            raise TimeWentBackwards(f"beacon_state_at({t}) is before the model time {s.now}")
        due = self.next_event_time()
        if due is not None and due <= t:
            self.advance_to(t)
        return t + s.clock_offset_ms, self._flowing(), self.active_alarms, s.battery

    def status(self) -> Status:
        s = self._s
        off = s.clock_offset_ms
        basal_now = self._basal.rate_at(s.now + self._tod_off) if self._basal else 0
        b = s.bolus
        bolus_rate = b.volume_nl * DAY_MS // b.duration_ms if b else 0
        daily_nl = self._daily_volume_nl()
        low = self._predict(s.low_threshold_nl)
        empty = self._predict(self._profile.empty_threshold_nl)
        eri = self._eri_prediction()
        eos = (
            s.eos_at
            if s.eos_at >= 0
            else (
                min(eri + self._profile.battery.eri_to_eos_ms, self._service_end())
                if eri is not None and self._profile.battery
                else None
            )
        )
        return _make_status(
            now=s.now,
            clock_ms=s.now + off,
            program_version=s.program_version,
            event_seq=s.next_seq - 1,
            mode=s.mode,
            suspended=s.suspended,
            awaiting_program=s.awaiting_program,
            safe_mode=s.safe_mode,
            bolus=b.kind if b else BOLUS_NONE,
            delivering=self._flowing(),
            basal_rate_nl_per_day=basal_now,
            current_rate_nl_per_day=basal_now + bolus_rate,
            daily_dose_ng=self._daily_dose_x1440() // MINUTES_PER_DAY,
            daily_volume_nl=daily_nl,
            drug=s.drug,
            conc_ng_per_ml=s.conc_ng_per_ml,
            conc_unit=s.conc_unit,
            reservoir_nl=s.calc_nl,
            true_reservoir_nl=s.true_nl,
            low_threshold_nl=s.low_threshold_nl,
            active_alarms=self.active_alarms,
            battery=s.battery,
            battery_remaining_permille=self._battery_permille(),
            low_reservoir_at_ms=None if low is None else low + off,
            empty_at_ms=None if empty is None else empty + off,
            last_refill_at_ms=None if s.last_refill_at < 0 else s.last_refill_at,
            eri_at_ms=None if eri is None else eri + off,
            eos_at_ms=None if eos is None else eos + off,
            program_total_nl=s.program_total_nl,
            pumped_total_nl=s.pumped_total_nl,
            patient_total_nl=s.patient_total_nl,
            patient_dose_ng=s.patient_dose_fg // 1_000_000,
            faults=self.active_faults(),
            utc_offset_ms=s.utc_offset_ms,
            zone=s.zone,
        )

    def wire_status(self) -> tuple[Any, ...]:
        """`status()` cut to what a STATUS frame carries, as a tuple in the frame's field order:
        clock_ms, program_version, event_seq, mode, bolus, suspended, current_rate_nl_per_day,
        daily_dose_ng, drug, conc_ng_per_ml, conc_unit, reservoir_nl, low_threshold_nl,
        active_alarms, battery, battery_remaining_permille, low_reservoir_at_ms, empty_at_ms,
        last_refill_at_ms, eri_at_ms (each exactly what `status()` has; `WIRE_STATUS_FIELDS`
        names them; tests/test_wire_status.py). Every status request of the emulator reads
        this: none of the other fields' work (the daily volume, the end-of-service date, the
        delivery and fault checks, the 35-field `Status`) is done."""
        s = self._s
        off = s.clock_offset_ms
        basal = self._basal
        b = s.bolus
        low = self._predict(s.low_threshold_nl)
        empty = self._predict(self._profile.empty_threshold_nl)
        eri = self._eri_prediction()
        return (
            s.now + off,
            s.program_version,
            s.next_seq - 1,
            s.mode,
            b.kind if b else BOLUS_NONE,
            s.suspended,
            (basal.rate_at(s.now + off + s.utc_offset_ms) if basal else 0)
            + (b.volume_nl * DAY_MS // b.duration_ms if b else 0),
            self._daily_dose_x1440() // MINUTES_PER_DAY,
            s.drug,
            s.conc_ng_per_ml,
            s.conc_unit,
            s.calc_nl,
            s.low_threshold_nl,
            self.active_alarms if s.alarms else _NO_ALARMS,
            s.battery,
            self._battery_permille(),
            None if low is None else low + off,
            None if empty is None else empty + off,
            None if s.last_refill_at < 0 else s.last_refill_at,
            None if eri is None else eri + off,
        )


WIRE_STATUS_FIELDS = (
    "clock_ms",
    "program_version",
    "event_seq",
    "mode",
    "bolus",
    "suspended",
    "current_rate_nl_per_day",
    "daily_dose_ng",
    "drug",
    "conc_ng_per_ml",
    "conc_unit",
    "reservoir_nl",
    "low_threshold_nl",
    "active_alarms",
    "battery",
    "battery_remaining_permille",
    "low_reservoir_at_ms",
    "empty_at_ms",
    "last_refill_at_ms",
    "eri_at_ms",
)
