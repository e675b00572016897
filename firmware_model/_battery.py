"""The battery: use counted in battery units (idle, per nanolitre pumped, per telemetry frame),
the elective replacement indicator (ERI), end of service (EOS) and the service-life stop, the
analytic time the battery reaches ERI (`_battery_reach`: the real drain of the state now, which
drives the event), the predicted ERI date (`_eri_prediction`: the real use so far plus the
forecast drain of the programmed therapy, which a suspension does not change) and the permille
left.
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import NEVER, PumpCore
from ._members import BOLUS_SINGLE, MODE_SCHEDULE, MODE_STOPPED
from ._rates import RateProfile
from ._types import DAY_MS, Alarm, BatteryState, EventKind, Source


class BatteryMixin(PumpCore):
    __slots__ = ()

    @property
    def battery(self) -> BatteryState:
        return self._s.battery

    def note_telemetry(self, frames: int = 1) -> None:
        """Telemetry costs battery (frequent polling shortens pump life)."""
        if frames < 0:
            raise ValueError("frames must be >= 0")
        s = self._s
        s.telemetry_frames += frames
        if self._profile.battery is not None and s.battery is BatteryState.OK:
            s.battery_used_bu += frames * self._profile.battery.bu_per_telemetry_frame
            self._settle()

    def _eri(self, source: Source, command_id: bytes) -> None:
        s = self._s
        bat = self._profile.battery
        assert bat is not None
        s.battery = BatteryState.ELECTIVE_REPLACEMENT
        s.eri_at = s.now
        s.eos_at = min(s.now + bat.eri_to_eos_ms, self._service_end())
        self._log(
            EventKind.BATTERY, Source.PUMP, command_id, int(s.battery), self._battery_permille()
        )
        self._raise(Alarm.ELECTIVE_REPLACEMENT, source, command_id)

    def _eos(self, source: Source, command_id: bytes) -> None:
        s = self._s
        if s.eri_at < 0:
            s.eri_at = s.now
        s.battery = BatteryState.END_OF_SERVICE
        s.eos_at = s.now
        if s.bolus is not None:
            self._end_bolus(cancelled=True, source=Source.PUMP, command_id=command_id)
        self._log(
            EventKind.BATTERY, Source.PUMP, command_id, int(s.battery), self._battery_permille()
        )
        self._resolve(Alarm.ELECTIVE_REPLACEMENT, Source.PUMP, command_id, force=True)
        self._raise(Alarm.END_OF_SERVICE, source, command_id)

    def _service_end(self) -> int:
        bat = self._profile.battery
        return NEVER if bat is None else self._s.implanted_at + bat.service_life_ms

    def _battery_reach(self, need: int, bound: int) -> int | None:
        s = self._s
        bat = self._profile.battery
        assert bat is not None
        if need <= 0:
            return s.now
        if bound >= NEVER:
            return None

        def used(x: int) -> int:
            return bat.idle_bu_per_ms * (x - s.now) + bat.bu_per_nl * self._program_volume(x)

        drained = bat.bu_per_nl * self._program_volume(bound)
        reached = bat.idle_bu_per_ms * (bound - s.now) + drained  # used(bound)
        if reached < need:
            return None
        if drained == 0:  # nothing flows by `bound` (an idle pump): the idle current alone,
            # a line; the same first millisecond the bisection finds, without its ~40 steps
            return s.now + -(-need // bat.idle_bu_per_ms)
        # Linear interpolation: `_first_reaching` checks the guess before it trusts it.
        t0 = s.now + -(-(bound - s.now) * need // reached)
        return _first_reaching(used, need, s.now, bound, (t0 - 1, t0 + 1))

    def _battery_permille(self) -> int:
        bat = self._profile.battery
        if bat is None:
            return 1000
        left = max(0, bat.capacity_bu - self._s.battery_used_bu)
        return left * 1000 // bat.capacity_bu

    def _eri_prediction(self) -> int | None:
        """When ERI is reached (or was): the battery's real use so far plus the forecast drain
        of the programmed therapy (docs/firmware_model.md, "Battery predictions")."""
        s = self._s
        bat = self._profile.battery
        if bat is None:
            return None
        if s.eri_at >= 0:
            return s.eri_at
        end = self._service_end()
        hint = -1 if self._reference else self._eri_hint  # a reference pump searches afresh
        x = self._forecast_reach(bat.eri_used_bu - s.battery_used_bu, end, hint)
        if x is None:
            return end
        self._eri_hint = x
        return x

    def _forecast_profile(self) -> RateProfile | None:
        """The basal the battery forecast assumes from now on: the programmed therapy. A
        suspension or a priming bolus only interrupts it (the program resumes); an empty
        reservoir, no drug, end of service, a pump with no program (STOPPED) or one that stops
        after its single bolus drain nothing but the idle current. A bridge is forecast at the
        rate that follows it."""
        s = self._s
        if s.mode is MODE_STOPPED or self._halted():
            return None
        if s.bolus is not None and s.bolus.kind is BOLUS_SINGLE:
            return None  # the pump goes to STOPPED when it ends
        if s.safe_mode:
            return self._constant(self._profile.safe_rate_nl_per_day)
        if s.mode is MODE_SCHEDULE:
            return self._schedule_profile()
        return self._constant(s.rate_nl_per_day)

    def _forecast_reach(self, need: int, bound: int, hint: int = -1) -> int | None:
        """Smallest model time x <= bound at which the forecast drain from now reaches `need`
        battery units: idle current plus the forecast basal's nanolitres, counted exactly as
        `_flow` counts them (the basal carry included); None if not by `bound`.

        `hint` (the previous answer: as the clock moves on with the same therapy, the answer
        mostly stays) is tested first: returned only if the drain is still short of `need` at
        hint - 1 and reaches it at hint, which makes it the first such time (the drain never
        decreases), so a stale hint costs two evaluations and never changes the result."""
        s = self._s
        bat = self._profile.battery
        assert bat is not None
        if need <= 0:
            return s.now
        prof = self._forecast_profile()
        off = self._tod_off
        now, carry = s.now, s.basal_carry

        def used(x: int) -> int:
            nl = 0 if prof is None else (carry + prof.integral(now + off, x + off)) // DAY_MS
            return bat.idle_bu_per_ms * (x - now) + bat.bu_per_nl * nl

        if now < hint <= bound and used(hint - 1) < need <= used(hint):
            return hint
        if bound <= now or used(bound) < need:
            return None
        # Where the answer must be if the drain were the average rate, give or take what the
        # whole-nanolitre floor (and, for a schedule, a day's unevenness) can shift it: two
        # tests of that bracket spare most of a bisection over years of milliseconds.
        total = 0 if prof is None else prof.day_total
        den = bat.idle_bu_per_ms * DAY_MS * DAY_MS + bat.bu_per_nl * total
        near = None
        if den > 0:
            c = 0 if prof is None else carry
            t0 = now + max(0, need * DAY_MS * DAY_MS - bat.bu_per_nl * c * DAY_MS) // den
            uneven = 1 if prof is None or prof.is_constant else total // DAY_MS + 2
            spread = bat.bu_per_nl * DAY_MS * DAY_MS * uneven // den + 2
            near = (t0 - spread, t0 + spread)
        return _first_reaching(used, need, now, bound, near)


def _first_reaching(
    used: Callable[[int], int],
    need: int,
    lo: int,
    hi: int,
    near: tuple[int, int] | None = None,
) -> int:
    """The first time in lo .. hi at which the non-decreasing `used` reaches `need` (it does
    at `hi`): a bisection over whole milliseconds. `near` (a, b) is where the caller expects
    the answer: a is taken as the lower end only if `used` is still short of `need` just
    before it, b as the upper end only if `used` reaches `need` there, so a wrong guess costs
    two evaluations and never changes the result."""
    if near is not None:
        a, b = near
        if lo < a <= hi and used(a - 1) < need:
            lo = a
        if lo <= b < hi and used(b) >= need:
            hi = b
    while lo < hi:
        mid = (lo + hi) // 2
        if used(mid) >= need:
            hi = mid
        else:
            lo = mid + 1
    return lo
