"""Stateful test of firmware_model: random commands, faults and time against a small, independent
reference of the program volume, with invariants checked after every step.

The reference (`Reference`, tests/model_reference.py) integrates what the pump is *programmed*
to deliver, from the commands the model accepted: the basal rate (continuous: dose * 10^6 //
concentration nL/day; schedule: each step's rate by the time of day of the pump clock)
integrated exactly in nL*ms/day with one remainder carried since power-on, plus every bolus (V =
dose * 10^6 // concentration over D, floor(V * elapsed / D) delivered, exactly V at its end).
Delivery stops when the calculated reservoir reaches the empty threshold, never counting below
it (the EMPTY_RESERVOIR alarm, which also cancels a running bolus), and starts again at a
refill. It shares no code with the model.

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

import json

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

import firmware_model as fm
from firmware_model import (
    DAY_MS,
    NL_PER_ML,
    YEAR_MS,
    Alarm,
    BolusKind,
    ConcentrationUnit,
    Drug,
    FaultKind,
    Mode,
    Pump,
    Reason,
    Rejected,
)

from .model_machine import PumpMachineBase
from .model_reference import PatientSettings, Reference
from .model_strategies import (
    ALARMS,
    CLEARABLE,
    DRUGS,
    LIBRARY,
    MAX_RUN_MS,
    MAX_STEP_MS,
    NEVER,
    PROFILE_CHOICES,
    bolus_doses,
    bolus_durations,
    daily_doses,
    durations,
    schedules,
    volumes,
)

# --- the rules (the machine's state and invariants: tests/model_machine.py) ---------------------


class PumpMachine(PumpMachineBase):
    """The commands, faults and time steps the pump is driven by."""

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


TestPumpModelStateful = PumpMachine.TestCase
# Inherits the active Hypothesis profile (deadline, derandomize under "ci"); sized to ~30 s.
TestPumpModelStateful.settings = settings(max_examples=650, stateful_step_count=50)


@pytest.mark.slow
def test_pump_model_stateful_large() -> None:
    run_state_machine_as_test(
        PumpMachine, settings=settings(max_examples=1_500, stateful_step_count=150)
    )
