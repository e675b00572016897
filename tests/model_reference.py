"""The independent reference of tests/test_model_stateful.py: what the pump must have delivered by
its own count (the program volume), integrated exactly from the commands the model accepted.
It shares no code with the model (the stateful test's docstring says what it follows)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from firmware_model import (
    DAY_MS,
    MS_PER_MIN,
    NL_PER_ML,
    BolusKind,
    Drug,
    Mode,
)

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
