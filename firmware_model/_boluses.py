"""Boluses: clinician (on top of the program, or then stop), priming (basal paused, maximum
rate), cancel, and the patient-activated bolus with its settings, lockout, 24 h cap and the
sliding-24 h dose window; starting and ending a bolus run.
"""

from __future__ import annotations

from ._alarms import CATALOGUE
from ._command import Cmd, CommandMixin
from ._members import (
    BOLUS_PATIENT,
    BOLUS_PRIMING,
    BOLUS_SINGLE,
    CAP_PATIENT_BOLUS,
    CMD_REQUEST_PATIENT_BOLUS,
    EV_BOLUS_CANCELLED,
    EV_BOLUS_COMPLETED,
    EV_BOLUS_STARTED,
    MODE_STOPPED,
    SOURCE_PUMP,
)
from ._state import NO_COMMAND, Applied, BolusRun, PatientBolus, PatientBolusGranted, new_grant
from ._types import (
    DAY_MS,
    MINUTES_PER_DAY,
    NL_PER_ML,
    BolusKind,
    Capability,
    Command,
    EventKind,
    Reason,
    Source,
)

_TOO_LITTLE = "the dose is less than 1 nL at this concentration"


class BolusesMixin(CommandMixin):
    __slots__ = ()

    @property
    def patient_bolus(self) -> PatientBolus:
        p = self._s.patient
        return PatientBolus(p.enabled, p.dose_ng, p.duration_ms, p.lockout_ms, p.max_per_24h)

    @property
    def bolus(self) -> BolusRun | None:
        b = self._s.bolus
        if b is None:
            return None
        return BolusRun(
            b.kind,
            b.dose_ng,
            b.volume_nl,
            b.start_ms,
            b.duration_ms,
            b.due_at(self._s.now),
            b.command_id,
        )

    def bolus_window(self) -> tuple[int, int]:
        """(patient boluses started in the last 24 h, model time the lockout ends or 0)."""
        s = self._s
        cutoff = s.now - DAY_MS
        n = 0
        for t, _, k in s.recent_boluses:
            if k is BolusKind.PATIENT and t > cutoff:
                n += 1
        lock = 0
        if s.last_patient_bolus_at >= 0 and s.last_patient_bolus_at + s.patient.lockout_ms > s.now:
            lock = s.last_patient_bolus_at + s.patient.lockout_ms
        return n, lock

    def start_clinician_bolus(
        self,
        dose_ng: int,
        duration_ms: int,
        *,
        then_stop: bool = False,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """A bolus on top of the program (which keeps running), or with then_stop a single
        bolus after which the pump is in stopped mode."""
        c = self._begin(Command.START_CLINICIAN_BOLUS, command_id, source, expected_version)
        c.require(Capability.CLINICIAN_BOLUS)
        c.require_drug()
        s = self._s
        if dose_ng <= 0 or duration_ms < 60_000:
            c.reject(Reason.INVALID_VALUE, "dose must be > 0 and duration >= 60000 ms")
        self._check_bolus_allowed(c)
        volume = dose_ng * NL_PER_ML // s.conc_ng_per_ml
        self._check_bolus_volume(c, volume, duration_ms)
        self._check_window(c, dose_ng, confirm_soft_limit)
        kind = BolusKind.CLINICIAN_SINGLE if then_stop else BolusKind.CLINICIAN
        seq = self._start_bolus(c, kind, dose_ng, volume, duration_ms)
        return c.done(seq, bump=True)

    def start_priming_bolus(
        self,
        volume_nl: int,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Pushes `volume_nl` through the fluid path at the maximum rate (basal paused), then
        the program runs again."""
        c = self._begin(Command.START_PRIMING_BOLUS, command_id, source, expected_version)
        c.require(Capability.PRIMING_BOLUS)
        c.require_drug()
        s = self._s
        if not 0 < volume_nl <= 5 * NL_PER_ML:
            c.reject(Reason.INVALID_VALUE, "priming volume must be 1 nL .. 5 mL")
        self._check_bolus_allowed(c)
        duration = -(-volume_nl * DAY_MS // self._profile.max_rate_nl_per_day)
        self._check_bolus_volume(c, volume_nl, duration)
        dose = volume_nl * s.conc_ng_per_ml // NL_PER_ML
        seq = self._start_bolus(c, BolusKind.PRIMING, dose, volume_nl, duration)
        return c.done(seq, bump=True)

    def cancel_bolus(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        c = self._begin(Command.CANCEL_BOLUS, command_id, source, expected_version, therapy=False)
        if self._s.bolus is None:
            c.reject(Reason.INVALID_STATE, "no bolus is running")
        seq = self._end_bolus(cancelled=True, source=source, command_id=command_id)
        return c.done(seq, bump=True)

    def set_patient_bolus(
        self,
        *,
        enabled: bool,
        dose_ng: int,
        duration_ms: int,
        lockout_ms: int,
        max_per_24h: int,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Patient-activated bolus settings. Enabling checks the worst case (basal plus every
        allowed bolus) against the drug library."""
        c = self._begin(Command.SET_PATIENT_BOLUS, command_id, source, expected_version)
        c.require(Capability.PATIENT_BOLUS)
        s = self._s
        if not (
            60_000 <= duration_ms <= DAY_MS
            and 60_000 <= lockout_ms <= DAY_MS
            and 1 <= max_per_24h <= 48
            and dose_ng >= 0
        ):
            c.reject(
                Reason.INVALID_VALUE,
                "duration and lockout 60000 .. 86400000 ms, 1 .. 48 per 24 h, dose >= 0",
            )
        if lockout_ms < duration_ms:
            c.reject(
                Reason.INVALID_VALUE,
                "the lockout (start to start) must be at least the bolus duration",
            )
        if enabled:
            c.require_drug()
            lim = self._library.get(s.drug)
            if lim is None or not lim.patient_bolus_allowed:
                c.reject(
                    Reason.DRUG_NOT_ALLOWED, f"{s.drug.name} may not be given as a patient bolus"
                )
            volume = dose_ng * NL_PER_ML // s.conc_ng_per_ml
            if volume <= 0:
                c.reject(Reason.INVALID_VALUE, _TOO_LITTLE)
            c.check_rate(volume * DAY_MS // duration_ms, "patient bolus rate", allow_below_min=True)
            worst = self._daily_dose_x1440() + dose_ng * max_per_24h * MINUTES_PER_DAY
            c.check_dose_limits(s.drug, worst, confirm_soft_limit)
        s.patient = PatientBolus(enabled, dose_ng, duration_ms, lockout_ms, max_per_24h)
        return c.commit(EventKind.PATIENT_BOLUS_SETTINGS, int(enabled), dose_ng)

    def request_patient_bolus(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> PatientBolusGranted:
        """The patient asks for one bolus. Refused (logged as BOLUS_DENIED, never queued) when
        disabled, inside the lockout, over the 24 h cap or with a critical alarm raised."""
        c = self._begin(CMD_REQUEST_PATIENT_BOLUS, command_id, source, expected_version)
        s = self._s
        p = s.patient
        if not p.enabled or not self._profile.supports(CAP_PATIENT_BOLUS):
            c.reject(Reason.BOLUS_DISABLED, "patient-activated bolus is not enabled")
        now = s.now
        cutoff = now - DAY_MS
        if self._reference:
            count, lock_end = self.bolus_window()
            recent = self._window_dose()
            stale = True
        else:
            # One pass over the 24 h window (bolus_window() and _window_dose(), inlined): the
            # patient boluses in it, every dose in it, and whether an entry has left it.
            count = recent = 0
            stale = False
            for t, d, k in s.recent_boluses:
                if t > cutoff:
                    recent += d
                    if k is BOLUS_PATIENT:
                        count += 1
                else:
                    stale = True
            last = s.last_patient_bolus_at
            lock_end = last + p.lockout_ms if last >= 0 and last + p.lockout_ms > now else 0
        # Lockout and cap first: the patient learns when a bolus will be possible (a running
        # patient bolus is always inside its lockout, which is at least its duration).
        if lock_end:
            c.reject(
                Reason.BOLUS_LOCKOUT,
                f"lockout: next bolus possible in {lock_end - now} ms",
                value=lock_end - now,
            )
        if count >= p.max_per_24h:
            oldest = min(t for t, _, k in s.recent_boluses if k is BOLUS_PATIENT and t > cutoff)
            c.reject(
                Reason.BOLUS_CAP_REACHED,
                f"{count} of {p.max_per_24h} boluses in the last 24 h; next in "
                f"{oldest + DAY_MS - now} ms",
                value=oldest + DAY_MS - now,
            )
        self._check_bolus_allowed(c)
        volume = p.dose_ng * NL_PER_ML // s.conc_ng_per_ml
        self._check_bolus_volume(c, volume, p.duration_ms)
        # self._check_window(c, p.dose_ng, confirm=False), with the dose counted above
        total = self._daily_dose_x1440() + (recent + p.dose_ng) * MINUTES_PER_DAY
        c.check_dose_limits(s.drug, total, False)
        seq = self._start_bolus(c, BOLUS_PATIENT, p.dose_ng, volume, p.duration_ms, stale)
        s.last_patient_bolus_at = now
        self._settle(planned=True)  # only a priming bolus changes the basal
        refill = self._predict(s.low_threshold_nl)
        off = s.clock_offset_ms
        return new_grant(
            seq,  # event_seq
            p.dose_ng,  # dose_ng
            volume,  # volume_nl
            now + p.duration_ms + off,  # ends_at_ms
            now + p.lockout_ms + off,  # lockout_ends_at_ms
            p.max_per_24h - count - 1,  # boluses_left
            None if refill is None else refill + off,  # refill_due_at_ms
        )

    def _check_bolus_allowed(self, c: Cmd) -> None:
        s = self._s
        if s.alarms:
            critical = [r.alarm for r in s.alarms if CATALOGUE[r.alarm].critical]
            if critical:
                c.reject(Reason.ALARM_ACTIVE, f"critical alarm raised: {critical[0].name}")
        if s.awaiting_program:
            c.reject(
                Reason.INVALID_STATE, "the concentration changed: re-confirm the program first"
            )
        if s.suspended:
            c.reject(Reason.INVALID_STATE, "the pump is suspended")
        if s.bolus is not None:
            c.reject(Reason.INVALID_STATE, f"a {s.bolus.kind.name} bolus is already running")

    def _check_bolus_volume(self, c: Cmd, volume: int, duration: int) -> None:
        s = self._s
        if volume <= 0:
            c.reject(Reason.INVALID_VALUE, _TOO_LITTLE)
        if volume * DAY_MS > self._profile.max_rate_nl_per_day * duration:
            c.reject(
                Reason.RATE_OUT_OF_RANGE,
                f"{volume} nL in {duration} ms is faster than the pump's "
                f"{self._profile.max_rate_nl_per_day} nL/day",
            )
        available = s.calc_nl - self._profile.empty_threshold_nl
        if volume > available:
            c.reject(
                Reason.INSUFFICIENT_VOLUME, f"{volume} nL needed, {max(0, available)} nL available"
            )

    def _check_window(self, c: Cmd, dose_ng: int, confirm: bool) -> None:
        """The sliding-24 h cap counts everything: basal plus every bolus started in the last
        24 h plus this one (security.md 3.2, defence in depth)."""
        total = self._daily_dose_x1440() + (self._window_dose() + dose_ng) * MINUTES_PER_DAY
        c.check_dose_limits(self._s.drug, total, confirm)

    def _window_dose(self) -> int:
        """Every bolus dose started in the last 24 h (ng)."""
        s = self._s
        cutoff = s.now - DAY_MS
        recent = 0
        for t, d, _ in s.recent_boluses:
            if t > cutoff:
                recent += d
        return recent

    def _start_bolus(
        self, c: Cmd, kind: BolusKind, dose: int, volume: int, duration: int, trim: bool = True
    ) -> int:
        """Starts the bolus; the 24 h window drops what left it (`trim` False: the caller saw
        that nothing did)."""
        s = self._s
        s.bolus = BolusRun(kind, dose, volume, s.now, duration, 0, c.command_id)
        if trim:
            cutoff = s.now - DAY_MS
            s.recent_boluses = [r for r in s.recent_boluses if r[0] > cutoff]
        if kind is not BOLUS_PRIMING:
            s.recent_boluses.append((s.now, dose, kind))
        return c.log(EV_BOLUS_STARTED, int(kind), dose)

    def _end_bolus(self, *, cancelled: bool, source: Source, command_id: bytes) -> int:
        s = self._s
        b = s.bolus
        assert b is not None
        delivered_nl = b.due_at(s.now)
        delivered_ng = delivered_nl * s.conc_ng_per_ml // NL_PER_ML
        s.bolus = None
        if cancelled:
            # the window counts what was truly given, not what was asked
            for i, (t, d, k) in enumerate(s.recent_boluses):
                if t == b.start_ms and k is b.kind and d == b.dose_ng:
                    s.recent_boluses[i] = (t, min(d, delivered_ng), k)
                    break
            kind = EV_BOLUS_CANCELLED
        else:
            kind = EV_BOLUS_COMPLETED
        seq = self._log(
            kind,
            source,
            command_id if cancelled else b.command_id,
            int(b.kind),
            b.dose_ng if not cancelled else delivered_ng,
        )
        if b.kind is BOLUS_SINGLE and not cancelled:
            s.mode = MODE_STOPPED
            s.steps = []
            self._log(EventKind.PROGRAM_CHANGED, SOURCE_PUMP, b.command_id, int(MODE_STOPPED), 0)
        return seq
