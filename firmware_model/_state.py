"""The pump's complete mutable state, as plain dataclasses, and the public read-only views.

Everything the pump knows lives in `State`; a snapshot is exactly this tree (see _snapshot.py),
so restoring one gives an identical model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._fast import frozen_maker
from ._types import (
    Alarm,
    AlarmState,
    BatteryState,
    BolusKind,
    ConcentrationUnit,
    Drug,
    EventKind,
    Mode,
    Priority,
    Source,
    Tone,
)

NO_COMMAND = b"\x00" * 16


@dataclass(frozen=True, slots=True)
class Event:
    """One event-log record. `time_ms` is the pump clock; `a` and `b` depend on `kind`."""

    seq: int
    time_ms: int
    kind: EventKind
    source: Source
    command_id: bytes
    a: int
    b: int

    def pack(self) -> bytes:
        return b"".join(
            (
                self.seq.to_bytes(4, "big"),
                self.time_ms.to_bytes(8, "big", signed=True),
                int(self.kind).to_bytes(2, "big"),
                int(self.source).to_bytes(1, "big"),
                self.command_id,
                self.a.to_bytes(8, "big", signed=True),
                self.b.to_bytes(8, "big", signed=True),
            )
        )


# The frozen records built on the model's hot path (a log record per event, a patient bolus
# grant) are built by `frozen_maker` (_fast.py): equal to the record's own constructor (same
# type, hash, repr, pickle, still frozen) at a third of the cost.
new_event = frozen_maker(Event)


@dataclass(slots=True)
class BolusRun:
    kind: BolusKind
    dose_ng: int
    volume_nl: int
    start_ms: int  # model time
    duration_ms: int
    delivered_nl: int  # by the pump's count (program volume)
    command_id: bytes

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    def due_at(self, t: int) -> int:
        """Program volume this bolus has delivered by model time t (floor, exact at the end)."""
        if t >= self.start_ms + self.duration_ms:
            return self.volume_nl
        return self.volume_nl * (t - self.start_ms) // self.duration_ms


@dataclass(slots=True)
class PatientBolus:
    enabled: bool = False
    dose_ng: int = 0
    duration_ms: int = 600_000
    lockout_ms: int = 3_600_000
    max_per_24h: int = 0


@dataclass(slots=True)
class AlarmRecord:
    alarm: Alarm
    raised_at: int  # model time
    condition: bool  # the cause is still present (latched alarms outlive it)
    state: AlarmState
    silenced_until: int  # model time; 0 when not silenced
    next_tone_at: int  # model time


@dataclass(slots=True)
class Faults:
    stalled: bool = False
    stall_recover_at: int = 0  # model time; 0 = no automatic recovery
    stall_started_at: int = 0
    occluded: bool = False
    leak_ppm: int = 0
    pocket_fill_nl: int = 0  # applied to the next refill
    valve_closed: bool = False
    error_ppm: int = 0
    # partial obstructions of the catheter (_catheter.py): share of the flow held back, ppm
    kink_ppm: int = 0
    granuloma_ppm: int = 0  # now: granuloma_from_ppm, stepping once a day to granuloma_to_ppm
    granuloma_from_ppm: int = 0
    granuloma_to_ppm: int = 0
    granuloma_days: int = 0
    granuloma_since: int = -1  # model time it started; -1 = none
    granuloma_steps: int = 0  # daily steps taken so far (0 .. granuloma_days)
    restriction_carry: int = 0  # obstruction-scaled remainder, in 1e-6 nL


@dataclass(slots=True)
class Segment:
    """A slug of fluid in the catheter: its volume and drug concentration."""

    volume_nl: int
    conc_ng_per_ml: int


@dataclass(slots=True)
class State:
    serial: int
    now: int  # model time, ms: monotonic, handed in by the runtime
    clock_offset_ms: int  # pump clock = now + clock_offset_ms
    implanted_at: int  # model time
    post_until: int  # model time: commands answered BUSY before this
    # the clinic's clock, set with the pump clock (set_clock): local = pump clock + utc_offset_ms.
    # The pump keeps both until the next sync; it has no tz database and never follows DST itself.
    utc_offset_ms: int = 0  # whole minutes, -18 h .. +18 h
    zone: str = "UTC"  # IANA name, for display only
    # drug
    drug: Drug = Drug.NONE
    conc_ng_per_ml: int = 0
    conc_unit: ConcentrationUnit = ConcentrationUnit.MG_PER_ML
    # program
    mode: Mode = Mode.STOPPED
    suspended: bool = False
    awaiting_program: bool = False  # after a concentration change
    safe_mode: bool = False  # low-battery reset: safe minimum rate
    dose_ng_per_day: int = 0  # CONTINUOUS / BRIDGE target
    rate_nl_per_day: int = 0  # CONTINUOUS rate (BRIDGE: the rate after the bridge)
    steps: list[tuple[int, int]] = field(default_factory=list)  # (start minute, ng/day)
    bridge_rate_nl_per_day: int = 0
    bridge_left_nl: int = 0  # dead volume still to flush at the old concentration's rate
    program_version: int = 1
    bolus: BolusRun | None = None
    patient: PatientBolus = field(default_factory=PatientBolus)
    recent_boluses: list[tuple[int, int, BolusKind]] = field(default_factory=list)
    last_patient_bolus_at: int = -1  # model time; -1 = never
    stopped_since: int = -1  # model time; -1 = not in stopped mode
    # reservoir: the pump's belief and the truth
    calc_nl: int = 0
    true_nl: int = 0
    true_conc_ng_per_ml: int = 0
    dry: bool = False  # true volume at the empty threshold: nothing can flow
    filled_nl: int = 0  # calculated volume right after the last refill
    last_refill_at: int = -1  # pump clock; -1 = never
    low_threshold_nl: int = 0
    basal_carry: int = 0  # nL*ms/day not yet a whole nanolitre
    true_carry: int = 0  # accuracy-scaled remainder, in 1e-6 nL
    leak_carry: int = 0
    program_total_nl: int = 0  # by the pump's count, since power-on
    pumped_total_nl: int = 0  # truly out of the reservoir
    patient_total_nl: int = 0  # truly into the intrathecal space
    patient_dose_fg: int = 0  # drug mass into the intrathecal space (1 fg = 1e-6 ng)
    catheter: list[Segment] = field(default_factory=list)  # first = the catheter tip
    # battery
    battery_used_bu: int = 0
    battery: BatteryState = BatteryState.OK
    eri_at: int = -1  # model time
    eos_at: int = -1  # model time
    telemetry_frames: int = 0
    # alarms
    alarms: list[AlarmRecord] = field(default_factory=list)
    critical_repeat_ms: int = 600_000  # [U] domain #44
    noncritical_repeat_ms: int = 3_600_000  # domain #5
    tones_sounded: int = 0
    last_tone_at: int = -1
    last_tone: Tone | None = None
    faults: Faults = field(default_factory=Faults)
    # event log
    next_seq: int = 1
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Applied:
    """A command was applied: the program version after it and the seq of its log record."""

    program_version: int
    event_seq: int


@dataclass(frozen=True, slots=True)
class RefillReport:
    program_version: int
    event_seq: int
    expected_residual_nl: int
    withdrawn_nl: int
    discrepancy_nl: int  # withdrawn - expected (+ = under-delivery)
    delivery_ratio_ppm: int | None  # (filled - withdrawn) / (filled - expected); None if 0/0
    beyond_limits: bool  # |discrepancy| over the profile limit or ratio beyond +-14.5 %
    reservoir_volume_nl: int
    low_reservoir_at_ms: int | None  # pump clock
    empty_at_ms: int | None


@dataclass(frozen=True, slots=True)
class PatientBolusGranted:
    event_seq: int
    dose_ng: int
    volume_nl: int
    ends_at_ms: int  # pump clock
    lockout_ends_at_ms: int
    boluses_left: int
    refill_due_at_ms: int | None  # low-reservoir date, every allotted bolus assumed


new_grant = frozen_maker(PatientBolusGranted)


@dataclass(frozen=True, slots=True)
class AlarmView:
    alarm: Alarm
    critical: bool
    priority: Priority
    state: AlarmState
    condition: bool
    raised_at_ms: int  # pump clock
    silenced_until_ms: int  # pump clock; 0 when not silenced
    repeat_interval_ms: int
    sounding: bool
