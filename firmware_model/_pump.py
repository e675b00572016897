"""The pump: commands, faults and time, over the exact state in _state.py.

Theory of operation
-------------------
Time is handed in. `advance_to(t)` repeatedly finds the next *internal* event (a bolus or bridge
ending, a threshold crossed, an alarm tone, a battery milestone, a stall recovering, a silence
expiring, 48 h in stopped mode), integrates delivery analytically up to it, and applies it.
Between internal events the basal rate is a fixed periodic function of the time of day
(`RateProfile`), so crossing any number of schedule steps costs O(1): the cost of advancing grows
with events, not with time. `next_event_time()` also reports schedule step boundaries, so a
runtime that wants to publish each rate change can wake for them.

Three volumes are tracked, all exact integers:
- program volume: what the pump believes it delivered (drives the *calculated* reservoir volume);
  basal volume is floor(integral of the rate) with the remainder carried, a bolus delivers
  floor(V * elapsed / D) and exactly V at its end;
- pumped volume: what truly left the reservoir (program volume scaled by the device's accuracy
  error, zero while stalled, occluded, valve-closed or dry);
- patient volume and dose: what left the catheter tip into the intrathecal space, after the
  catheter's dead volume (a FIFO of drug slugs) and any leak.

Every command validates completely before it changes anything; a refusal raises `Rejected` and
leaves one log record (COMMAND_REJECTED, or BOLUS_DENIED for a patient request) and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._alarms import CATALOGUE
from ._errors import ModelError, Rejected, TimeWentBackwards
from ._faults import (
    CatheterLeak,
    CatheterOcclusion,
    CriticalMemoryError,
    DeliveryInaccuracy,
    Fault,
    LowBatteryReset,
    MotorStall,
    MriExposure,
    NoncriticalMemoryError,
    PocketFill,
    PrematureEos,
    PrematureEri,
)
from ._profiles import DEFAULT_LIBRARY, PROFILES, DrugLimits, Profile
from ._rates import RateProfile
from ._state import (
    NO_COMMAND,
    AlarmRecord,
    AlarmView,
    Applied,
    BolusRun,
    Event,
    PatientBolus,
    PatientBolusGranted,
    RefillReport,
    Segment,
    State,
)
from ._types import (
    DAY_MS,
    MINUTES_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MIN,
    NL_PER_ML,
    PPM,
    Alarm,
    AlarmState,
    BatteryState,
    BolusKind,
    Capability,
    ClearedBy,
    Command,
    ConcentrationUnit,
    Drug,
    EventKind,
    FaultKind,
    Mode,
    MriBehaviour,
    ProfileId,
    Reason,
    Source,
    Tone,
)

NEVER = 1 << 62  # beyond any time the model will be asked about
STOPPED_ALARM_MS = 48 * MS_PER_HOUR  # domain.md section 3: pump stopped > 48 h
HAZARD_PPM = 145_000  # +-14.5 %: over-infusion hazard bound (domain #13)
MAX_ERROR_PPM = HAZARD_PPM
MIN_ERROR_PPM = -500_000
MAX_SILENCE_MS = DAY_MS
CONTROL_TRUE_RESERVOIR = 10  # `a` of the CONTROL record of set_true_reservoir (b: old volume)

_PROGRAM_COMMANDS = frozenset(
    {Command.SET_CONTINUOUS_DOSE, Command.SET_SCHEDULE, Command.START_BRIDGE}
)


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


class Pump:
    """One implanted pump. Create with `Pump.create(...)`; restore with `Pump.restore(...)`."""

    __slots__ = ("_basal", "_library", "_next", "_profile", "_s", "_step_cache")

    def __init__(self, profile: Profile, library: Mapping[Drug, DrugLimits], state: State) -> None:
        self._profile = profile
        self._library = dict(library)
        self._s = state
        self._basal: RateProfile | None = None
        self._next: int | None = None
        self._step_cache: dict[tuple[object, ...], RateProfile] = {}
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
        catheter_volume_nl: int = 221_000,
        accuracy_error_ppm: int | None = None,
        library: Mapping[Drug, DrugLimits] = DEFAULT_LIBRARY,
    ) -> Pump:
        """A freshly implanted, empty pump, powering on at model time `now_ms`.

        `clock_ms` sets the pump clock (default: equal to model time). The catheter and pump
        tubing hold `catheter_volume_nl + profile.pump_tubing_nl` of drug-free fluid until
        primed (default catheter: 85 cm x 2.6 uL/cm, domain.md 2.3)."""
        prof = PROFILES[profile] if isinstance(profile, ProfileId) else profile
        if not 1 <= serial <= 0xFFFF_FFFE:
            raise ValueError("serial must be 1 .. 0xFFFFFFFE")
        if catheter_volume_nl < 0:
            raise ValueError("catheter_volume_nl must be >= 0")
        error = prof.accuracy_error_ppm if accuracy_error_ppm is None else accuracy_error_ppm
        if not MIN_ERROR_PPM <= error <= MAX_ERROR_PPM:
            raise ValueError(f"accuracy_error_ppm must be {MIN_ERROR_PPM} .. {MAX_ERROR_PPM}")
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
        pump._settle()
        return pump

    # --- reading ------------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def library(self) -> Mapping[Drug, DrugLimits]:
        return dict(self._library)

    @property
    def now(self) -> int:
        """Model time (ms)."""
        return self._s.now

    @property
    def clock_ms(self) -> int:
        """The pump clock (ms since the epoch, as the pump believes)."""
        return self._s.now + self._s.clock_offset_ms

    @property
    def program_version(self) -> int:
        return self._s.program_version

    @property
    def serial(self) -> int:
        return self._s.serial

    @property
    def patient_bolus(self) -> PatientBolus:
        p = self._s.patient
        return PatientBolus(p.enabled, p.dose_ng, p.duration_ms, p.lockout_ms, p.max_per_24h)

    @property
    def schedule(self) -> tuple[tuple[int, int], ...]:
        return tuple(self._s.steps)

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

    @property
    def self_test_ends_at(self) -> int:
        """Model time the power-on self test ends (commands are answered BUSY before it)."""
        return self._s.post_until

    @property
    def program_dose_ng_per_day(self) -> int:
        """CONTINUOUS and BRIDGE: the programmed daily dose (0 in other modes)."""
        s = self._s
        return s.dose_ng_per_day if s.mode in (Mode.CONTINUOUS, Mode.BRIDGE) else 0

    @property
    def bridge_ends_at_ms(self) -> int | None:
        s = self._s
        if s.mode is not Mode.BRIDGE or self._basal is None:
            return None
        x = self._program_reach(s.bridge_left_nl, NEVER - 1) if s.bolus is None else None
        if x is None:  # a bolus also pushes the dead volume: estimate at the bridge rate
            x = s.now + -(-s.bridge_left_nl * DAY_MS // s.bridge_rate_nl_per_day)
        return x + s.clock_offset_ms

    @property
    def alarm_settings(self) -> tuple[int, int, int]:
        s = self._s
        return s.low_threshold_nl, s.critical_repeat_ms, s.noncritical_repeat_ms

    @property
    def battery(self) -> BatteryState:
        return self._s.battery

    @property
    def tones_sounded(self) -> int:
        return self._s.tones_sounded

    @property
    def last_tone(self) -> tuple[int, Tone] | None:
        """(pump clock, tone) of the most recent tone, alarm test included."""
        s = self._s
        if s.last_tone is None:
            return None
        return s.last_tone_at + s.clock_offset_ms, s.last_tone

    def status(self) -> Status:
        s = self._s
        off = s.clock_offset_ms
        basal_now = self._basal.rate_at(self.clock_ms) if self._basal else 0
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
        return Status(
            now=s.now,
            clock_ms=s.now + off,
            program_version=s.program_version,
            event_seq=s.next_seq - 1,
            mode=s.mode,
            suspended=s.suspended,
            awaiting_program=s.awaiting_program,
            safe_mode=s.safe_mode,
            bolus=b.kind if b else BolusKind.NONE,
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
        )

    @property
    def active_alarms(self) -> Alarm:
        out = Alarm(0)
        for r in self._s.alarms:
            out |= r.alarm
        return out

    def alarms(self) -> list[AlarmView]:
        """Raised alarms, highest priority first (then oldest first)."""
        s = self._s
        sounding = self._sounding()
        out = []
        for r in sorted(s.alarms, key=lambda r: (-CATALOGUE[r.alarm].priority, r.raised_at)):
            spec = CATALOGUE[r.alarm]
            out.append(
                AlarmView(
                    alarm=r.alarm,
                    critical=spec.critical,
                    priority=spec.priority,
                    state=r.state,
                    condition=r.condition,
                    raised_at_ms=r.raised_at + s.clock_offset_ms,
                    silenced_until_ms=(
                        r.silenced_until + s.clock_offset_ms
                        if r.state is AlarmState.SILENCED
                        else 0
                    ),
                    repeat_interval_ms=self._repeat(r.alarm),
                    sounding=r is sounding,
                )
            )
        return out

    def active_faults(self) -> frozenset[FaultKind]:
        f = self._s.faults
        kinds = set()
        if f.stalled:
            kinds.add(FaultKind.MOTOR_STALL)
        if f.occluded:
            kinds.add(FaultKind.CATHETER_OCCLUSION)
        if f.leak_ppm:
            kinds.add(FaultKind.CATHETER_LEAK)
        if f.pocket_fill_nl:
            kinds.add(FaultKind.POCKET_FILL)
        if f.valve_closed:
            kinds.add(FaultKind.FLOW_VALVE_CLOSED)
        if f.error_ppm != self._profile.accuracy_error_ppm:
            kinds.add(FaultKind.DELIVERY_INACCURACY)
        raised = self.active_alarms
        if raised & Alarm.CRITICAL_MEMORY_ERROR:
            kinds.add(FaultKind.CRITICAL_MEMORY_ERROR)
        if raised & Alarm.NONCRITICAL_MEMORY_ERROR:
            kinds.add(FaultKind.NONCRITICAL_MEMORY_ERROR)
        if self._s.safe_mode:
            kinds.add(FaultKind.LOW_BATTERY_RESET)
        return frozenset(kinds)

    @property
    def event_seq(self) -> int:
        return self._s.next_seq - 1

    @property
    def oldest_seq(self) -> int:
        ev = self._s.events
        return ev[0].seq if ev else self._s.next_seq

    def events(self, cursor: int = 0, max_count: int | None = None) -> list[Event]:
        """Log records with seq >= cursor (0 = the oldest kept), oldest first."""
        ev = self._s.events
        if not ev:
            return []
        start = max(0, cursor - ev[0].seq)
        end = None if max_count is None else start + max_count
        return ev[start:end]

    def log_digest(self) -> str:
        """SHA-256 over every record kept: equal inputs give equal digests, byte for byte."""
        h = hashlib.sha256()
        for e in self._s.events:
            h.update(e.pack())
        return h.hexdigest()

    def bolus_window(self) -> tuple[int, int]:
        """(patient boluses started in the last 24 h, model time the lockout ends or 0)."""
        s = self._s
        n = sum(1 for t, _, k in s.recent_boluses if k is BolusKind.PATIENT and t > s.now - DAY_MS)
        lock = 0
        if s.last_patient_bolus_at >= 0 and s.last_patient_bolus_at + s.patient.lockout_ms > s.now:
            lock = s.last_patient_bolus_at + s.patient.lockout_ms
        return n, lock

    # --- time ---------------------------------------------------------------------------------

    def next_event_time(self) -> int | None:
        """Model time of the next thing that happens on its own: an internal event or a
        schedule step boundary. None: nothing will happen until a command arrives."""
        t = self._next_internal()
        sounding = self._sounding()
        if sounding is not None:  # tones are counted analytically, but a runtime may beep
            t = min(t, max(self._s.now, sounding.next_tone_at))
        if self._basal is not None and not self._basal.is_constant:
            step = self._basal.next_change(self.clock_ms)
            if step is not None:
                t = min(t, step - self._s.clock_offset_ms)
        return None if t >= NEVER else t

    def advance_to(self, t: int) -> int:
        """Apply everything that happens up to model time t. Returns internal events processed."""
        s = self._s
        if t < s.now:
            raise TimeWentBackwards(f"advance_to({t}) is before the model time {s.now}")
        n = same = 0
        while True:
            e = self._next_internal()
            if e > t:
                self._flow(t)
                return n
            same = same + 1 if e == s.now else 0
            if same > 64:  # a condition that settling does not consume: a model bug, loudly
                raise ModelError(f"internal event at {e} is never consumed")
            self._flow(e)
            self._settle()
            n += 1

    def note_telemetry(self, frames: int = 1) -> None:
        """Telemetry costs battery (frequent polling shortens pump life)."""
        if frames < 0:
            raise ValueError("frames must be >= 0")
        s = self._s
        s.telemetry_frames += frames
        if self._profile.battery is not None and s.battery is BatteryState.OK:
            s.battery_used_bu += frames * self._profile.battery.bu_per_telemetry_frame
            self._settle()

    # --- commands: programming ----------------------------------------------------------------

    def set_drug(
        self,
        drug: Drug,
        conc_ng_per_ml: int,
        unit: ConcentrationUnit,
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Corrects the drug record. A concentration or drug change stops the basal program
        until it is re-confirmed (SET_CONTINUOUS_DOSE, SET_SCHEDULE or START_BRIDGE); on a
        constant-flow pump it changes the dose at once and is checked against the limits."""
        cmd = Command.SET_DRUG
        self._preamble(cmd, command_id, source, expected_version)
        s = self._s
        self._check_drug(cmd, command_id, source, drug, conc_ng_per_ml, unit)
        if s.bolus is not None and (drug, conc_ng_per_ml) != (s.drug, s.conc_ng_per_ml):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_STATE,
                "a bolus is running: cancel it before changing the drug",
            )
        if self._profile.fixed_rate_nl_per_day:
            self._check_dose_limits(
                cmd,
                command_id,
                source,
                drug,
                self._fixed_daily_dose_x1440(conc_ng_per_ml),
                confirm_soft_limit,
            )
        self._apply_drug(drug, conc_ng_per_ml, unit, command_id, source)
        return self._commit(EventKind.DRUG_CHANGED, source, command_id, int(drug), conc_ng_per_ml)

    def set_continuous_dose(
        self,
        dose_ng_per_day: int,
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Simple continuous mode; the rate is derived: dose * 10^6 / concentration, floored."""
        cmd = Command.SET_CONTINUOUS_DOSE
        self._preamble(cmd, command_id, source, expected_version)
        self._require(cmd, command_id, source, Capability.CONTINUOUS | Capability.VARIABLE_RATE)
        self._require_drug(cmd, command_id, source)
        s = self._s
        if dose_ng_per_day <= 0:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "dose must be > 0 ng/day (use SUSPEND to stop delivery)",
            )
        rate = self._rate_for(dose_ng_per_day, s.conc_ng_per_ml)
        self._check_rate(cmd, command_id, source, rate, "rate")
        self._check_dose_limits(
            cmd, command_id, source, s.drug, dose_ng_per_day * MINUTES_PER_DAY, confirm_soft_limit
        )
        return self._install(Mode.CONTINUOUS, dose_ng_per_day, rate, [], command_id, source)

    def set_schedule(
        self,
        steps: Iterable[tuple[int, int]],
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """A multi-step daily schedule of (start minute, dose ng/day) steps, the first at 0."""
        cmd = Command.SET_SCHEDULE
        self._preamble(cmd, command_id, source, expected_version)
        self._require(cmd, command_id, source, Capability.SCHEDULE)
        self._require_drug(cmd, command_id, source)
        s = self._s
        plan = [(int(m), int(d)) for m, d in steps]
        if not 1 <= len(plan) <= self._profile.max_schedule_steps:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                f"a schedule has 1 .. {self._profile.max_schedule_steps} steps",
            )
        starts = [m for m, _ in plan]
        if (
            starts[0] != 0
            or any(b <= a for a, b in itertools.pairwise(starts))
            or starts[-1] >= MINUTES_PER_DAY
        ):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "step start minutes must begin at 0, strictly increase, stay < 1440",
            )
        if any(d < 0 for _, d in plan) or not any(d for _, d in plan):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "step doses must be >= 0 and at least one > 0 (use SUSPEND to stop)",
            )
        for i, (_, dose) in enumerate(plan):
            if dose:
                self._check_rate(
                    cmd,
                    command_id,
                    source,
                    self._rate_for(dose, s.conc_ng_per_ml),
                    f"step {i + 1} rate",
                )
        self._check_dose_limits(
            cmd, command_id, source, s.drug, _schedule_x1440(plan), confirm_soft_limit
        )
        return self._install(Mode.SCHEDULE, 0, 0, plan, command_id, source)

    def start_bridge(
        self,
        dead_volume_nl: int,
        previous_conc_ng_per_ml: int,
        dose_ng_per_day: int,
        *,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """After a concentration change: the old concentration's rate until the dead volume is
        flushed (duration = ceil(dead * DAY / old rate)), then continuous at the new rate."""
        cmd = Command.START_BRIDGE
        self._preamble(cmd, command_id, source, expected_version)
        self._require(cmd, command_id, source, Capability.BRIDGE)
        self._require_drug(cmd, command_id, source)
        s = self._s
        if dead_volume_nl <= 0 or previous_conc_ng_per_ml <= 0 or dose_ng_per_day <= 0:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "dead volume, previous concentration and dose must all be > 0",
            )
        old_rate = self._rate_for(dose_ng_per_day, previous_conc_ng_per_ml)
        new_rate = self._rate_for(dose_ng_per_day, s.conc_ng_per_ml)
        self._check_rate(cmd, command_id, source, old_rate, "bridge rate")
        self._check_rate(cmd, command_id, source, new_rate, "rate after the bridge")
        self._check_dose_limits(
            cmd, command_id, source, s.drug, dose_ng_per_day * MINUTES_PER_DAY, confirm_soft_limit
        )
        s.bridge_rate_nl_per_day = old_rate
        s.bridge_left_nl = dead_volume_nl
        return self._install(Mode.BRIDGE, dose_ng_per_day, new_rate, [], command_id, source)

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
        cmd = Command.START_CLINICIAN_BOLUS
        self._preamble(cmd, command_id, source, expected_version)
        self._require(cmd, command_id, source, Capability.CLINICIAN_BOLUS)
        self._require_drug(cmd, command_id, source)
        s = self._s
        if dose_ng <= 0 or duration_ms < 60_000:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "dose must be > 0 and duration >= 60000 ms",
            )
        self._check_bolus_allowed(cmd, command_id, source)
        volume = dose_ng * NL_PER_ML // s.conc_ng_per_ml
        self._check_bolus_volume(cmd, command_id, source, volume, duration_ms)
        self._check_window(cmd, command_id, source, dose_ng, confirm_soft_limit)
        kind = BolusKind.CLINICIAN_SINGLE if then_stop else BolusKind.CLINICIAN
        seq = self._start_bolus(kind, dose_ng, volume, duration_ms, command_id, source)
        s.program_version += 1
        return self._done(seq)

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
        cmd = Command.START_PRIMING_BOLUS
        self._preamble(cmd, command_id, source, expected_version)
        self._require(cmd, command_id, source, Capability.PRIMING_BOLUS)
        self._require_drug(cmd, command_id, source)
        s = self._s
        if not 0 < volume_nl <= 5 * NL_PER_ML:
            self._reject(
                cmd, command_id, source, Reason.INVALID_VALUE, "priming volume must be 1 nL .. 5 mL"
            )
        self._check_bolus_allowed(cmd, command_id, source)
        duration = -(-volume_nl * DAY_MS // self._profile.max_rate_nl_per_day)
        self._check_bolus_volume(cmd, command_id, source, volume_nl, duration)
        dose = volume_nl * s.conc_ng_per_ml // NL_PER_ML
        seq = self._start_bolus(BolusKind.PRIMING, dose, volume_nl, duration, command_id, source)
        s.program_version += 1
        return self._done(seq)

    def cancel_bolus(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        cmd = Command.CANCEL_BOLUS
        self._preamble(cmd, command_id, source, expected_version, therapy=False)
        if self._s.bolus is None:
            self._reject(cmd, command_id, source, Reason.INVALID_STATE, "no bolus is running")
        seq = self._end_bolus(cancelled=True, source=source, command_id=command_id)
        self._s.program_version += 1
        return self._done(seq)

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
        cmd = Command.SET_PATIENT_BOLUS
        self._preamble(cmd, command_id, source, expected_version)
        self._require(cmd, command_id, source, Capability.PATIENT_BOLUS)
        s = self._s
        if not (
            60_000 <= duration_ms <= DAY_MS
            and 60_000 <= lockout_ms <= DAY_MS
            and 1 <= max_per_24h <= 48
            and dose_ng >= 0
        ):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "duration and lockout 60000 .. 86400000 ms, 1 .. 48 per 24 h, dose >= 0",
            )
        if lockout_ms < duration_ms:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "the lockout (start to start) must be at least the bolus duration",
            )
        if enabled:
            self._require_drug(cmd, command_id, source)
            lim = self._library.get(s.drug)
            if lim is None or not lim.patient_bolus_allowed:
                self._reject(
                    cmd,
                    command_id,
                    source,
                    Reason.DRUG_NOT_ALLOWED,
                    f"{s.drug.name} may not be given as a patient bolus",
                )
            volume = dose_ng * NL_PER_ML // s.conc_ng_per_ml
            if volume <= 0:
                self._reject(
                    cmd,
                    command_id,
                    source,
                    Reason.INVALID_VALUE,
                    "the dose is less than 1 nL at this concentration",
                )
            self._check_rate(
                cmd,
                command_id,
                source,
                volume * DAY_MS // duration_ms,
                "patient bolus rate",
                allow_below_min=True,
            )
            worst = self._daily_dose_x1440() + dose_ng * max_per_24h * MINUTES_PER_DAY
            self._check_dose_limits(cmd, command_id, source, s.drug, worst, confirm_soft_limit)
        s.patient = PatientBolus(enabled, dose_ng, duration_ms, lockout_ms, max_per_24h)
        return self._commit(
            EventKind.PATIENT_BOLUS_SETTINGS, source, command_id, int(enabled), dose_ng
        )

    def request_patient_bolus(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> PatientBolusGranted:
        """The patient asks for one bolus. Refused (logged as BOLUS_DENIED, never queued) when
        disabled, inside the lockout, over the 24 h cap or with a critical alarm raised."""
        cmd = Command.REQUEST_PATIENT_BOLUS
        self._preamble(cmd, command_id, source, expected_version)
        s = self._s
        p = s.patient
        if not p.enabled or not self._profile.supports(Capability.PATIENT_BOLUS):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.BOLUS_DISABLED,
                "patient-activated bolus is not enabled",
            )
        # Lockout and cap first: the patient learns when a bolus will be possible (a running
        # patient bolus is always inside its lockout, which is at least its duration).
        count, lock_end = self.bolus_window()
        if lock_end:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.BOLUS_LOCKOUT,
                f"lockout: next bolus possible in {lock_end - s.now} ms",
                value=lock_end - s.now,
            )
        if count >= p.max_per_24h:
            oldest = min(
                t for t, _, k in s.recent_boluses if k is BolusKind.PATIENT and t > s.now - DAY_MS
            )
            self._reject(
                cmd,
                command_id,
                source,
                Reason.BOLUS_CAP_REACHED,
                f"{count} of {p.max_per_24h} boluses in the last 24 h; next in "
                f"{oldest + DAY_MS - s.now} ms",
                value=oldest + DAY_MS - s.now,
            )
        self._check_bolus_allowed(cmd, command_id, source)
        volume = p.dose_ng * NL_PER_ML // s.conc_ng_per_ml
        self._check_bolus_volume(cmd, command_id, source, volume, p.duration_ms)
        self._check_window(cmd, command_id, source, p.dose_ng, confirm=False)
        seq = self._start_bolus(
            BolusKind.PATIENT, p.dose_ng, volume, p.duration_ms, command_id, source
        )
        s.last_patient_bolus_at = s.now
        self._settle()
        refill = self._predict(s.low_threshold_nl)
        off = s.clock_offset_ms
        return PatientBolusGranted(
            event_seq=seq,
            dose_ng=p.dose_ng,
            volume_nl=volume,
            ends_at_ms=s.now + p.duration_ms + off,
            lockout_ends_at_ms=s.now + p.lockout_ms + off,
            boluses_left=p.max_per_24h - count - 1,
            refill_due_at_ms=None if refill is None else refill + off,
        )

    def record_refill(
        self,
        *,
        withdrawn_nl: int,
        added_nl: int,
        drug: Drug,
        conc_ng_per_ml: int,
        unit: ConcentrationUnit,
        low_threshold_nl: int | None = None,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> RefillReport:
        """Records a refill: the reservoir was emptied (`withdrawn_nl` came back), then
        `added_nl` of `drug` at `conc` was injected. The calculated volume becomes `added_nl`.
        A drug or concentration change stops the program until it is re-confirmed."""
        cmd = Command.RECORD_REFILL
        self._preamble(cmd, command_id, source, expected_version)
        s = self._s
        prof = self._profile
        cap = prof.reservoir_nl
        threshold = s.low_threshold_nl if low_threshold_nl is None else low_threshold_nl
        if not 0 < added_nl <= cap:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                f"added volume must be 1 .. {cap} nL (reservoir capacity)",
            )
        if not 0 <= withdrawn_nl <= cap:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                f"withdrawn volume must be 0 .. {cap} nL",
            )
        if not prof.empty_threshold_nl <= threshold < cap:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                f"low-reservoir threshold must be {prof.empty_threshold_nl} .. {cap - 1} nL",
            )
        if s.bolus is not None:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_STATE,
                "a bolus is running: cancel it before a refill",
            )
        self._check_drug(cmd, command_id, source, drug, conc_ng_per_ml, unit)
        if prof.fixed_rate_nl_per_day:
            self._check_dose_limits(
                cmd,
                command_id,
                source,
                drug,
                self._fixed_daily_dose_x1440(conc_ng_per_ml),
                confirm_soft_limit,
            )
        # --- apply: the refill report first, from the state before ---
        expected = s.calc_nl
        discrepancy = withdrawn_nl - expected
        den = s.filled_nl - expected
        num = s.filled_nl - withdrawn_nl
        # A ratio over less than the discrepancy limit is noise (one nanolitre off on a few
        # delivered would read as 0 %): then only the absolute discrepancy is judged.
        basis = max(1, prof.discrepancy_limit_nl)
        ratio = None if den < basis else (num * PPM * 2 + den) // (2 * den)
        beyond = abs(discrepancy) > prof.discrepancy_limit_nl or (
            ratio is not None and abs(ratio - PPM) > HAZARD_PPM
        )
        f = s.faults
        remaining = max(0, s.true_nl - withdrawn_nl)
        reaching = max(0, added_nl - f.pocket_fill_nl)
        true_after = min(cap, remaining + reaching)
        if true_after:
            s.true_conc_ng_per_ml = (
                remaining * s.true_conc_ng_per_ml + reaching * conc_ng_per_ml
            ) // (remaining + reaching)
        if f.pocket_fill_nl:
            self._log(
                EventKind.FAULT,
                Source.PUMP,
                command_id,
                int(FaultKind.POCKET_FILL),
                added_nl - reaching,
            )
            f.pocket_fill_nl = 0
        s.true_nl = true_after
        s.dry = s.true_nl <= prof.empty_threshold_nl
        s.calc_nl = added_nl
        s.filled_nl = added_nl
        s.low_threshold_nl = threshold
        s.last_refill_at = self.clock_ms
        if (drug, conc_ng_per_ml) != (s.drug, s.conc_ng_per_ml):
            self._apply_drug(drug, conc_ng_per_ml, unit, command_id, source)
            self._log(EventKind.DRUG_CHANGED, source, command_id, int(drug), conc_ng_per_ml)
        else:
            s.conc_unit = unit
        s.program_version += 1
        seq = self._log(EventKind.REFILL, source, command_id, added_nl, discrepancy)
        self._settle()
        low = self._predict(s.low_threshold_nl)
        empty = self._predict(prof.empty_threshold_nl)
        off = s.clock_offset_ms
        return RefillReport(
            program_version=s.program_version,
            event_seq=seq,
            expected_residual_nl=expected,
            withdrawn_nl=withdrawn_nl,
            discrepancy_nl=discrepancy,
            delivery_ratio_ppm=ratio,
            beyond_limits=beyond,
            reservoir_volume_nl=s.calc_nl,
            low_reservoir_at_ms=None if low is None else low + off,
            empty_at_ms=None if empty is None else empty + off,
        )

    def set_alarm_settings(
        self,
        *,
        low_threshold_nl: int,
        critical_repeat_ms: int,
        noncritical_repeat_ms: int,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        cmd = Command.SET_ALARM_SETTINGS
        self._preamble(cmd, command_id, source, expected_version, therapy=False)
        prof = self._profile
        if not prof.empty_threshold_nl <= low_threshold_nl < prof.reservoir_nl:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                f"low-reservoir threshold must be {prof.empty_threshold_nl} .. "
                f"{prof.reservoir_nl - 1} nL",
            )
        if not (
            60_000 <= critical_repeat_ms <= DAY_MS and 60_000 <= noncritical_repeat_ms <= DAY_MS
        ):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "repeat intervals must be 60000 .. 86400000 ms",
            )
        s = self._s
        s.low_threshold_nl = low_threshold_nl
        s.critical_repeat_ms = critical_repeat_ms
        s.noncritical_repeat_ms = noncritical_repeat_ms
        return self._commit(
            EventKind.ALARM_SETTINGS, source, command_id, low_threshold_nl, critical_repeat_ms
        )

    def suspend(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Stopped-pump mode until RESUME; a running bolus is cancelled."""
        cmd = Command.SUSPEND
        self._preamble(cmd, command_id, source, expected_version)
        self._require(cmd, command_id, source, Capability.VARIABLE_RATE)
        s = self._s
        if s.suspended or s.mode is Mode.STOPPED:
            self._reject(
                cmd, command_id, source, Reason.INVALID_STATE, "the pump is already stopped"
            )
        if s.bolus is not None:
            self._end_bolus(cancelled=True, source=source, command_id=command_id)
        s.suspended = True
        return self._commit(EventKind.SUSPENDED, source, command_id, int(s.mode), 0)

    def resume(
        self,
        *,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        cmd = Command.RESUME
        self._preamble(cmd, command_id, source, expected_version)
        s = self._s
        if not s.suspended:
            self._reject(cmd, command_id, source, Reason.INVALID_STATE, "the pump is not suspended")
        s.suspended = False
        return self._commit(EventKind.RESUMED, source, command_id, int(s.mode), 0)

    # --- commands: alarms and clock -----------------------------------------------------------

    def acknowledge_alarms(
        self, alarms: Alarm, *, command_id: bytes = NO_COMMAND, source: Source = Source.PROGRAMMER
    ) -> Applied:
        """Indefinite silence for these alarms. A latched alarm whose cause has ended, and an
        alarm cleared by acknowledgement, is cleared."""
        cmd = Command.ACKNOWLEDGE_ALARMS
        self._preamble(cmd, command_id, source, None, therapy=False, post=False)
        s = self._s
        hit = [r for r in s.alarms if r.alarm & alarms]
        if not alarms or not hit:
            self._reject(
                cmd, command_id, source, Reason.INVALID_STATE, "none of these alarms is raised"
            )
        mask = Alarm(0)
        for r in hit:
            mask |= r.alarm
            r.state = AlarmState.ACKNOWLEDGED
        seq = self._log(EventKind.ALARM_ACKNOWLEDGED, source, command_id, int(mask), 0)
        for r in hit:
            if not r.condition or CATALOGUE[r.alarm].cleared_by is ClearedBy.ACKNOWLEDGE:
                self._remove_alarm(r, source, command_id)
        return self._done(seq)

    def silence_alarms(
        self,
        alarms: Alarm,
        duration_ms: int,
        *,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Pauses the audible signal; it returns after duration_ms if the alarm is still raised."""
        cmd = Command.SILENCE_ALARMS
        self._preamble(cmd, command_id, source, None, therapy=False, post=False)
        s = self._s
        if not 1_000 <= duration_ms <= MAX_SILENCE_MS:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                f"silence duration must be 1000 .. {MAX_SILENCE_MS} ms",
            )
        hit = [r for r in s.alarms if r.alarm & alarms and r.state is not AlarmState.ACKNOWLEDGED]
        if not alarms or not hit:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_STATE,
                "none of these alarms is raised and unacknowledged",
            )
        mask = Alarm(0)
        for r in hit:
            mask |= r.alarm
            r.state = AlarmState.SILENCED
            r.silenced_until = s.now + duration_ms
        return self._commit(
            EventKind.ALARM_SILENCED,
            source,
            command_id,
            int(mask),
            s.now + duration_ms + s.clock_offset_ms,
            bump=False,
        )

    def alarm_test(
        self, tone: Tone, *, command_id: bytes = NO_COMMAND, source: Source = Source.PROGRAMMER
    ) -> Applied:
        """Sounds a tone so the patient learns it; delivery and alarms are untouched."""
        cmd = Command.ALARM_TEST
        self._preamble(cmd, command_id, source, None, therapy=False)
        s = self._s
        s.tones_sounded += 1
        s.last_tone_at = s.now
        s.last_tone = Tone(tone)
        return self._commit(EventKind.ALARM_TEST, source, command_id, int(tone), 0, bump=False)

    def set_clock(
        self, clock_ms: int, *, command_id: bytes = NO_COMMAND, source: Source = Source.PROGRAMMER
    ) -> Applied:
        """Sets the pump clock. A schedule follows the new time of day at once."""
        cmd = Command.SET_CLOCK
        self._preamble(cmd, command_id, source, None, therapy=False)
        if not 0 <= clock_ms < 1 << 53:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "clock must be 0 .. 2^53 ms since the epoch",
            )
        s = self._s
        old = self.clock_ms
        s.clock_offset_ms = clock_ms - s.now
        return self._commit(EventKind.CLOCK_SET, source, command_id, old, clock_ms, bump=False)

    # --- faults -------------------------------------------------------------------------------

    def inject(
        self, fault: Fault, *, source: Source = Source.CONTROL, command_id: bytes = NO_COMMAND
    ) -> int:
        """Injects a fault with its real consequence. Returns the seq of its log record."""
        cmd = Command.INJECT_FAULT
        s = self._s
        prof = self._profile
        f = s.faults
        battery_faults = (PrematureEri, PrematureEos, LowBatteryReset)
        if isinstance(fault, battery_faults) and prof.battery is None:
            self._reject(
                cmd, command_id, source, Reason.MODE_NOT_SUPPORTED, "this pump has no battery"
            )
        if isinstance(fault, (MotorStall, LowBatteryReset)) and prof.fixed_rate_nl_per_day:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.MODE_NOT_SUPPORTED,
                "a propellant-driven pump has no motor",
            )
        if s.battery is BatteryState.END_OF_SERVICE and not isinstance(
            fault, (CatheterOcclusion, CatheterLeak, PocketFill)
        ):
            self._reject(
                cmd, command_id, source, Reason.PUMP_STOPPED, "the pump is at end of service"
            )
        match fault:
            case MotorStall(recover_after_ms=rec):
                if rec is not None and rec <= 0:
                    self._reject(
                        cmd,
                        command_id,
                        source,
                        Reason.INVALID_VALUE,
                        "recover_after_ms must be > 0",
                    )
                seq = self._log(EventKind.FAULT, source, command_id, int(FaultKind.MOTOR_STALL), 1)
                self._stall(0 if rec is None else s.now + rec, source, command_id, cause=0)
            case CatheterOcclusion():
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.CATHETER_OCCLUSION), 1
                )
                f.occluded = True
            case CatheterLeak(share_ppm=share):
                if not 0 < share <= PPM:
                    self._reject(
                        cmd,
                        command_id,
                        source,
                        Reason.INVALID_VALUE,
                        "leak share must be 1 .. 1000000 ppm",
                    )
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.CATHETER_LEAK), share
                )
                f.leak_ppm = share
            case PocketFill(volume_nl=vol):
                if not 0 < vol <= prof.reservoir_nl:
                    self._reject(
                        cmd,
                        command_id,
                        source,
                        Reason.INVALID_VALUE,
                        "pocket-fill volume must be 1 nL .. the reservoir capacity",
                    )
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.POCKET_FILL), vol
                )
                f.pocket_fill_nl = vol
            case DeliveryInaccuracy(error_ppm=err):
                if not MIN_ERROR_PPM <= err <= MAX_ERROR_PPM:
                    self._reject(
                        cmd,
                        command_id,
                        source,
                        Reason.INVALID_VALUE,
                        f"error must be {MIN_ERROR_PPM} .. {MAX_ERROR_PPM} ppm "
                        "(14.5 % is the over-infusion hazard bound)",
                    )
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.DELIVERY_INACCURACY), err
                )
                f.error_ppm = err
            case CriticalMemoryError():
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.CRITICAL_MEMORY_ERROR), 1
                )
                self._raise(Alarm.CRITICAL_MEMORY_ERROR, source, command_id)
            case NoncriticalMemoryError():
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.NONCRITICAL_MEMORY_ERROR), 1
                )
                self._raise(Alarm.NONCRITICAL_MEMORY_ERROR, source, command_id)
            case MriExposure(duration_ms=dur, recovery_delay_ms=delay):
                if dur <= 0 or delay < 0:
                    self._reject(
                        cmd,
                        command_id,
                        source,
                        Reason.INVALID_VALUE,
                        "MRI duration must be > 0 and recovery delay >= 0",
                    )
                seq = self._log(EventKind.MRI_EXPOSURE, source, command_id, int(prof.mri), dur)
                self._mri(dur, delay, source, command_id)
            case PrematureEri():
                if s.battery is not BatteryState.OK:
                    self._reject(
                        cmd,
                        command_id,
                        source,
                        Reason.INVALID_STATE,
                        "the battery is already past ERI",
                    )
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.PREMATURE_ERI), 1
                )
                self._eri(source, command_id)
            case PrematureEos():
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.PREMATURE_EOS), 1
                )
                self._eos(source, command_id)
            case LowBatteryReset():
                seq = self._log(
                    EventKind.FAULT, source, command_id, int(FaultKind.LOW_BATTERY_RESET), 1
                )
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
        """Ends a fault: motor recovery, occlusion or leak repaired, pending pocket fill
        dropped, accuracy back to the profile's, Prometra valve reset, memory errors cleared
        (service). Battery faults end only with a new pump: refused."""
        cmd = Command.CLEAR_FAULT
        s = self._s
        f = s.faults
        if kind not in self.active_faults():
            self._reject(
                cmd, command_id, source, Reason.INVALID_STATE, f"{kind.name} is not active"
            )
        if kind in (FaultKind.PREMATURE_ERI, FaultKind.PREMATURE_EOS, FaultKind.LOW_BATTERY_RESET):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_STATE,
                f"{kind.name} ends with reprogramming or replacement, not a reset",
            )
        seq = self._log(EventKind.FAULT, source, command_id, int(kind), 0)
        match kind:
            case FaultKind.MOTOR_STALL:
                self._recover(source, command_id)
            case FaultKind.CATHETER_OCCLUSION:
                f.occluded = False
            case FaultKind.CATHETER_LEAK:
                f.leak_ppm = 0
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
            case _:  # pragma: no cover - every active fault kind is handled above
                raise AssertionError(kind)
        self._settle()
        return seq

    def set_true_reservoir(self, volume_nl: int, *, source: Source = Source.CONTROL) -> int:
        """What is truly in the reservoir (trainers and tests). The pump's calculated volume is
        left alone, as on a real pump: the difference shows at the next refill. The drug and
        its concentration are unchanged. Returns the seq of its CONTROL record (a = 10)."""
        s = self._s
        if not 0 <= volume_nl <= self._profile.reservoir_nl:
            raise ValueError(f"volume_nl must be 0 .. {self._profile.reservoir_nl}")
        old = s.true_nl
        s.true_nl = volume_nl
        s.dry = volume_nl <= self._profile.empty_threshold_nl
        seq = self._log(EventKind.CONTROL, source, NO_COMMAND, CONTROL_TRUE_RESERVOIR, old)
        self._settle()
        return seq

    def log_external(
        self,
        kind: EventKind,
        source: Source,
        a: int = 0,
        b: int = 0,
        command_id: bytes = NO_COMMAND,
    ) -> int:
        """A runtime records what the pump saw outside the model (sessions, security events,
        control actions). Only those kinds are accepted."""
        if kind not in (
            EventKind.SECURITY,
            EventKind.SESSION_OPENED,
            EventKind.SESSION_CLOSED,
            EventKind.CONTROL,
        ):
            raise ValueError(f"{kind.name} records are the model's own")
        return self._log(kind, source, command_id, a, b)

    # --- validation helpers (raise Rejected, change nothing but the log) ----------------------

    def _reject(
        self,
        cmd: Command,
        command_id: bytes,
        source: Source,
        reason: Reason,
        detail: str,
        value: int = 0,
    ) -> None:
        if cmd is Command.REQUEST_PATIENT_BOLUS:
            self._log(EventKind.BOLUS_DENIED, source, command_id, int(reason), value)
        else:
            self._log(EventKind.COMMAND_REJECTED, source, command_id, int(reason), int(cmd))
        raise Rejected(reason, detail, cmd)

    def _preamble(
        self,
        cmd: Command,
        command_id: bytes,
        source: Source,
        expected_version: int | None,
        *,
        therapy: bool = True,
        post: bool = True,
    ) -> None:
        s = self._s
        if len(command_id) != 16:
            raise ValueError("command_id must be 16 bytes")
        if post and s.now < s.post_until:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.BUSY,
                f"power-on self test: retry in {s.post_until - s.now} ms",
            )
        if therapy and s.battery is BatteryState.END_OF_SERVICE:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.PUMP_STOPPED,
                "the pump is at end of service: replace it",
            )
        if expected_version is not None and expected_version != s.program_version:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.PROGRAM_VERSION_MISMATCH,
                f"program version is {s.program_version}, not {expected_version}: "
                "interrogate again",
            )

    def _require(self, cmd: Command, command_id: bytes, source: Source, cap: Capability) -> None:
        if (self._profile.capabilities & cap) != cap:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.MODE_NOT_SUPPORTED,
                f"{self._profile.name} does not support "
                f"{(cap.name or str(int(cap))).lower().replace('_', ' ')}"
                + (
                    ": its rate is fixed, the daily dose changes with the concentration at refill"
                    if self._profile.fixed_rate_nl_per_day
                    and cap
                    & (Capability.CONTINUOUS | Capability.SCHEDULE | Capability.VARIABLE_RATE)
                    else ""
                ),
            )

    def _require_drug(self, cmd: Command, command_id: bytes, source: Source) -> None:
        if self._s.drug is Drug.NONE or self._s.conc_ng_per_ml <= 0:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_STATE,
                "no drug recorded: record a refill first",
            )

    def _check_drug(
        self,
        cmd: Command,
        command_id: bytes,
        source: Source,
        drug: Drug,
        conc: int,
        unit: ConcentrationUnit,
    ) -> None:
        lim = self._library.get(drug)
        if lim is None:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.DRUG_NOT_ALLOWED,
                f"{Drug(drug).name} is not in the drug library",
            )
        elif conc <= 0 or (
            lim.max_concentration_ng_per_ml and conc > lim.max_concentration_ng_per_ml
        ):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                f"concentration must be 1 .. {lim.max_concentration_ng_per_ml} ng/mL "
                f"for {drug.name}",
            )
        if unit not in (ConcentrationUnit.MG_PER_ML, ConcentrationUnit.MCG_PER_ML):
            self._reject(cmd, command_id, source, Reason.INVALID_VALUE, "unknown unit")

    def _check_rate(
        self,
        cmd: Command,
        command_id: bytes,
        source: Source,
        rate: int,
        what: str,
        *,
        allow_below_min: bool = False,
    ) -> None:
        prof = self._profile
        lim = self._library.get(self._s.drug)
        top = prof.max_rate_nl_per_day
        if lim is not None and lim.max_rate_nl_per_day:
            top = min(top, lim.max_rate_nl_per_day)
        low = 1 if allow_below_min else prof.min_rate_nl_per_day
        if not low <= rate <= top:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.RATE_OUT_OF_RANGE,
                f"{what} {rate} nL/day is outside {low} .. {top} nL/day",
            )

    def _check_dose_limits(
        self,
        cmd: Command,
        command_id: bytes,
        source: Source,
        drug: Drug,
        dose_x1440: int,
        confirm: bool,
    ) -> None:
        lim = self._library.get(drug)
        if lim is None:
            return
        if lim.hard_limit_ng_per_day and dose_x1440 > lim.hard_limit_ng_per_day * MINUTES_PER_DAY:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.HARD_LIMIT,
                f"{dose_x1440 // MINUTES_PER_DAY} ng/day exceeds the hard limit of "
                f"{lim.hard_limit_ng_per_day} ng/day for {drug.name}",
            )
        if (
            lim.soft_limit_ng_per_day
            and not confirm
            and dose_x1440 > lim.soft_limit_ng_per_day * MINUTES_PER_DAY
        ):
            self._reject(
                cmd,
                command_id,
                source,
                Reason.SOFT_LIMIT_UNCONFIRMED,
                f"{dose_x1440 // MINUTES_PER_DAY} ng/day exceeds the soft limit of "
                f"{lim.soft_limit_ng_per_day} ng/day for {drug.name}: confirm it",
            )

    def _check_bolus_allowed(self, cmd: Command, command_id: bytes, source: Source) -> None:
        s = self._s
        critical = [r.alarm for r in s.alarms if CATALOGUE[r.alarm].critical]
        if critical:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.ALARM_ACTIVE,
                f"critical alarm raised: {critical[0].name}",
            )
        if s.awaiting_program:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_STATE,
                "the concentration changed: re-confirm the program first",
            )
        if s.suspended:
            self._reject(cmd, command_id, source, Reason.INVALID_STATE, "the pump is suspended")
        if s.bolus is not None:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_STATE,
                f"a {s.bolus.kind.name} bolus is already running",
            )

    def _check_bolus_volume(
        self, cmd: Command, command_id: bytes, source: Source, volume: int, duration: int
    ) -> None:
        s = self._s
        if volume <= 0:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INVALID_VALUE,
                "the dose is less than 1 nL at this concentration",
            )
        if volume * DAY_MS > self._profile.max_rate_nl_per_day * duration:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.RATE_OUT_OF_RANGE,
                f"{volume} nL in {duration} ms is faster than the pump's "
                f"{self._profile.max_rate_nl_per_day} nL/day",
            )
        available = s.calc_nl - self._profile.empty_threshold_nl
        if volume > available:
            self._reject(
                cmd,
                command_id,
                source,
                Reason.INSUFFICIENT_VOLUME,
                f"{volume} nL needed, {max(0, available)} nL available",
            )

    def _check_window(
        self, cmd: Command, command_id: bytes, source: Source, dose_ng: int, confirm: bool
    ) -> None:
        """The sliding-24 h cap counts everything: basal plus every bolus started in the last
        24 h plus this one (security.md 3.2, defence in depth)."""
        s = self._s
        recent = sum(d for t, d, _ in s.recent_boluses if t > s.now - DAY_MS)
        total = self._daily_dose_x1440() + (recent + dose_ng) * MINUTES_PER_DAY
        self._check_dose_limits(cmd, command_id, source, s.drug, total, confirm)

    # --- mutations ------------------------------------------------------------------------------

    def _commit(
        self,
        kind: EventKind,
        source: Source,
        command_id: bytes,
        a: int,
        b: int,
        *,
        bump: bool = True,
    ) -> Applied:
        """The tail of every applied command: bump the version, log the effect, settle."""
        if bump:
            self._s.program_version += 1
        return self._done(self._log(kind, source, command_id, a, b))

    def _done(self, seq: int) -> Applied:
        self._settle()
        return Applied(self._s.program_version, seq)

    def _log(self, kind: EventKind, source: Source, command_id: bytes, a: int, b: int) -> int:
        s = self._s
        seq = s.next_seq
        s.events.append(Event(seq, s.now + s.clock_offset_ms, kind, source, command_id, a, b))
        s.next_seq = seq + 1
        cap = self._profile.event_log_capacity
        if len(s.events) >= cap + cap // 8:  # trim in batches: amortised O(1)
            del s.events[: len(s.events) - cap]
        return seq

    def _apply_drug(
        self, drug: Drug, conc: int, unit: ConcentrationUnit, command_id: bytes, source: Source
    ) -> None:
        s = self._s
        changed = (drug, conc) != (s.drug, s.conc_ng_per_ml)
        s.drug, s.conc_ng_per_ml, s.conc_unit = Drug(drug), conc, ConcentrationUnit(unit)
        if not changed:
            return
        if self._profile.fixed_rate_nl_per_day:
            return  # the flow is fixed: the dose follows the concentration
        if s.mode is not Mode.STOPPED:
            s.mode = Mode.STOPPED
            s.steps = []
            self._log(EventKind.PROGRAM_CHANGED, Source.PUMP, command_id, int(Mode.STOPPED), 0)
        s.awaiting_program = True
        if s.patient.enabled:
            s.patient.enabled = False
            self._log(
                EventKind.PATIENT_BOLUS_SETTINGS, Source.PUMP, command_id, 0, s.patient.dose_ng
            )

    def _install(
        self,
        mode: Mode,
        dose: int,
        rate: int,
        steps: list[tuple[int, int]],
        command_id: bytes,
        source: Source,
    ) -> Applied:
        """Applies a validated new program (SET_CONTINUOUS_DOSE, SET_SCHEDULE, START_BRIDGE)."""
        s = self._s
        self._reprogrammed(command_id, source)
        if s.bolus is not None and s.bolus.kind is BolusKind.CLINICIAN_SINGLE:
            s.bolus.kind = BolusKind.CLINICIAN  # the newer program wins over "then stop"
        s.mode, s.dose_ng_per_day, s.rate_nl_per_day, s.steps = mode, dose, rate, steps
        return self._commit(
            EventKind.PROGRAM_CHANGED,
            source,
            command_id,
            int(mode),
            self._daily_dose_x1440() // MINUTES_PER_DAY,
        )

    def _reprogrammed(self, command_id: bytes, source: Source) -> None:
        """A new program clears what only reprogramming clears."""
        s = self._s
        s.awaiting_program = False
        s.suspended = False
        if s.safe_mode:
            s.safe_mode = False
            self._resolve(Alarm.LOW_BATTERY_RESET, source, command_id)
        self._resolve(Alarm.CRITICAL_MEMORY_ERROR, source, command_id)

    def _start_bolus(
        self,
        kind: BolusKind,
        dose: int,
        volume: int,
        duration: int,
        command_id: bytes,
        source: Source,
    ) -> int:
        s = self._s
        s.bolus = BolusRun(kind, dose, volume, s.now, duration, 0, command_id)
        cutoff = s.now - DAY_MS
        s.recent_boluses = [r for r in s.recent_boluses if r[0] > cutoff]
        if kind is not BolusKind.PRIMING:
            s.recent_boluses.append((s.now, dose, kind))
        return self._log(EventKind.BOLUS_STARTED, source, command_id, int(kind), dose)

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
            kind = EventKind.BOLUS_CANCELLED
        else:
            kind = EventKind.BOLUS_COMPLETED
        seq = self._log(
            kind,
            source,
            command_id if cancelled else b.command_id,
            int(b.kind),
            b.dose_ng if not cancelled else delivered_ng,
        )
        if b.kind is BolusKind.CLINICIAN_SINGLE and not cancelled:
            s.mode = Mode.STOPPED
            s.steps = []
            self._log(EventKind.PROGRAM_CHANGED, Source.PUMP, b.command_id, int(Mode.STOPPED), 0)
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

    # --- alarms -------------------------------------------------------------------------------

    def _find(self, alarm: Alarm) -> AlarmRecord | None:
        for r in self._s.alarms:
            if r.alarm is alarm:
                return r
        return None

    def _raise(self, alarm: Alarm, source: Source, command_id: bytes) -> None:
        if not alarm & self._profile.alarms:
            return
        s = self._s
        r = self._find(alarm)
        if r is not None:
            if not r.condition:  # a latched alarm whose cause came back
                r.condition = True
                r.state = AlarmState.ACTIVE
            return
        spec = CATALOGUE[alarm]
        s.alarms.append(AlarmRecord(alarm, s.now, True, AlarmState.ACTIVE, 0, s.now))
        self._log(EventKind.ALARM_RAISED, Source.PUMP, command_id, int(alarm), int(spec.priority))
        if spec.critical and s.bolus is not None:  # GIP 3.1.3: an error cancels the bolus
            self._end_bolus(cancelled=True, source=Source.PUMP, command_id=command_id)

    def _resolve(
        self, alarm: Alarm, source: Source, command_id: bytes, *, force: bool = False
    ) -> None:
        r = self._find(alarm)
        if r is None:
            return
        if CATALOGUE[alarm].latching and not force and r.state is not AlarmState.ACKNOWLEDGED:
            r.condition = False
            return
        self._remove_alarm(r, source, command_id)

    def _remove_alarm(self, r: AlarmRecord, source: Source, command_id: bytes) -> None:
        self._s.alarms.remove(r)
        self._log(EventKind.ALARM_CLEARED, source, command_id, int(r.alarm), 0)

    def _repeat(self, alarm: Alarm) -> int:
        s = self._s
        return s.critical_repeat_ms if CATALOGUE[alarm].critical else s.noncritical_repeat_ms

    def _sounding(self) -> AlarmRecord | None:
        """Only the highest-priority audible alarm sounds (oldest first among equals)."""
        best = None
        for r in self._s.alarms:
            if r.state is not AlarmState.ACTIVE:
                continue
            if best is None or (CATALOGUE[r.alarm].priority, -r.raised_at) > (
                CATALOGUE[best.alarm].priority,
                -best.raised_at,
            ):
                best = r
        return best

    # --- the clock's work -----------------------------------------------------------------------

    def _flowing(self) -> bool:
        s = self._s
        f = s.faults
        return (
            (self._basal is not None or s.bolus is not None)
            and not f.stalled
            and not f.occluded
            and not f.valve_closed
            and not s.dry
        )

    def _halted(self) -> bool:
        """The pump itself has stopped delivering (it knows: its calculated volume stops)."""
        s = self._s
        if s.drug is Drug.NONE or s.battery is BatteryState.END_OF_SERVICE:
            return True
        for r in s.alarms:
            if r.alarm in (Alarm.EMPTY_RESERVOIR, Alarm.CRITICAL_MEMORY_ERROR):
                return True
        return False

    def _replan(self) -> None:
        """Recompute the basal rate function after any change of state."""
        s = self._s
        self._next = None
        basal: RateProfile | None = None
        priming = s.bolus is not None and s.bolus.kind is BolusKind.PRIMING
        if not (s.mode is Mode.STOPPED or s.suspended or priming or self._halted()):
            if s.safe_mode:
                basal = self._constant(self._profile.safe_rate_nl_per_day)
            elif s.mode is Mode.SCHEDULE:
                basal = self._schedule_profile()
            elif s.mode is Mode.BRIDGE:
                basal = self._constant(s.bridge_rate_nl_per_day)
            else:
                basal = self._constant(s.rate_nl_per_day)
        self._basal = basal

    def _cache(self, key: tuple[object, ...], prof: RateProfile) -> None:
        # Bounded. Clearing everything at once also drops every id()-keyed entry together with
        # the profiles it names, so an id can never be reused while a key still points to it.
        if len(self._step_cache) >= 256:
            self._step_cache.clear()
        self._step_cache[key] = prof

    def _schedule_profile(self) -> RateProfile:
        s = self._s
        key = (s.conc_ng_per_ml, *s.steps)
        prof = self._step_cache.get(key)
        if prof is None:
            prof = RateProfile.steps([(m, self._rate_for(d, s.conc_ng_per_ml)) for m, d in s.steps])
            self._cache(key, prof)
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

    def _settle(self) -> None:
        """Apply every condition due at the current time, until nothing changes."""
        s = self._s
        prof = self._profile
        now = s.now
        for _ in range(16):
            self._replan()
            before = (s.next_seq, len(s.alarms))
            b = s.bolus
            if b is not None and b.end_ms <= now:
                self._end_bolus(cancelled=False, source=Source.PUMP, command_id=NO_COMMAND)
            if s.mode is Mode.BRIDGE and s.bridge_left_nl <= 0:
                s.mode = Mode.CONTINUOUS
                self._log(
                    EventKind.PROGRAM_CHANGED,
                    Source.PUMP,
                    NO_COMMAND,
                    int(Mode.CONTINUOUS),
                    s.dose_ng_per_day,
                )
            f = s.faults
            if f.stalled and f.stall_recover_at and f.stall_recover_at <= now:
                self._recover(Source.PUMP, NO_COMMAND)
            if s.drug is not Drug.NONE:
                if s.calc_nl <= prof.empty_threshold_nl:
                    self._raise(Alarm.EMPTY_RESERVOIR, Source.PUMP, NO_COMMAND)
                else:
                    self._resolve(Alarm.EMPTY_RESERVOIR, Source.PUMP, NO_COMMAND)
                if s.calc_nl <= s.low_threshold_nl:
                    self._raise(Alarm.LOW_RESERVOIR, Source.PUMP, NO_COMMAND)
                else:
                    self._resolve(Alarm.LOW_RESERVOIR, Source.PUMP, NO_COMMAND)
            bat = prof.battery
            if bat is not None:
                if s.battery is BatteryState.OK and (
                    s.battery_used_bu >= bat.eri_used_bu or now >= self._service_end()
                ):
                    self._eri(Source.PUMP, NO_COMMAND)
                if s.battery is BatteryState.ELECTIVE_REPLACEMENT and now >= s.eos_at:
                    self._eos(Source.PUMP, NO_COMMAND)
            stopped = (
                s.drug is not Drug.NONE
                and (s.mode is Mode.STOPPED or s.suspended)
                and s.bolus is None
                and s.battery is not BatteryState.END_OF_SERVICE
            )
            if not stopped:
                s.stopped_since = -1
                self._resolve(Alarm.PUMP_STOPPED, Source.PUMP, NO_COMMAND)
            elif s.stopped_since < 0:
                s.stopped_since = now
            elif now >= s.stopped_since + STOPPED_ALARM_MS:
                self._raise(Alarm.PUMP_STOPPED, Source.PUMP, NO_COMMAND)
            for r in s.alarms:
                if r.state is AlarmState.SILENCED and r.silenced_until <= now:
                    r.state = AlarmState.ACTIVE
                    r.silenced_until = 0
            sounding = self._sounding()
            if sounding is not None and sounding.next_tone_at <= now:
                s.tones_sounded += 1
                s.last_tone_at = now
                s.last_tone = CATALOGUE[sounding.alarm].tone
                sounding.next_tone_at = now + self._repeat(sounding.alarm)
            if (s.next_seq, len(s.alarms)) == before:
                break
        self._replan()

    def _service_end(self) -> int:
        bat = self._profile.battery
        return NEVER if bat is None else self._s.implanted_at + bat.service_life_ms

    def _next_internal(self) -> int:
        if self._next is not None:
            return self._next
        s = self._s
        now = s.now
        prof = self._profile
        t = NEVER
        b = s.bolus
        if b is not None:
            t = min(t, b.end_ms)
        f = s.faults
        if f.stalled and f.stall_recover_at:
            t = min(t, f.stall_recover_at)
        if (
            s.stopped_since >= 0
            and prof.alarms & Alarm.PUMP_STOPPED
            and not self.active_alarms & Alarm.PUMP_STOPPED
        ):
            t = min(t, s.stopped_since + STOPPED_ALARM_MS)
        for r in s.alarms:
            if r.state is AlarmState.SILENCED:
                t = min(t, r.silenced_until)
        if now < s.post_until:
            t = min(t, s.post_until)
        bat = prof.battery
        if bat is not None:
            if s.battery is BatteryState.OK:
                t = min(t, self._service_end())
            elif s.battery is BatteryState.ELECTIVE_REPLACEMENT:
                t = min(t, s.eos_at)
        # volume thresholds: only when something is delivering before t
        if self._basal is not None or b is not None:
            if s.mode is Mode.BRIDGE:
                x = self._program_reach(s.bridge_left_nl, t)
                if x is not None:
                    t = min(t, x)
            if s.drug is not Drug.NONE:
                for thr in (s.low_threshold_nl, prof.empty_threshold_nl):
                    if s.calc_nl > thr:
                        x = self._program_reach(s.calc_nl - thr, t)
                        if x is not None:
                            t = min(t, x)
            if not s.dry and not f.stalled and not f.occluded and not f.valve_closed:
                need_true = s.true_nl - prof.empty_threshold_nl
                if need_true > 0:
                    p = -(-(need_true * PPM - s.true_carry) // (PPM + f.error_ppm))
                    x = self._program_reach(p, t)
                    if x is not None:
                        t = min(t, x)
            if bat is not None and s.battery is BatteryState.OK:
                x = self._battery_reach(bat.eri_used_bu - s.battery_used_bu, t)
                if x is not None:
                    t = min(t, x)
        elif bat is not None and s.battery is BatteryState.OK:
            x = self._battery_reach(bat.eri_used_bu - s.battery_used_bu, t)
            if x is not None:
                t = min(t, x)
        self._next = t
        return t

    def _program_volume(self, x: int) -> int:
        """Program volume delivered from now to model time x, with no state change between."""
        s = self._s
        vol = 0
        if self._basal is not None:
            off = s.clock_offset_ms
            vol = (s.basal_carry + self._basal.integral(s.now + off, x + off)) // DAY_MS
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
            off = s.clock_offset_ms
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

        if used(bound) < need:
            return None
        lo, hi = s.now, bound
        while lo < hi:
            mid = (lo + hi) // 2
            if used(mid) >= need:
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
        if self._basal is not None:
            off = s.clock_offset_ms
            p, s.basal_carry = divmod(
                s.basal_carry + self._basal.integral(s.now + off, x + off), DAY_MS
            )
        b = s.bolus
        if b is not None:
            due = b.due_at(x)
            p += due - b.delivered_nl
            b.delivered_nl = due
        bat = self._profile.battery
        if bat is not None and s.battery is not BatteryState.END_OF_SERVICE:
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
            room = s.calc_nl - self._profile.empty_threshold_nl
            if p > room:
                p = max(0, room)
            s.calc_nl -= p
            s.program_total_nl += p
            if s.mode is Mode.BRIDGE:
                s.bridge_left_nl = max(0, s.bridge_left_nl - p)
            f = s.faults
            if not (f.stalled or f.occluded or f.valve_closed or s.dry):
                pumped, s.true_carry = divmod(p * (PPM + f.error_ppm) + s.true_carry, PPM)
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
        if cath and cath[-1].conc_ng_per_ml == s.true_conc_ng_per_ml:
            cath[-1].volume_nl += pumped
        else:
            cath.append(Segment(pumped, s.true_conc_ng_per_ml))
        out = pumped
        leak = s.faults.leak_ppm
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
        if s.mode is Mode.STOPPED:
            return 0
        if self._profile.fixed_rate_nl_per_day:
            return self._fixed_daily_dose_x1440(s.conc_ng_per_ml)
        if s.mode is Mode.SCHEDULE:
            return _schedule_x1440(s.steps)
        return s.dose_ng_per_day * MINUTES_PER_DAY

    def _daily_volume_nl(self) -> int:
        return 0 if self._basal is None else self._basal.day_total // DAY_MS

    def _battery_permille(self) -> int:
        bat = self._profile.battery
        if bat is None:
            return 1000
        left = max(0, bat.capacity_bu - self._s.battery_used_bu)
        return left * 1000 // bat.capacity_bu

    def _eri_prediction(self) -> int | None:
        s = self._s
        bat = self._profile.battery
        if bat is None:
            return None
        if s.eri_at >= 0:
            return s.eri_at
        per_day = bat.idle_bu_per_ms * DAY_MS + bat.bu_per_nl * self._daily_volume_nl()
        need = bat.eri_used_bu - s.battery_used_bu
        return min(s.now + -(-need * DAY_MS // per_day), self._service_end())

    def _predict(self, threshold: int) -> int | None:
        """Model time at which the calculated volume reaches `threshold`, integrating the
        running bolus, the bridge, the schedule and, if patient boluses are enabled, every
        allotted bolus taken (spread evenly: domain.md 2.7). None: never, as programmed."""
        s = self._s
        if s.drug is Drug.NONE:
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
        off = s.clock_offset_ms
        t = s.now
        acc = s.basal_carry  # nL*ms/day
        basal = self._basal
        b = s.bolus
        if b is not None:
            left = b.volume_nl - b.delivered_nl
            end = b.end_ms
            got = (
                acc + (basal.integral(t + off, end + off) if basal else 0) + extra * (end - t)
            ) // DAY_MS + left
            if got >= need:
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
            acc += (basal.integral(t + off, end + off) if basal else 0) + extra * (end - t)
            acc += left * DAY_MS
            t = end
            if b.kind is BolusKind.PRIMING and s.mode is not Mode.STOPPED and not s.suspended:
                basal = self._program_profile()
            elif b.kind is BolusKind.CLINICIAN_SINGLE:
                basal = None
        if s.mode is Mode.BRIDGE and basal is not None and s.bridge_left_nl > 0:
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
        if s.mode is Mode.SCHEDULE:
            return self._schedule_profile()
        if s.mode is Mode.BRIDGE:
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
