"""What the whole message catalogue shares: its limits, the direction shorthands, and the
fixed-size records (`ScheduleStep`, `AlarmEntry`, `EventRecord`) that messages carry as array
items. The limits bound the declared ranges (a typo in a dose cannot wrap around) and are part of
the wire contract: docs/protocol.md shows each field's range. Part of the catalogue assembled in
`_messages.py`.
"""

from __future__ import annotations

from ._enums import Alarm, AlarmPriority, AlarmState, EventSource
from ._errors import FieldValueError
from ._rules import rules, single_bit
from ._schema import (
    Direction,
    Record,
    blob,
    boolean,
    enum8,
    flags32,
    i64,
    record,
    timestamp,
    u16,
    u32,
)

H2P = Direction.HOST_TO_PUMP
P2H = Direction.PUMP_TO_HOST

MAX_VOLUME_NL = 100_000_000  # 100 mL: above every reservoir, so a typo cannot wrap around
MAX_UTC_OFFSET_MS = (
    18 * 3_600_000
)  # the widest UTC offset a pump accepts (real ones: -12 h .. +14 h)
ZONE_NAME_MAX = 64  # bytes of an IANA zone name (the longest real one has 32)
MAX_DOSE_NG = 4_000_000_000
MAX_RATE_NL_PER_DAY = 4_000_000_000
DAY_MS = 86_400_000
MAX_SCHEDULE_STEPS = 48
MAX_EVENTS_PER_PAGE = 16
MAX_ALARMS = 16
MAX_DETAIL_BYTES = 200


# --- records (array items) ---------------------------------------------------------------------


@record
class ScheduleStep(Record):
    start_minute: int = u16(
        "Minute of the day (pump clock) at which this step starts; it runs until the next "
        "step's start (the last one until midnight).",
        unit="min",
        max=1439,
    )
    dose_ng_per_day: int = u32(
        "Dose rate of this step, expressed per 24 h.", unit="ng/day", max=MAX_DOSE_NG
    )


@record
class AlarmEntry(Record):
    alarm: Alarm = flags32(Alarm, "The alarm condition (exactly one bit).")
    critical: bool = boolean("1 for a critical (two-tone) alarm, 0 for non-critical.")
    priority: AlarmPriority = enum8(AlarmPriority, "IEC 60601-1-8 priority.")
    state: AlarmState = enum8(
        AlarmState, "Whether the audible signal is active, paused or acknowledged."
    )
    raised_at_ms: int = timestamp("When the condition was raised.")
    silenced_until_ms: int = timestamp("End of the audio pause; 0 when not silenced.")
    repeat_interval_ms: int = u32("Interval between tone repetitions.", unit="ms")

    @rules(single_bit("alarm"))
    def _check(self) -> None:
        """`alarm` has exactly one bit set."""
        if self.alarm == 0 or self.alarm & (self.alarm - 1):
            raise FieldValueError("ALARM_ENTRY", "alarm", "must name exactly one alarm")


@record
class EventRecord(Record):
    seq: int = u32("Event sequence number: contiguous, starting at 1.", min=1)
    time_ms: int = timestamp("When the event happened.")
    kind: int = u16("Event kind (see the EventKind table; unknown kinds are shown raw).")
    source: EventSource = enum8(EventSource, "Who caused the event.")
    command_id: bytes = blob(16, "The command that caused the event; zeros if none.")
    value_a: int = i64("First kind-specific value (the event-record table, section 19).")
    value_b: int = i64("Second kind-specific value (the event-record table, section 19).")
