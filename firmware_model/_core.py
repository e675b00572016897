"""What every part of the pump shares: the one `State`, the profile, the drug library and the
cached basal rate function (`PumpCore`), and the model-wide constants.

`Pump` (in _pump.py) is assembled from mixins, one per concept (_delivery, _programs, _boluses,
_refill, _alarms, _battery, _faults, _clock, _log, _command), each with `__slots__ = ()` over
these attributes, so a call costs what it cost in one class. A mixin calls what another owns
through `self`; the `TYPE_CHECKING` block below names those cross-concept calls for mypy only
(at run time the method resolution order finds the real ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ._profiles import DrugLimits, Profile
from ._rates import RateProfile
from ._state import AlarmRecord, State
from ._types import DAY_MS, MS_PER_HOUR, Alarm, ConcentrationUnit, Drug, EventKind, Source

NEVER = 1 << 62  # beyond any time the model will be asked about
STOPPED_ALARM_MS = 48 * MS_PER_HOUR  # domain.md section 3: pump stopped > 48 h
HAZARD_PPM = 145_000  # +-14.5 %: over-infusion hazard bound (domain #13)
MAX_ERROR_PPM = HAZARD_PPM
MIN_ERROR_PPM = -500_000
MAX_SILENCE_MS = DAY_MS
CONTROL_TRUE_RESERVOIR = 10  # `a` of the CONTROL record of set_true_reservoir (b: old volume)
CONTROL_CAP_ASPIRATION = 11  # `a` of the CONTROL record of aspirate_cap (b: the CapFinding)
CONTROL_CATHETER_FILLED = 12  # `a` of the CONTROL record of fill_catheter (b: path volume, nL)


class PumpCore:
    """The attributes every mixin of `Pump` works on (one instance, no per-concept objects)."""

    __slots__ = (
        "_basal",
        "_eri_hint",
        "_im_c0",
        "_im_c1",
        "_im_prof",
        "_im_val",
        "_last_schedule",
        "_last_x1440",
        "_library",
        "_next",
        "_profile",
        "_s",
        "_step_cache",
    )

    # True only in a reference pump (a subclass, in tests): every memo and shortcut of the event
    # path is bypassed and each quantity recomputed from the state, so a test can check that
    # the shortcuts change nothing (tests/test_model_shortcuts.py).
    _reference: ClassVar[bool] = False

    _profile: Profile
    _library: dict[Drug, DrugLimits]
    _s: State
    _basal: RateProfile | None  # the basal rate function now (None: no basal delivery)
    _next: int | None  # cached next internal event (None: recompute)
    # the last basal integral computed (_basal_integral): profile, from, to (local clock), value.
    # A pure function of the three (profiles are immutable): never invalidated, only replaced.
    _im_prof: RateProfile | None
    _im_c0: int
    _im_c1: int
    _im_val: int
    _step_cache: dict[tuple[object, ...], RateProfile]
    # the schedule profile last looked up: (its step list, its concentration, the profile)
    _last_schedule: tuple[list[tuple[int, int]], int, RateProfile] | None
    # the step list whose daily dose x 1440 was last computed, and that dose
    _last_x1440: tuple[list[tuple[int, int]], int] | None
    # the last forecast ERI time: tested first (two evaluations) by the next forecast, which
    # returns it only if it is provably the answer again (-1: none)
    _eri_hint: int

    @property
    def _tod_off(self) -> int:
        """Model time + this = the pump's local clock (pump clock + the clinic's UTC offset, set
        with the clock): a schedule's minutes of the day are minutes of this local clock."""
        return self._s.clock_offset_ms + self._s.utc_offset_ms

    if TYPE_CHECKING:  # owned by one mixin, called from another

        @property
        def clock_ms(self) -> int: ...  # _clock
        @property
        def active_alarms(self) -> Alarm: ...  # _alarms
        def _settle(self, planned: bool = False) -> None: ...  # _clock
        def _log(  # _log
            self, kind: EventKind, source: Source, command_id: bytes, a: int, b: int
        ) -> int: ...
        def _raise(self, alarm: Alarm, source: Source, command_id: bytes) -> None: ...  # _alarms
        def _resolve(
            self, alarm: Alarm, source: Source, command_id: bytes, *, force: bool = False
        ) -> None: ...
        def _repeat(self, alarm: Alarm) -> int: ...
        def _sounding(self) -> AlarmRecord | None: ...
        def _end_bolus(  # _boluses
            self, *, cancelled: bool, source: Source, command_id: bytes
        ) -> int: ...
        def _recover(self, source: Source, command_id: bytes) -> None: ...  # _faults
        def _eri(self, source: Source, command_id: bytes) -> None: ...  # _battery
        def _eos(self, source: Source, command_id: bytes) -> None: ...
        def _service_end(self) -> int: ...
        def _battery_reach(self, need: int, bound: int) -> int | None: ...
        def _apply_drug(  # _programs
            self, drug: Drug, conc: int, unit: ConcentrationUnit, command_id: bytes
        ) -> None: ...
        def _restriction_ppm(self) -> int: ...  # _catheter
        def _granuloma_next(self) -> int | None: ...
        def _granuloma_due(self) -> None: ...
        def _start_granuloma(self, start_ppm: int, end_ppm: int, days: int) -> None: ...
        def _end_granuloma(self) -> None: ...
        def _replan(self) -> None: ...  # _delivery
        def _halted(self) -> bool: ...
        def _constant(self, rate: int) -> RateProfile: ...
        def _schedule_profile(self) -> RateProfile: ...
        def _next_internal(self, horizon: int = ...) -> int: ...
        def _flow(self, x: int) -> None: ...
        def _basal_integral(self, prof: RateProfile, c0: int, c1: int) -> int: ...
        def _physical(self, pumped: int) -> None: ...
        def _program_volume(self, x: int) -> int: ...
        def _program_reach(self, need: int, bound: int) -> int | None: ...
        def _rate_for(self, dose_ng_per_day: int, conc: int) -> int: ...
        def _fixed_daily_dose_x1440(self, conc: int) -> int: ...
        def _daily_dose_x1440(self) -> int: ...
        def _daily_volume_nl(self) -> int: ...
        def _predict(self, threshold: int) -> int | None: ...
