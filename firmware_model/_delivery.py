"""Delivery: the basal rate function, the exact rate integral and what flows.

Owns the three volumes (program volume, which drives the calculated reservoir; pumped volume,
which truly leaves the reservoir; patient volume and dose, past the catheter's dead volume and
any leak), the true versus calculated reservoir, the next internal event (`_next_internal`),
the analytic reach of a volume (`_program_reach`) and the predictions of when a threshold is
reached (`_predict`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from ._alarms import CATALOGUE
from ._core import NEVER, STOPPED_ALARM_MS, PumpCore
from ._members import (
    BATTERY_EOS,
    BATTERY_ERI,
    BATTERY_OK,
    BOLUS_PRIMING,
    BOLUS_SINGLE,
    DRUG_NONE,
    MODE_BRIDGE,
    MODE_SCHEDULE,
    MODE_STOPPED,
)
from ._rates import RateProfile
from ._state import Segment
from ._types import (
    DAY_MS,
    MINUTES_PER_DAY,
    MS_PER_MIN,
    NL_PER_ML,
    PPM,
    Alarm,
    AlarmState,
)

# Alarms whose cause the pump itself sees and stops for (an external pump's sensors included).
_HALTING = (
    Alarm.EMPTY_RESERVOIR,
    Alarm.CRITICAL_MEMORY_ERROR,
    Alarm.DOWNSTREAM_OCCLUSION,
    Alarm.AIR_IN_LINE,
)


class DeliveryMixin(PumpCore):
    __slots__ = ()

    def _flowing(self) -> bool:
        s = self._s
        f = s.faults
        return (
            (self._basal is not None or s.bolus is not None)
            and not f.stalled
            and not f.occluded
            and not f.valve_closed
            and not s.dry
            and self._restriction_ppm() < PPM
        )

    def _halted(self) -> bool:
        """The pump itself has stopped delivering (it knows: its calculated volume stops)."""
        s = self._s
        if s.drug is DRUG_NONE or s.battery is BATTERY_EOS:
            return True
        alarms = s.alarms
        return bool(alarms) and any(r.alarm in _HALTING for r in alarms)

    def _replan(self) -> None:
        """Recompute the basal rate function after any change of state."""
        s = self._s
        self._next = None
        mode = s.mode
        b = s.bolus
        if (
            mode is MODE_STOPPED
            or s.suspended
            or (b is not None and b.kind is BOLUS_PRIMING)
            # self._halted(), inlined
            or s.drug is DRUG_NONE
            or s.battery is BATTERY_EOS
            or (s.alarms and any(r.alarm in _HALTING for r in s.alarms))
        ):
            self._basal = None
        elif s.safe_mode:
            self._basal = self._constant(self._profile.safe_rate_nl_per_day)
        elif mode is MODE_SCHEDULE:
            last = self._last_schedule  # self._schedule_profile()'s own first test, inlined
            if last is not None and last[0] is s.steps and last[1] == s.conc_ng_per_ml:
                self._basal = last[2]
            else:
                self._basal = self._schedule_profile()
        elif mode is MODE_BRIDGE:
            self._basal = self._constant(s.bridge_rate_nl_per_day)
        else:
            self._basal = self._constant(s.rate_nl_per_day)

    def _cache(self, key: tuple[object, ...], prof: RateProfile) -> None:
        # Bounded. Clearing everything at once also drops every id()-keyed entry together with
        # the profiles it names, so an id can never be reused while a key still points to it.
        if len(self._step_cache) >= 256:
            self._step_cache.clear()
        self._step_cache[key] = prof

    def _schedule_profile(self) -> RateProfile:
        s = self._s
        last = self._last_schedule
        # the same step list as last time (lists are replaced, never changed in place; this
        # one is held here, so its id cannot be reused) at the same concentration
        if last is not None and last[0] is s.steps and last[1] == s.conc_ng_per_ml:
            return last[2]
        key = (s.conc_ng_per_ml, *s.steps)
        prof = self._step_cache.get(key)
        if prof is None:
            prof = RateProfile.steps([(m, self._rate_for(d, s.conc_ng_per_ml)) for m, d in s.steps])
            self._cache(key, prof)
        self._last_schedule = (s.steps, s.conc_ng_per_ml, prof)
        return prof

    def _plus(self, prof: RateProfile, extra: int) -> RateProfile:
        """prof with `extra` nL/day added to every step (cached: prof lives in the cache)."""
        key = (-1, id(prof), extra)
        out = self._step_cache.get(key)
        if out is None:
            out = RateProfile.steps(
                [
                    (st // MS_PER_MIN, r + extra)
                    for st, r in zip(prof.starts_ms, prof.rates, strict=True)
                ]
            )
            self._cache(key, out)
        return out

    def _constant(self, rate: int) -> RateProfile:
        key = (-2, rate)
        prof = self._step_cache.get(key)
        if prof is None:
            prof = RateProfile.constant(rate)
            self._cache(key, prof)
        return prof

    def _next_internal(self, horizon: int = NEVER) -> int:
        """The model time of the next internal event. With a `horizon`, an event later than
        it may be answered by any time > horizon (the caller only asks whether one comes by
        then): the volume and battery thresholds are then searched only up to the horizon,
        and such an answer is not cached. Every time <= horizon returned is exact."""
        if self._next is not None:
            return self._next
        s = self._s
        now = s.now
        prof = self._profile
        b = s.bolus
        t = NEVER if b is None else b.start_ms + b.duration_ms  # b.end_ms, inlined
        f = s.faults
        if f.stalled and f.stall_recover_at:
            t = min(t, f.stall_recover_at)
        if f.granuloma_since >= 0:
            g = self._granuloma_next()
            if g is not None:
                t = min(t, g)
        if (
            s.stopped_since >= 0
            and prof.alarms & Alarm.PUMP_STOPPED
            and not self.active_alarms & Alarm.PUMP_STOPPED
        ):
            t = min(t, s.stopped_since + STOPPED_ALARM_MS)
        if s.alarms:
            for r in s.alarms:
                if r.state is AlarmState.SILENCED:
                    t = min(t, r.silenced_until)
        if now < s.post_until:
            t = min(t, s.post_until)
        bat = prof.battery
        if bat is not None:
            battery = s.battery
            if battery is BATTERY_OK:
                end = s.implanted_at + bat.service_life_ms  # self._service_end()
                t = min(t, end)
            elif battery is BATTERY_ERI:
                t = min(t, s.eos_at)
        # thresholds are searched up to lim: the earliest event known so far, or the horizon
        lim = t if t <= horizon else horizon
        # volume thresholds: only when something is delivering before lim
        if self._basal is not None or b is not None:
            # While a bolus runs (lim <= its end) or under a horizon, _program_reach(need, lim)
            # is None exactly when the program volume by lim is below need: that volume,
            # computed once per lim, spares the identical search of each threshold not reached.
            cheap = (b is not None or lim < t) and not self._reference
            vt = self._program_volume(lim) if cheap else -1
            if s.mode is MODE_BRIDGE and not 0 <= vt < s.bridge_left_nl:
                x = self._program_reach(s.bridge_left_nl, lim)
                if x is not None and x < t:
                    t = lim = x
                    vt = self._program_volume(lim) if cheap else -1
            if s.drug is not DRUG_NONE:
                calc = s.calc_nl
                for thr in (s.low_threshold_nl, prof.empty_threshold_nl):
                    if calc > thr and not 0 <= vt < calc - thr:
                        x = self._program_reach(calc - thr, lim)
                        if x is not None and x < t:
                            t = lim = x
                            vt = self._program_volume(lim) if cheap else -1
            passing = PPM - self._restriction_ppm() if f.kink_ppm or f.granuloma_ppm else PPM
            if not s.dry and not f.stalled and not f.occluded and not f.valve_closed and passing:
                need_true = s.true_nl - prof.empty_threshold_nl
                if need_true > 0:
                    if passing < PPM:  # what must leave the pump for need_true to pass
                        need_true = -(-(need_true * PPM - f.restriction_carry) // passing)
                    p = -(-(need_true * PPM - s.true_carry) // (PPM + f.error_ppm))
                    if not 0 <= vt < p:
                        x = self._program_reach(p, lim)
                        if x is not None and x < t:
                            t = lim = x
                            vt = self._program_volume(lim) if cheap else -1
            if bat is not None and s.battery is BATTERY_OK:
                need = bat.eri_used_bu - s.battery_used_bu
                # as _battery_reach's own first test (lim is finite when vt is known)
                if (
                    vt < 0
                    or need <= 0
                    or bat.idle_bu_per_ms * (lim - now) + bat.bu_per_nl * vt >= need
                ):
                    x = self._battery_reach(need, lim)
                    if x is not None:
                        t = min(t, x)
        elif bat is not None and s.battery is BATTERY_OK:
            x = self._battery_reach(bat.eri_used_bu - s.battery_used_bu, lim)
            if x is not None:
                t = min(t, x)
        if t <= horizon and not self._reference:
            self._next = t
        return t

    def _basal_integral(self, prof: RateProfile, c0: int, c1: int) -> int:
        """prof.integral(c0, c1), remembered for the last interval asked: one event's interval
        is integrated by the prediction, the next-event search and the flow itself."""
        if prof is self._im_prof and c0 == self._im_c0 and c1 == self._im_c1:
            return self._im_val
        v = prof.integral(c0, c1)
        if not self._reference:  # a reference pump never remembers one: it never finds one
            self._im_prof, self._im_c0, self._im_c1, self._im_val = prof, c0, c1, v
        return v

    def _program_volume(self, x: int) -> int:
        """Program volume delivered from now to model time x, with no state change between."""
        s = self._s
        vol = 0
        basal = self._basal
        if basal is not None:
            off = s.clock_offset_ms + s.utc_offset_ms  # self._tod_off, inlined
            c0 = s.now + off
            c1 = x + off
            vol = (s.basal_carry + self._basal_integral(basal, c0, c1)) // DAY_MS
        b = s.bolus
        if b is not None:
            vol += b.due_at(x) - b.delivered_nl
        return vol

    def _program_reach(self, need: int, bound: int) -> int | None:
        """Smallest model time x <= bound with program volume >= need; None if none."""
        s = self._s
        if need <= 0:
            return s.now
        if s.bolus is None and self._basal is not None:
            off = s.clock_offset_ms + s.utc_offset_ms  # self._tod_off, inlined
            c = self._basal.reach(s.now + off, need * DAY_MS - s.basal_carry)
            if c is None or c - off > bound:
                return None
            return c - off
        if s.bolus is None:
            return None
        # a bolus is running: its end is an internal event, so search only up to it
        hi = min(bound, s.bolus.end_ms)
        if self._program_volume(hi) < need:
            return None
        lo = s.now
        while lo < hi:
            mid = (lo + hi) // 2
            if self._program_volume(mid) >= need:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _flow(self, x: int) -> None:
        """Integrate delivery from now to model time x (no internal event in between)."""
        s = self._s
        dt = x - s.now
        if dt <= 0:
            return
        p = 0
        basal = self._basal
        if basal is not None:
            off = s.clock_offset_ms + s.utc_offset_ms  # self._tod_off, inlined
            c0 = s.now + off
            c1 = x + off
            v = self._basal_integral(basal, c0, c1)  # the next-event search asked it already
            p, s.basal_carry = divmod(s.basal_carry + v, DAY_MS)
        b = s.bolus
        if b is not None:
            due = b.due_at(x)
            p += due - b.delivered_nl
            b.delivered_nl = due
        prof = self._profile
        bat = prof.battery
        if bat is not None and s.battery is not BATTERY_EOS:
            s.battery_used_bu += bat.idle_bu_per_ms * dt + bat.bu_per_nl * p
        if s.alarms:
            # tones repeat at a fixed interval between events: count them, do not tick them
            r = self._sounding()
            if r is not None and r.next_tone_at <= x:
                rep = self._repeat(r.alarm)
                k = (x - r.next_tone_at) // rep + 1
                s.tones_sounded += k
                s.last_tone_at = r.next_tone_at + (k - 1) * rep
                s.last_tone = CATALOGUE[r.alarm].tone
                r.next_tone_at += k * rep
        s.now = x
        if p:
            # A bolus and the basal can each step a nanolitre in the same millisecond: the pump
            # never counts below its empty threshold (the crossing itself is the next event).
            room = s.calc_nl - prof.empty_threshold_nl
            if p > room:
                p = max(0, room)
            s.calc_nl -= p
            s.program_total_nl += p
            if s.mode is MODE_BRIDGE:
                s.bridge_left_nl = max(0, s.bridge_left_nl - p)
            f = s.faults
            if not (f.stalled or f.occluded or f.valve_closed or s.dry):
                pumped, s.true_carry = divmod(p * (PPM + f.error_ppm) + s.true_carry, PPM)
                held = self._restriction_ppm() if f.kink_ppm or f.granuloma_ppm else 0
                if held:  # a partial obstruction: the rest stays in the reservoir
                    pumped, f.restriction_carry = divmod(
                        pumped * (PPM - held) + f.restriction_carry, PPM
                    )
                self._physical(pumped)
        self._next = None

    def _physical(self, pumped: int) -> None:
        """`pumped` nL truly leave the reservoir, push the catheter's contents forward."""
        s = self._s
        room = s.true_nl - self._profile.empty_threshold_nl
        if pumped >= room:
            pumped = max(0, room)
            s.dry = True
        if pumped <= 0:
            return
        s.true_nl -= pumped
        s.pumped_total_nl += pumped
        cath = s.catheter
        leak = s.faults.leak_ppm
        if (
            len(cath) == 1
            and not leak
            and cath[0].volume_nl > 0
            and cath[0].conc_ng_per_ml == s.true_conc_ng_per_ml
            and not self._reference
        ):
            # a catheter full of this very fluid: what enters the tail leaves the tip, the
            # segment is unchanged (the loop below, in one step)
            s.patient_total_nl += pumped
            s.patient_dose_fg += pumped * cath[0].conc_ng_per_ml
            return
        if cath and cath[-1].conc_ng_per_ml == s.true_conc_ng_per_ml:
            cath[-1].volume_nl += pumped
        else:
            cath.append(Segment(pumped, s.true_conc_ng_per_ml))
        out = pumped
        while out:
            head = cath[0]
            take = min(out, head.volume_nl)
            out -= take
            if leak:
                lost, s.leak_carry = divmod(take * leak + s.leak_carry, PPM)
            else:
                lost = 0
            s.patient_total_nl += take - lost
            s.patient_dose_fg += (take - lost) * head.conc_ng_per_ml
            head.volume_nl -= take
            if head.volume_nl == 0:
                cath.pop(0)

    # --- derived quantities ---------------------------------------------------------------------

    def _rate_for(self, dose_ng_per_day: int, conc: int) -> int:
        return dose_ng_per_day * NL_PER_ML // conc

    def _fixed_daily_dose_x1440(self, conc: int) -> int:
        return self._profile.fixed_rate_nl_per_day * conc * MINUTES_PER_DAY // NL_PER_ML

    def _daily_dose_x1440(self) -> int:
        """The basal program's daily dose, times 1440 (exact for schedules)."""
        s = self._s
        if s.mode is MODE_STOPPED:
            return 0
        if self._profile.fixed_rate_nl_per_day:
            return self._fixed_daily_dose_x1440(s.conc_ng_per_ml)
        if s.mode is MODE_SCHEDULE:
            last = self._last_x1440
            # lists are replaced, never changed in place (this one is held: no id reuse)
            if last is not None and last[0] is s.steps:
                return last[1]
            total = _schedule_x1440(s.steps)
            self._last_x1440 = (s.steps, total)
            return total
        return s.dose_ng_per_day * MINUTES_PER_DAY

    def _daily_volume_nl(self) -> int:
        return 0 if self._basal is None else self._basal.day_total // DAY_MS

    def _predict(self, threshold: int) -> int | None:
        """Model time at which the calculated volume reaches `threshold`, integrating the
        running bolus, the bridge, the schedule and, if patient boluses are enabled, every
        allotted bolus taken (spread evenly: domain.md 2.7). None: never, as programmed."""
        s = self._s
        if s.drug is DRUG_NONE:
            return None
        need = s.calc_nl - threshold
        if need <= 0:
            return s.now
        if self._basal is None and s.bolus is None and not s.patient.enabled:
            return None
        p = s.patient
        extra = 0
        if p.enabled and s.conc_ng_per_ml:
            extra = p.max_per_24h * (p.dose_ng * NL_PER_ML // s.conc_ng_per_ml)
        off = s.clock_offset_ms + s.utc_offset_ms  # self._tod_off, inlined
        t = s.now
        acc = s.basal_carry  # nL*ms/day
        basal = self._basal
        b = s.bolus
        if b is not None:
            left = b.volume_nl - b.delivered_nl
            end = b.end_ms
            to_end = extra * (end - t)
            if basal is not None:
                to_end += self._basal_integral(basal, t + off, end + off)
            if (acc + to_end) // DAY_MS + left >= need:
                lo, hi = t, end
                while lo < hi:
                    mid = (lo + hi) // 2
                    v = (
                        (
                            acc
                            + (basal.integral(t + off, mid + off) if basal else 0)
                            + extra * (mid - t)
                        )
                        // DAY_MS
                        + b.due_at(mid)
                        - b.delivered_nl
                    )
                    if v >= need:
                        hi = mid
                    else:
                        lo = mid + 1
                return lo
            acc += to_end + left * DAY_MS
            t = end
            if b.kind is BOLUS_PRIMING and s.mode is not MODE_STOPPED and not s.suspended:
                basal = self._program_profile()
            elif b.kind is BOLUS_SINGLE:
                basal = None
        if s.mode is MODE_BRIDGE and basal is not None and s.bridge_left_nl > 0:
            rate = s.bridge_rate_nl_per_day + extra
            end = t + -(-s.bridge_left_nl * DAY_MS // rate)
            got = acc + rate * (end - t)
            if got >= need * DAY_MS:
                return t + -(-(need * DAY_MS - acc) // rate)
            acc = got
            t = end
            basal = self._constant(s.rate_nl_per_day) if not s.safe_mode else basal
        if basal is None and not extra:
            return None
        steady = basal if basal is not None else self._constant(0)
        if extra:
            steady = self._plus(steady, extra)
        c = steady.reach(t + off, need * DAY_MS - acc)
        return None if c is None else c - off

    def _program_profile(self) -> RateProfile | None:
        """The basal profile the program will run once a priming bolus ends."""
        s = self._s
        if self._halted():
            return None
        if s.safe_mode:
            return self._constant(self._profile.safe_rate_nl_per_day)
        if s.mode is MODE_SCHEDULE:
            return self._schedule_profile()
        if s.mode is MODE_BRIDGE:
            return self._constant(s.bridge_rate_nl_per_day)
        return self._constant(s.rate_nl_per_day)


def _schedule_x1440(steps: Iterable[tuple[int, int]]) -> int:
    return _schedule_total(tuple(steps))


@functools.lru_cache(maxsize=64)
def _schedule_total(plan: tuple[tuple[int, int], ...]) -> int:
    total = 0
    for i, (m, dose) in enumerate(plan):
        end = plan[i + 1][0] if i + 1 < len(plan) else MINUTES_PER_DAY
        total += dose * (end - m)
    return total
