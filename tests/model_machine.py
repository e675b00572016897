"""The frame of the stateful test of firmware_model (tests/test_model_stateful.py): the machine's
state, how a command runs on the pump and its twin (a refusal must change nothing but one log
record), how time passes, and the invariants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
)

import firmware_model as fm
from firmware_model import (
    DAY_MS,
    PPM,
    BatteryState,
    BolusKind,
    EventKind,
    FaultKind,
    Pump,
    Rejected,
)

from .model_reference import Reference

T = TypeVar("T")


# --- the machine ------------------------------------------------------------------------------


class PumpMachineBase(RuleBasedStateMachine):
    """One pump (plus, after a snapshot, its original as a twin) and the reference: how a
    command and time are applied to both, and the invariants checked after every step. The
    rules (commands, faults, time) are in tests/test_model_stateful.py."""

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

    def _expected_faults(self) -> set[FaultKind]:
        flags = {
            FaultKind.MOTOR_STALL: self.stalled_until is not None,
            FaultKind.CATHETER_OCCLUSION: self.occluded,
            FaultKind.CATHETER_LEAK: self.leak,
            FaultKind.POCKET_FILL: self.pocket_fill,
            FaultKind.DELIVERY_INACCURACY: self.accuracy_changed,
        }
        return {kind for kind, on in flags.items() if on}

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
