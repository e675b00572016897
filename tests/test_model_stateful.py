"""Stateful test of firmware_model: random commands, faults and time against a small, independent
reference of the program volume, with invariants checked after every step.

The reference (`Reference` below) integrates what the pump is *programmed* to deliver, from the
commands the model accepted: the basal rate (continuous: dose * 10^6 // concentration nL/day;
schedule: each step's rate by the time of day of the pump clock) integrated exactly in
nL*ms/day with one remainder carried since power-on, plus every bolus (V = dose * 10^6 //
concentration over D, floor(V * elapsed / D) delivered, exactly V at its end). Delivery stops
when the calculated reservoir reaches the empty threshold, never counting below it (the
EMPTY_RESERVOIR alarm, which also cancels a running bolus), and starts again at a refill. It
shares no code with the model.

Excluded, so that the reference stays exact and small:
- battery: the run is kept far from the elective replacement indicator (at most a few years of
  model time; an invariant checks the battery is still OK), so end of service never stops it;
- the faults that change the program itself (low-battery reset's safe rate, critical memory
  error, MRI, premature ERI/EOS) and the commands not listed in the brief (bridge, priming bolus,
  set_drug, set_clock, alarm settings): not generated;
- the constant-flow profile (it takes almost none of these commands): not generated.
What the reference *does* follow: a motor stall cancels a running bolus (a critical alarm) but
not the program volume; suspend cancels a running bolus; a new program ends a suspension; a drug
or concentration change at refill stops the program and disables the patient bolus; a clinician
"then stop" bolus puts the pump in stopped mode when it completes.

Besides the reference, every step checks: reservoirs never negative; patient boluses (from the
event log) never inside the lockout nor over the cap in any sliding 24 h; a refused command
changes nothing but one log record of the right kind and reason (snapshots before and after);
event seqs contiguous; the faults reported are those injected; the true volume is conserved;
the predicted empty and low-reservoir dates. After a snapshot is restored the run continues on
the restored pump while the original is driven alike: both must log byte for byte alike.

Runs in about 30 s; `--run-slow` adds a larger variant.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import firmware_model as fm
from firmware_model import (
    DAY_MS,
    MS_PER_MIN,
    NL_PER_ML,
    PPM,
    YEAR_MS,
    Alarm,
    BatteryState,
    BolusKind,
    ConcentrationUnit,
    Drug,
    EventKind,
    FaultKind,
    Mode,
    ProfileId,
    Pump,
    Reason,
    Rejected,
)

T = TypeVar("T")

MG, MCG = ConcentrationUnit.MG_PER_ML, ConcentrationUnit.MCG_PER_ML
MAX_RUN_MS = 3 * YEAR_MS  # far from any battery indicator, whatever is pumped (see above)
MAX_STEP_MS = 20 * DAY_MS
NEVER = 1 << 62

# (drug, ng/mL, unit): usable ones, and three the library refuses
DRUGS = [
    (Drug.MORPHINE, 10_000_000, MG),
    (Drug.MORPHINE, 1_000_000, MG),
    (Drug.MORPHINE, 25_000_000, MG),
    (Drug.HYDROMORPHONE, 2_000_000, MG),
    (Drug.BACLOFEN, 500_000, MCG),  # no patient bolus allowed
    (Drug.SALINE, 9_000_000, MG),  # no dose limits: the fastest rates
    (Drug.MORPHINE, 30_000_000, MG),  # above the library's maximum concentration
    (Drug.NONE, 1_000_000, MG),  # not a drug
    (Drug.FENTANYL, 500_000, MCG),  # not in this clinic's library
]
# A short event log (trimmed in batches past 64 records) exercises trimming under the log
# invariants; nothing else in the model reads the log. One profile keeps the stock log.
_SHORT_LOG = 64
PROFILE_CHOICES = {
    "SynchroMed II 20 mL": fm.PROFILES[ProfileId.SYNCHROMED_II_20].with_(
        event_log_capacity=_SHORT_LOG
    ),
    "Prometra II 20 mL": fm.PROFILES[ProfileId.PROMETRA_II_20].with_(event_log_capacity=_SHORT_LOG),
    "SynchroMed II 40 mL, stock": fm.PROFILES[ProfileId.SYNCHROMED_II_40],
    "empty at 1 mL": fm.PROFILES[ProfileId.SYNCHROMED_II_20].with_(
        empty_threshold_nl=NL_PER_ML, event_log_capacity=_SHORT_LOG
    ),
}
# The clinic's library: only the drugs used here.
LIBRARY = {
    d: fm.DEFAULT_LIBRARY[d]
    for d in (Drug.MORPHINE, Drug.HYDROMORPHONE, Drug.BACLOFEN, Drug.SALINE)
}
ALARMS = [
    Alarm.LOW_RESERVOIR,
    Alarm.EMPTY_RESERVOIR,
    Alarm.MOTOR_STALL,
    Alarm.PUMP_STOPPED,
    Alarm.CRITICAL_MEMORY_ERROR,  # never raised here: a mask that hits nothing
]
CLEARABLE = [
    FaultKind.MOTOR_STALL,
    FaultKind.CATHETER_OCCLUSION,
    FaultKind.DELIVERY_INACCURACY,
    FaultKind.POCKET_FILL,
    FaultKind.CATHETER_LEAK,
    FaultKind.PREMATURE_ERI,  # never active here: always refused
]

# --- strategies -------------------------------------------------------------------------------

durations = st.one_of(
    st.integers(0, 2_000),  # milliseconds
    st.integers(0, 6 * 3_600_000),  # hours
    st.integers(0, MAX_STEP_MS),  # days
)
daily_doses = st.one_of(st.integers(1, 30_000_000), st.integers(-1, 250_000_000))
step_doses = st.one_of(st.just(0), st.integers(500_000, 20_000_000), st.integers(-1, 250_000_000))
bolus_doses = st.one_of(st.integers(1, 3_000_000), st.integers(-1, 40_000_000))
bolus_durations = st.one_of(
    st.sampled_from([60_000, 600_000, 3_600_000]), st.integers(59_999, 2 * 3_600_000)
)
volumes = st.one_of(
    st.integers(NL_PER_ML, 20 * NL_PER_ML),  # a refill
    st.integers(1, 3 * NL_PER_ML),  # a few doses' worth: runs dry soon
    st.integers(-1, 41 * NL_PER_ML),  # anything, some refused
)


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[int, int]]:
    raw = draw(st.lists(st.tuples(st.integers(0, 1_439), step_doses), min_size=1, max_size=25))
    if draw(st.integers(0, 3)):  # mostly well formed: sorted, unique, the first at minute 0
        by_start = dict(raw)
        by_start.setdefault(0, raw[0][1])
        raw = sorted(by_start.items())
    return raw


# --- the reference ----------------------------------------------------------------------------


@dataclass
class RefBolus:
    kind: BolusKind
    start: int  # model time
    volume: int
    duration: int

    @property
    def end(self) -> int:
        return self.start + self.duration

    def due(self, t: int) -> int:
        if t >= self.end:
            return self.volume
        return self.volume * (t - self.start) // self.duration


@dataclass
class PatientSettings:
    enabled: bool = False
    dose: int = 0
    duration: int = 600_000
    lockout: int = 3_600_000
    max_per_24h: int = 0


class Reference:
    """What the pump must have delivered, by its own count (program volume)."""

    def __init__(self, now: int, offset: int, empty_nl: int, low_nl: int) -> None:
        self.now = now
        self.offset = offset  # pump clock - model time
        self.empty_nl = empty_nl
        self.low_nl = low_nl
        self.drug = Drug.NONE
        self.conc = 0
        self.mode = Mode.STOPPED
        self.steps: list[tuple[int, int]] = []  # (ms of day, nL/day); continuous: one step
        self.suspended = False
        self.bolus: RefBolus | None = None
        self.basal_integral = 0  # nL*ms/day since power-on (one carry, never reset)
        self.bolus_total = 0  # nL of finished boluses
        # A bolus and the basal can each step a nanolitre in the same millisecond; the pump
        # never counts below its empty threshold, so what would overshoot it is not delivered.
        self.clamped = 0
        self.filled = 0  # calculated volume right after the last refill
        self.total_at_refill = 0
        self.patient = PatientSettings()
        self.patient_starts: list[int] = []  # model times

    # -- the basal rate function

    def _cumulative(self, clock: int) -> int:
        """Integral of the daily rate function from clock 0 to `clock`, nL*ms/day."""
        days, ms = divmod(clock, DAY_MS)
        day_total = part = 0
        for i, (start, rate) in enumerate(self.steps):
            end = self.steps[i + 1][0] if i + 1 < len(self.steps) else DAY_MS
            day_total += rate * (end - start)
            part += rate * max(0, min(end, ms) - start)
        return days * day_total + part

    def _integral(self, t0: int, t1: int) -> int:
        return self._cumulative(t1 + self.offset) - self._cumulative(t0 + self.offset)

    def basal_rate(self) -> int:
        if not self.basal_on():
            return 0
        ms = (self.now + self.offset) % DAY_MS
        return [rate for start, rate in self.steps if start <= ms][-1]

    def daily_volume(self) -> int:
        if not self.basal_on():
            return 0
        return self._cumulative(DAY_MS) // DAY_MS

    def basal_on(self) -> bool:
        return (
            self.drug is not Drug.NONE
            and self.mode is not Mode.STOPPED
            and not self.suspended
            and self.calc() > self.empty_nl
        )

    # -- volumes

    def _total_at(self, x: int, basal: bool) -> int:
        acc = self.basal_integral + (self._integral(self.now, x) if basal else 0)
        due = self.bolus.due(x) if self.bolus is not None else 0
        return acc // DAY_MS + self.bolus_total + due - self.clamped

    def basal_volume(self, t: int) -> int:
        """Basal volume from now to model time t if nothing changes (0 if the basal is off)."""
        if not self.basal_on():
            return 0
        acc = self.basal_integral
        return (acc + self._integral(self.now, t)) // DAY_MS - acc // DAY_MS

    def total(self) -> int:
        return self._total_at(self.now, False)

    def calc(self) -> int:
        return self.filled - (self.total() - self.total_at_refill)

    def _calc_at(self, x: int, basal: bool) -> int:
        return self.filled - (self._total_at(x, basal) - self.total_at_refill)

    # -- time

    def advance(self, t1: int, watch: int | None = None) -> int | None:
        """Integrate up to t1; with `watch`, stop at the first time the calculated volume is at
        or below it and return that time (None if not reached by t1)."""
        assert t1 >= self.now
        while True:
            if watch is not None and self.calc() <= watch:
                return self.now
            if self.now >= t1:
                return None
            basal = self.basal_on()
            if not basal and self.bolus is None:  # nothing flows until a command
                self.now = t1
                continue
            end = t1 if self.bolus is None else min(t1, self.bolus.end)
            target = self.empty_nl if watch is None else max(watch, self.empty_nl)
            x = end
            if self._calc_at(end, basal) <= target:
                lo, hi = self.now + 1, end
                while lo < hi:
                    mid = (lo + hi) // 2
                    if self._calc_at(mid, basal) <= target:
                        hi = mid
                    else:
                        lo = mid + 1
                x = lo
            if basal:
                self.basal_integral += self._integral(self.now, x)
            self.now = x
            if self.drug is not Drug.NONE and self.calc() < self.empty_nl:
                self.clamped += self.empty_nl - self.calc()
            b = self.bolus
            if b is not None and x >= b.end:  # completes (before an empty reservoir stops it)
                self._finish_bolus(x)
                if b.kind is BolusKind.CLINICIAN_SINGLE:
                    self.mode = Mode.STOPPED
                    self.steps = []
            if self.calc() <= self.empty_nl and self.bolus is not None:
                self._finish_bolus(x)  # EMPTY_RESERVOIR (critical) cancels it

    def predict(self, threshold: int) -> int | None:
        """Model time the calculated volume reaches `threshold` if nothing else happens."""
        if self.drug is Drug.NONE:
            return None
        return copy.deepcopy(self).advance(self.now + (1 << 50), watch=threshold)

    # -- commands the model accepted

    def _finish_bolus(self, t: int) -> None:
        assert self.bolus is not None
        self.bolus_total += self.bolus.due(t)
        self.bolus = None

    def cancel_bolus(self) -> None:
        if self.bolus is not None:
            self._finish_bolus(self.now)

    def volume_of(self, dose_ng: int) -> int:
        return dose_ng * NL_PER_ML // self.conc

    def program(self, mode: Mode, steps: list[tuple[int, int]]) -> None:
        self.mode = mode
        self.steps = [(m * MS_PER_MIN, self.volume_of(d)) for m, d in steps]
        self.suspended = False
        if self.bolus is not None and self.bolus.kind is BolusKind.CLINICIAN_SINGLE:
            self.bolus.kind = BolusKind.CLINICIAN  # the newer program wins over "then stop"

    def start_bolus(self, kind: BolusKind, dose_ng: int, duration: int) -> None:
        assert self.bolus is None
        self.bolus = RefBolus(kind, self.now, self.volume_of(dose_ng), duration)
        if kind is BolusKind.PATIENT:
            self.patient_starts.append(self.now)

    def refill(self, added: int, drug: Drug, conc: int, low: int | None) -> None:
        assert self.bolus is None
        self.total_at_refill = self.total()
        self.filled = added
        if low is not None:
            self.low_nl = low
        if (drug, conc) != (self.drug, self.conc):
            self.drug, self.conc = drug, conc
            self.mode = Mode.STOPPED
            self.steps = []
            self.patient.enabled = False


# --- the machine ------------------------------------------------------------------------------


class PumpMachine(RuleBasedStateMachine):
    """One pump (plus, after a snapshot, its original as a twin) and the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.pump: Pump
        self.twin: Pump | None = None  # the pump a snapshot was taken from, driven alike
        self.ref: Reference
        self.start = 0
        self.seen_seq = 0
        self.patient_log: list[int] = []  # pump clock of every patient BOLUS_STARTED
        self.conserved = 0  # true reservoir + pumped total: changes only at a refill
        # the faults injected and not yet cleared, as this test expects them
        self.stalled_until: int | None = None  # model time; NEVER: until cleared
        self.occluded = False
        self.leak = False
        self.pocket_fill = False
        self.accuracy_changed = False

    # -- plumbing

    def _do(self, op: Callable[[Pump], T], *, patient_request: bool = False) -> T | Rejected:
        """Runs a command on the pump (and its twin). A refusal must leave one log record and
        change nothing else."""
        before = fm.snapshot(self.pump)
        result: T | Rejected
        try:
            result = op(self.pump)
        except Rejected as exc:
            self._check_refusal(before, exc, patient_request)
            result = exc
        if self.twin is not None:
            other: T | Rejected
            try:
                other = op(self.twin)
            except Rejected as exc:
                other = exc
            if isinstance(result, Rejected):
                assert isinstance(other, Rejected)
                assert (other.reason, other.command) == (result.reason, result.command)
            else:
                assert other == result
            assert self.twin.log_digest() == self.pump.log_digest()
        return result

    def _check_refusal(self, before: dict[str, Any], exc: Rejected, denied: bool) -> None:
        after = fm.snapshot(self.pump)
        sb, sa = dict(before["state"]), dict(after["state"])
        ev_before, ev_after = sb.pop("events"), sa.pop("events")
        seq_before, seq_after = sb.pop("next_seq"), sa.pop("next_seq")
        assert sa == sb, f"a refused command ({exc}) changed the state"
        assert {k: v for k, v in after.items() if k != "state"} == {
            k: v for k, v in before.items() if k != "state"
        }
        assert seq_after == seq_before + 1
        kept = len(ev_after) - 1
        assert ev_after[:-1] == ev_before[len(ev_before) - kept :]
        new = ev_after[-1]
        assert new["seq"] == seq_before
        assert new["time_ms"] == self.pump.clock_ms
        assert new["a"] == int(exc.reason)
        if denied:
            assert new["kind"] == EventKind.BOLUS_DENIED
        else:
            assert new["kind"] == EventKind.COMMAND_REJECTED
            assert exc.command is not None
            assert new["b"] == int(exc.command)

    def _advance(self, t: int) -> int:
        """Time passes on the pump, its twin and the reference; returns internal events."""
        before = self.pump.status()
        blocked = self.occluded or (self.stalled_until is not None and self.stalled_until >= t)
        n = self.pump.advance_to(t)
        if blocked:  # nothing can leave the reservoir
            assert self.pump.status().pumped_total_nl == before.pumped_total_nl
        if self.stalled_until is not None and self.stalled_until <= t:
            self.stalled_until = None  # recovered by itself
        if self.twin is not None:
            assert self.twin.advance_to(t) == n
            assert self.twin.log_digest() == self.pump.log_digest()
        self.ref.advance(t)
        # also inside the rules that do several things (the invariants run after each rule)
        self.reservoir_never_negative()
        self.delivered_total_matches_the_reference()
        self.true_volume_is_conserved()
        self.faults_are_those_injected()
        self.event_log_is_contiguous_and_patient_boluses_respect_lockout_and_cap()
        return n

    # -- setup

    @initialize(
        profile_name=st.sampled_from(list(PROFILE_CHOICES)),
        now=st.integers(0, 10 * YEAR_MS),
        clock_shift=st.integers(-DAY_MS, 100 * YEAR_MS),
        phase=st.sampled_from(["programmed", "programmed", "filled", "empty", "self test"]),
        drug=st.sampled_from(DRUGS[:6]),
        added=st.one_of(st.integers(NL_PER_ML, 40 * NL_PER_ML), volumes),
        permille=st.integers(1, 1_000),
        patient=st.one_of(
            st.none(),
            st.tuples(
                st.integers(1_000, 200_000),
                bolus_durations,
                st.integers(0, 7_200_000),
                st.integers(1, 6),
            ),
        ),
    )
    def create(
        self,
        profile_name: str,
        now: int,
        clock_shift: int,
        phase: str,
        drug: tuple[Drug, int, ConcentrationUnit],
        added: int,
        permille: int,
        patient: tuple[int, int, int, int] | None,
    ) -> None:
        """A new pump, inside its power-on self test or past it, optionally filled, running a
        continuous dose, with patient boluses (dose, duration, lockout - duration, max per 24 h)
        allowed."""
        profile = PROFILE_CHOICES[profile_name]
        clock = max(0, now + clock_shift)
        self.pump = Pump.create(profile, serial=4242, now_ms=now, clock_ms=clock, library=LIBRARY)
        self.start = now
        self.ref = Reference(
            now, clock - now, profile.empty_threshold_nl, profile.default_low_threshold_nl
        )
        s = self.pump.status()
        self.conserved = s.true_reservoir_nl + s.pumped_total_nl
        if phase == "self test":
            return
        self._advance(now + profile.post_ms)
        if phase == "empty":
            return
        if patient is not None and not LIBRARY[drug[0]].patient_bolus_allowed:
            drug = DRUGS[0]
        self._refill(0, max(1, min(added, profile.reservoir_nl)), drug, None)
        if phase == "programmed":
            if patient is not None:
                self.set_patient_bolus(True, *patient, confirm=True)
            self.set_fast_continuous_dose(permille)

    # -- time

    @precondition(lambda self: self.pump.now - self.start < MAX_RUN_MS)
    @rule(dt=durations)
    def advance(self, dt: int) -> None:
        self._advance(self.pump.now + dt)

    @precondition(lambda self: self.pump.now - self.start < MAX_RUN_MS)
    @rule()
    def advance_to_next_event(self) -> None:
        """Exactly to next_event_time(): nothing may happen before it."""
        now = self.pump.now
        t = self.pump.next_event_time()
        if t is None or t > now + MAX_STEP_MS:
            self._advance(now + MAX_STEP_MS)
            return
        assert t >= now
        if t > now:
            assert self._advance(t - 1) == 0, "an internal event before next_event_time()"
        self._advance(t)

    @precondition(lambda self: self.pump.now - self.start < MAX_RUN_MS)
    @rule(which=st.sampled_from(["empty", "low"]), delta=st.integers(-1, 1))
    def advance_to_prediction(self, which: str, delta: int) -> None:
        """To the predicted empty (or low-reservoir) time, a millisecond either side."""
        s = self.pump.status()
        at = s.empty_at_ms if which == "empty" else s.low_reservoir_at_ms
        if at is None:
            return
        t = at - self.ref.offset + delta
        if self.pump.now <= t <= self.pump.now + MAX_STEP_MS:
            self._advance(t)

    @precondition(lambda self: self.ref.patient_starts)
    @rule(which=st.sampled_from(["lockout", "24 h"]), delta=st.integers(-1, 1))
    def advance_to_patient_limit(self, which: str, delta: int) -> None:
        """To the end of the lockout (or of the oldest bolus's 24 h), a millisecond either side."""
        ref = self.ref
        if which == "lockout":
            t = ref.patient_starts[-1] + ref.patient.lockout
        else:
            window = [t for t in ref.patient_starts if t > ref.now - DAY_MS]
            if not window:
                return
            t = min(window) + DAY_MS
        t += delta
        if ref.now <= t <= ref.now + MAX_STEP_MS:
            self._advance(t)

    # -- programming

    @rule(dose=daily_doses, confirm=st.booleans())
    def set_continuous_dose(self, dose: int, confirm: bool) -> None:
        r = self._do(lambda p: p.set_continuous_dose(dose, confirm_soft_limit=confirm))
        if not isinstance(r, Rejected):
            self.ref.program(Mode.CONTINUOUS, [(0, dose)])

    @precondition(lambda self: self.ref.drug is not Drug.NONE)
    @rule(permille=st.integers(1, 1_000))
    def set_fast_continuous_dose(self, permille: int) -> None:
        """`permille` of the pump's maximum rate or of the drug's soft limit, whichever is
        lower (room left for boluses under the sliding 24 h limit)."""
        top = self.pump.profile.max_rate_nl_per_day * self.ref.conc // NL_PER_ML
        soft = LIBRARY[self.ref.drug].soft_limit_ng_per_day
        self.set_continuous_dose((min(top, soft) if soft else top) * permille // 1_000, True)

    @rule(steps=schedules(), confirm=st.booleans())
    def set_schedule(self, steps: list[tuple[int, int]], confirm: bool) -> None:
        r = self._do(lambda p: p.set_schedule(steps, confirm_soft_limit=confirm))
        if not isinstance(r, Rejected):
            self.ref.program(Mode.SCHEDULE, steps)

    @rule(
        dose=bolus_doses, duration=bolus_durations, then_stop=st.booleans(), confirm=st.booleans()
    )
    def start_clinician_bolus(
        self, dose: int, duration: int, then_stop: bool, confirm: bool
    ) -> None:
        r = self._do(
            lambda p: p.start_clinician_bolus(
                dose, duration, then_stop=then_stop, confirm_soft_limit=confirm
            )
        )
        if not isinstance(r, Rejected):
            kind = BolusKind.CLINICIAN_SINGLE if then_stop else BolusKind.CLINICIAN
            self.ref.start_bolus(kind, dose, duration)

    @precondition(lambda self: self.ref.drug is not Drug.NONE and self.ref.bolus is None)
    @rule(
        refill=st.one_of(st.none(), st.integers(1, 3 * NL_PER_ML)),
        basal=st.one_of(st.none(), st.integers(1, 1_000)),
        duration=st.integers(60_000, 12 * 3_600_000),
        dry_at=st.integers(0, 1_000),
        fast=st.booleans(),
        then_stop=st.booleans(),
        wait=st.booleans(),
        again=st.integers(0, 3),
    )
    def bolus_runs_dry(
        self,
        refill: int | None,
        basal: int | None,
        duration: int,
        dry_at: int,
        fast: bool,
        then_stop: bool,
        wait: bool,
        again: int,
    ) -> None:
        """Optionally a refill of `refill` nL of the same drug and a new basal (`basal` per
        mille of the highest dose, see set_fast_continuous_dose); then a clinician bolus sized
        so that, with the basal, the reservoir runs dry `dry_at` per mille of the way through
        it (`fast`: pushed at the pump's maximum rate); `wait`: then past its end; `again`:
        that many more times (refilling as needed). Delivery must stop at the empty threshold,
        to the nanolitre."""
        ref = self.ref
        for i in range(again + 1):
            if i and (ref.bolus is not None or (refill is None and ref.calc() <= ref.empty_nl)):
                return
            self._run_dry(refill, basal, duration, dry_at, fast, then_stop, wait)

    def _run_dry(
        self,
        refill: int | None,
        basal: int | None,
        duration: int,
        dry_at: int,
        fast: bool,
        then_stop: bool,
        wait: bool,
    ) -> None:
        ref = self.ref
        if refill is not None:
            unit = self.pump.status().conc_unit
            self._refill(0, refill + ref.empty_nl, (ref.drug, ref.conc, unit), None)
        if basal is not None:
            self.set_fast_continuous_dose(basal)
        if not ref.basal_on():
            return
        available = ref.calc() - ref.empty_nl
        top = self.pump.profile.max_rate_nl_per_day
        volume = available
        for _ in range(3):  # fast: the duration follows the volume, which follows the duration
            if fast:
                duration = max(60_000, -(-volume * DAY_MS // top))
            volume = available - ref.basal_volume(ref.now + duration * dry_at // 1_000)
            volume = volume if volume > 0 else available
        dose = -(-volume * ref.conc // NL_PER_ML)  # the smallest dose giving >= volume
        if ref.volume_of(dose) > volume:
            dose -= 1
        duration = max(duration, -(-ref.volume_of(dose) * DAY_MS // top))
        self.start_clinician_bolus(dose, duration, then_stop, True)
        if wait:
            self._advance(ref.now + duration + 1)

    @rule()
    def cancel_bolus(self) -> None:
        had = self.ref.bolus is not None
        r = self._do(lambda p: p.cancel_bolus())
        assert isinstance(r, Rejected) == (not had)
        self.ref.cancel_bolus()

    @rule(
        enabled=st.booleans(),
        dose=st.one_of(st.integers(1, 1_000_000), st.integers(-1, 40_000_000)),
        duration=bolus_durations,
        lockout_extra=st.one_of(st.just(0), st.integers(0, 2 * 3_600_000), st.integers(-1, DAY_MS)),
        max_per_24h=st.integers(0, 49),
        confirm=st.booleans(),
    )
    def set_patient_bolus(
        self,
        enabled: bool,
        dose: int,
        duration: int,
        lockout_extra: int,
        max_per_24h: int,
        confirm: bool,
    ) -> None:
        """Lockout (start to start) = duration + lockout_extra: mostly valid settings."""
        lockout = duration + lockout_extra
        r = self._do(
            lambda p: p.set_patient_bolus(
                enabled=enabled,
                dose_ng=dose,
                duration_ms=duration,
                lockout_ms=lockout,
                max_per_24h=max_per_24h,
                confirm_soft_limit=confirm,
            )
        )
        if not isinstance(r, Rejected):
            self.ref.patient = PatientSettings(enabled, dose, duration, lockout, max_per_24h)

    @rule()
    def request_patient_bolus(self) -> None:
        ref = self.ref
        p = ref.patient
        now = ref.now
        window = [t for t in ref.patient_starts if t > now - DAY_MS]
        r = self._do(lambda pump: pump.request_patient_bolus(), patient_request=True)
        if isinstance(r, Rejected):
            value = self.pump.events()[-1].b
            if r.reason is Reason.BOLUS_LOCKOUT:
                assert ref.patient_starts and now < ref.patient_starts[-1] + p.lockout
                assert value == ref.patient_starts[-1] + p.lockout - now
            elif r.reason is Reason.BOLUS_CAP_REACHED:
                assert len(window) >= p.max_per_24h
                assert value == min(window) + DAY_MS - now
            return
        assert p.enabled
        assert not ref.patient_starts or now >= ref.patient_starts[-1] + p.lockout
        assert len(window) < p.max_per_24h
        off = ref.offset
        assert r.dose_ng == p.dose
        assert r.volume_nl == ref.volume_of(p.dose)
        assert r.ends_at_ms == now + p.duration + off
        assert r.lockout_ends_at_ms == now + p.lockout + off
        assert r.boluses_left == p.max_per_24h - len(window) - 1
        ref.start_bolus(BolusKind.PATIENT, p.dose, p.duration)

    @precondition(lambda self: self.ref.patient.enabled and self.ref.calc() > self.ref.empty_nl)
    @rule(
        gaps=st.lists(
            st.one_of(
                st.tuples(st.just("wait"), st.integers(0, 30 * 3_600_000)),
                st.tuples(st.just("lockout"), st.integers(-1, 1)),
            ),
            min_size=1,
            max_size=10,
        )
    )
    def patient_keeps_pressing(self, gaps: list[tuple[str, int]]) -> None:
        """A patient pressing again and again: after waiting some time, or a millisecond
        either side of the end of the lockout; up to and past the 24 h cap."""
        ref = self.ref
        for how, ms in gaps:
            self.request_patient_bolus()
            if how == "wait":
                self._advance(ref.now + ms)
            elif ref.patient_starts:
                self._advance(max(ref.now, ref.patient_starts[-1] + ref.patient.lockout + ms))

    def _refill(
        self, withdrawn: int, added: int, drug: tuple[Drug, int, ConcentrationUnit], low: int | None
    ) -> None:
        d, conc, unit = drug
        expected = self.ref.calc()
        r = self._do(
            lambda p: p.record_refill(
                withdrawn_nl=withdrawn,
                added_nl=added,
                drug=d,
                conc_ng_per_ml=conc,
                unit=unit,
                low_threshold_nl=low,
            )
        )
        if isinstance(r, Rejected):
            return
        assert r.expected_residual_nl == expected
        assert r.discrepancy_nl == withdrawn - expected
        assert r.reservoir_volume_nl == added
        self.ref.refill(added, d, conc, low)
        self.pocket_fill = False  # it happened at this refill
        s = self.pump.status()
        self.conserved = s.true_reservoir_nl + s.pumped_total_nl

    @rule(
        withdrawn=volumes,
        added=volumes,
        same_drug=st.booleans(),
        drug=st.sampled_from(DRUGS),
        low=st.one_of(st.none(), volumes),
    )
    def record_refill(
        self,
        withdrawn: int,
        added: int,
        same_drug: bool,
        drug: tuple[Drug, int, ConcentrationUnit],
        low: int | None,
    ) -> None:
        """The same drug again (the program keeps running) or any drug (a change stops it)."""
        if same_drug and self.ref.drug is not Drug.NONE:
            drug = (self.ref.drug, self.ref.conc, self.pump.status().conc_unit)
        self._refill(withdrawn, added, drug, low)

    @rule()
    def suspend(self) -> None:
        r = self._do(lambda p: p.suspend())
        if not isinstance(r, Rejected):
            self.ref.cancel_bolus()
            self.ref.suspended = True

    @rule()
    def resume(self) -> None:
        r = self._do(lambda p: p.resume())
        assert isinstance(r, Rejected) == (not self.ref.suspended)
        self.ref.suspended = False

    # -- faults and alarms

    @rule(
        fault=st.one_of(
            st.builds(fm.MotorStall, st.one_of(st.none(), st.integers(-1, 2 * DAY_MS))),
            st.builds(fm.CatheterOcclusion),
            st.builds(fm.DeliveryInaccuracy, st.integers(-600_000, 200_000)),
            st.builds(fm.PocketFill, st.integers(0, 41 * NL_PER_ML)),
            st.builds(fm.CatheterLeak, st.integers(0, 1_000_001)),
        )
    )
    def inject_fault(self, fault: fm.Fault) -> None:
        r = self._do(lambda p: p.inject(fault))
        if isinstance(r, Rejected):
            return
        match fault:
            case fm.MotorStall(recover_after_ms=rec):
                self.stalled_until = NEVER if rec is None else self.ref.now + rec
                self.ref.cancel_bolus()  # a critical alarm cancels the bolus
            case fm.CatheterOcclusion():
                self.occluded = True
            case fm.CatheterLeak():
                self.leak = True
            case fm.PocketFill():
                self.pocket_fill = True
            case fm.DeliveryInaccuracy(error_ppm=err):
                self.accuracy_changed = err != self.pump.profile.accuracy_error_ppm

    @rule(kind=st.sampled_from(CLEARABLE))
    def clear_fault(self, kind: FaultKind) -> None:
        active = kind in self._expected_faults()
        r = self._do(lambda p: p.clear_fault(kind))
        assert isinstance(r, Rejected) == (not active)
        if not active:
            return
        match kind:
            case FaultKind.MOTOR_STALL:
                self.stalled_until = None
            case FaultKind.CATHETER_OCCLUSION:
                self.occluded = False
            case FaultKind.CATHETER_LEAK:
                self.leak = False
            case FaultKind.POCKET_FILL:
                self.pocket_fill = False
            case FaultKind.DELIVERY_INACCURACY:
                self.accuracy_changed = False

    def _expected_faults(self) -> set[FaultKind]:
        flags = {
            FaultKind.MOTOR_STALL: self.stalled_until is not None,
            FaultKind.CATHETER_OCCLUSION: self.occluded,
            FaultKind.CATHETER_LEAK: self.leak,
            FaultKind.POCKET_FILL: self.pocket_fill,
            FaultKind.DELIVERY_INACCURACY: self.accuracy_changed,
        }
        return {kind for kind, on in flags.items() if on}

    @rule(alarms=st.sets(st.sampled_from(ALARMS)))
    def acknowledge_alarms(self, alarms: set[Alarm]) -> None:
        mask = Alarm(0)
        for a in alarms:
            mask |= a
        self._do(lambda p: p.acknowledge_alarms(mask))

    @rule(alarms=st.sets(st.sampled_from(ALARMS)), duration=st.integers(999, DAY_MS + 1))
    def silence_alarms(self, alarms: set[Alarm], duration: int) -> None:
        mask = Alarm(0)
        for a in alarms:
            mask |= a
        self._do(lambda p: p.silence_alarms(mask, duration))

    # -- snapshots

    @rule()
    def snapshot_and_restore(self) -> None:
        """Continue on a restored pump; the original is driven alike and must log alike."""
        data = fm.snapshot(self.pump)
        restored = fm.restore(json.loads(json.dumps(data)))
        assert fm.snapshot(restored) == data
        assert restored.status() == self.pump.status()
        assert restored.next_event_time() == self.pump.next_event_time()
        assert restored.log_digest() == self.pump.log_digest()
        self.twin, self.pump = self.pump, restored

    # -- invariants

    @invariant()
    def reservoir_never_negative(self) -> None:
        s = self.pump.status()
        assert s.reservoir_nl >= 0, s
        assert s.true_reservoir_nl >= 0, s

    @invariant()
    def delivered_total_matches_the_reference(self) -> None:
        s = self.pump.status()
        ref = self.ref
        assert s.now == ref.now
        assert s.battery is BatteryState.OK  # the test's own assumption (see the docstring)
        assert s.program_total_nl == ref.total(), (s.program_total_nl, ref.total())
        assert s.reservoir_nl == ref.calc()
        assert (s.mode, s.suspended) == (ref.mode, ref.suspended)
        assert s.bolus == (BolusKind.NONE if ref.bolus is None else ref.bolus.kind)
        assert s.conc_ng_per_ml == ref.conc
        assert s.basal_rate_nl_per_day == ref.basal_rate()
        b = ref.bolus
        bolus_rate = 0 if b is None else b.volume * DAY_MS // b.duration
        assert s.current_rate_nl_per_day == ref.basal_rate() + bolus_rate
        assert s.daily_volume_nl == ref.daily_volume()
        p = ref.patient
        got = self.pump.patient_bolus
        assert (got.enabled, got.dose_ng, got.duration_ms, got.lockout_ms, got.max_per_24h) == (
            p.enabled,
            p.dose,
            p.duration,
            p.lockout,
            p.max_per_24h,
        )
        in_24h = sum(1 for t in ref.patient_starts if t > ref.now - DAY_MS)
        lock_end = ref.patient_starts[-1] + p.lockout if ref.patient_starts else 0
        assert self.pump.bolus_window() == (in_24h, lock_end if lock_end > ref.now else 0)

    @invariant()
    def predictions_match_the_reference(self) -> None:
        """Empty and low-reservoir dates, while no patient bolus is allotted (the pump then
        assumes every allowed bolus is taken)."""
        if self.ref.patient.enabled:
            return
        s = self.pump.status()
        off = self.ref.offset
        for got, thr in (
            (s.empty_at_ms, self.ref.empty_nl),
            (s.low_reservoir_at_ms, self.ref.low_nl),
        ):
            want = self.ref.predict(thr)
            assert got == (None if want is None else want + off), (got, want, thr)

    @invariant()
    def faults_are_those_injected(self) -> None:
        assert self.pump.status().faults == self._expected_faults()

    @invariant()
    def true_volume_is_conserved(self) -> None:
        s = self.pump.status()
        assert s.true_reservoir_nl + s.pumped_total_nl == self.conserved
        assert 0 <= s.patient_total_nl <= s.pumped_total_nl
        # the largest delivery error is +14.5 % (the over-infusion hazard bound)
        assert s.pumped_total_nl * PPM <= s.program_total_nl * (PPM + 145_000)

    @invariant()
    def event_log_is_contiguous_and_patient_boluses_respect_lockout_and_cap(self) -> None:
        pump = self.pump
        kept = [e.seq for e in pump.events()]
        assert kept == list(range(pump.oldest_seq, pump.event_seq + 1))
        new = pump.events(self.seen_seq + 1)
        assert [e.seq for e in new] == list(range(self.seen_seq + 1, pump.event_seq + 1))
        self.seen_seq = pump.event_seq
        p = self.ref.patient
        for e in new:
            if e.kind is not EventKind.BOLUS_STARTED or e.a != BolusKind.PATIENT:
                continue
            if self.patient_log:
                assert e.time_ms - self.patient_log[-1] >= p.lockout, "inside the lockout"
            in_24h = [t for t in self.patient_log if t > e.time_ms - DAY_MS]
            assert len(in_24h) + 1 <= p.max_per_24h, "over the 24 h cap"
            self.patient_log.append(e.time_ms)

    def teardown(self) -> None:
        if self.twin is not None:
            assert fm.snapshot(self.twin) == fm.snapshot(self.pump)


TestPumpModelStateful = PumpMachine.TestCase
# Inherits the active Hypothesis profile (deadline, derandomize under "ci"); sized to ~30 s.
TestPumpModelStateful.settings = settings(max_examples=650, stateful_step_count=50)


@pytest.mark.slow
def test_pump_model_stateful_large() -> None:
    run_state_machine_as_test(
        PumpMachine, settings=settings(max_examples=1_500, stateful_step_count=150)
    )
