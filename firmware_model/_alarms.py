"""Alarms: the catalogue (domain.md section 3) as data, one row per alarm the model can raise, and
the alarm logic: raising, resolving (latching alarms stay until acknowledged), acknowledging,
silencing, the alarm settings, which alarm sounds and its tones, the alarm test.

A new alarm: an `Alarm` bit (_types.py), its row in CATALOGUE below, and its profile's `alarms`
mask (_profiles.py); its cause calls `_raise` / `_resolve` where the condition starts and ends
(usually `_settle` in _clock.py, or the fault that causes it in _faults.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._command import Cmd, CommandMixin
from ._core import MAX_SILENCE_MS
from ._state import NO_COMMAND, AlarmRecord, AlarmView, Applied
from ._types import (
    DAY_MS,
    Alarm,
    AlarmState,
    ClearedBy,
    Command,
    EventKind,
    Priority,
    Reason,
    Source,
    Tone,
)


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    alarm: Alarm
    critical: bool  # critical = two-tone, drug no longer flowing (domain #6)
    priority: Priority  # IEC 60601-1-8 mapping (a design choice, domain.md section 3)
    stops_delivery: bool
    latching: bool  # stays raised after its cause ends, until acknowledged
    cleared_by: ClearedBy
    description: str

    @property
    def tone(self) -> Tone:
        return Tone.TWO_TONE if self.critical else Tone.SINGLE_TONE


def _spec(
    alarm: Alarm,
    critical: bool,
    priority: Priority,
    stops: bool,
    latching: bool,
    cleared_by: ClearedBy,
    description: str,
) -> AlarmSpec:
    return AlarmSpec(alarm, critical, priority, stops, latching, cleared_by, description)


H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW

_NO_ALARMS = Alarm(0)

CATALOGUE: dict[Alarm, AlarmSpec] = {
    s.alarm: s
    for s in (
        _spec(
            Alarm.LOW_RESERVOIR,
            False,
            M,
            False,
            False,
            ClearedBy.REFILL,
            "Calculated volume at or below the low-reservoir threshold.",
        ),
        _spec(
            Alarm.EMPTY_RESERVOIR,
            True,
            H,
            True,
            False,
            ClearedBy.REFILL,
            "Calculated volume at the empty threshold: delivery stopped.",
        ),
        _spec(
            Alarm.ELECTIVE_REPLACEMENT,
            False,
            L,
            False,
            False,
            ClearedBy.REPLACEMENT,
            "Battery at the elective replacement indicator: end of service in 90 days.",
        ),
        _spec(
            Alarm.END_OF_SERVICE,
            True,
            H,
            True,
            False,
            ClearedBy.REPLACEMENT,
            "End of service: the pump has stopped for good.",
        ),
        _spec(
            Alarm.LOW_BATTERY_RESET,
            True,
            H,
            False,
            False,
            ClearedBy.REPROGRAM,
            "Battery voltage collapsed and the pump reset: rate forced to the safe minimum.",
        ),
        _spec(
            Alarm.MOTOR_STALL,
            True,
            H,
            True,
            True,
            ClearedBy.CONDITION,
            "The motor does not turn: no drug flows. Latched until acknowledged.",
        ),
        _spec(
            Alarm.PUMP_STOPPED,
            True,
            H,
            False,
            False,
            ClearedBy.CONDITION,
            "The pump has been in stopped mode for more than 48 h.",
        ),
        _spec(
            Alarm.CRITICAL_MEMORY_ERROR,
            True,
            H,
            True,
            False,
            ClearedBy.REPROGRAM,
            "Critical data corrupt: delivery stopped until the pump is reprogrammed.",
        ),
        _spec(
            Alarm.NONCRITICAL_MEMORY_ERROR,
            False,
            L,
            False,
            False,
            ClearedBy.ACKNOWLEDGE,
            "Non-critical data (such as the log) corrupt.",
        ),
        _spec(
            Alarm.FLOW_VALVE_CLOSED,
            True,
            H,
            True,
            False,
            ClearedBy.RESET,
            "Flow-activated valve closed by a magnetic field: no flow until reset.",
        ),
        _spec(
            Alarm.DOWNSTREAM_OCCLUSION,
            True,
            H,
            True,
            False,
            ClearedBy.CONDITION,
            "External pump: downstream pressure high (kinked line, closed clamp, blocked "
            "catheter): no flow until the line is cleared.",
        ),
        _spec(
            Alarm.AIR_IN_LINE,
            True,
            H,
            True,
            False,
            ClearedBy.CONDITION,
            "External pump: air at the air detector: the pump stops until the line is re-primed.",
        ),
        _spec(
            Alarm.EXTERNAL_BATTERY_LOW,
            False,
            M,
            False,
            False,
            ClearedBy.CONDITION,
            "External pump: its cells are low: replace them (delivery goes on meanwhile).",
        ),
    )
}


# --- the alarm logic ----------------------------------------------------------------------------


class AlarmsMixin(CommandMixin):
    """Raised alarms (`State.alarms`) and the commands that act on them."""

    __slots__ = ()

    @property
    def alarm_settings(self) -> tuple[int, int, int]:
        s = self._s
        return s.low_threshold_nl, s.critical_repeat_ms, s.noncritical_repeat_ms

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

    @property
    def active_alarms(self) -> Alarm:
        if not self._s.alarms:
            return _NO_ALARMS
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
        c = self._begin(
            Command.SET_ALARM_SETTINGS, command_id, source, expected_version, therapy=False
        )
        prof = self._profile
        if not prof.empty_threshold_nl <= low_threshold_nl < prof.reservoir_nl:
            c.reject(
                Reason.INVALID_VALUE,
                f"low-reservoir threshold must be {prof.empty_threshold_nl} .. "
                f"{prof.reservoir_nl - 1} nL",
            )
        if not (
            60_000 <= critical_repeat_ms <= DAY_MS and 60_000 <= noncritical_repeat_ms <= DAY_MS
        ):
            c.reject(Reason.INVALID_VALUE, "repeat intervals must be 60000 .. 86400000 ms")
        s = self._s
        s.low_threshold_nl = low_threshold_nl
        s.critical_repeat_ms = critical_repeat_ms
        s.noncritical_repeat_ms = noncritical_repeat_ms
        return c.commit(EventKind.ALARM_SETTINGS, low_threshold_nl, critical_repeat_ms)

    def acknowledge_alarms(
        self, alarms: Alarm, *, command_id: bytes = NO_COMMAND, source: Source = Source.PROGRAMMER
    ) -> Applied:
        """Indefinite silence for these alarms. A latched alarm whose cause has ended, and an
        alarm cleared by acknowledgement, is cleared."""
        c = self._begin(
            Command.ACKNOWLEDGE_ALARMS, command_id, source, None, therapy=False, post=False
        )
        s = self._s
        hit = [r for r in s.alarms if r.alarm & alarms]
        mask = self._mark(c, alarms, hit, AlarmState.ACKNOWLEDGED, "none of these alarms is raised")
        seq = c.log(EventKind.ALARM_ACKNOWLEDGED, int(mask), 0)
        for r in hit:
            if not r.condition or CATALOGUE[r.alarm].cleared_by is ClearedBy.ACKNOWLEDGE:
                self._remove_alarm(r, source, command_id)
        return c.done(seq)

    def silence_alarms(
        self,
        alarms: Alarm,
        duration_ms: int,
        *,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Pauses the audible signal; it returns after duration_ms if the alarm is still raised."""
        c = self._begin(Command.SILENCE_ALARMS, command_id, source, None, therapy=False, post=False)
        s = self._s
        if not 1_000 <= duration_ms <= MAX_SILENCE_MS:
            c.reject(Reason.INVALID_VALUE, f"silence duration must be 1000 .. {MAX_SILENCE_MS} ms")
        hit = [r for r in s.alarms if r.alarm & alarms and r.state is not AlarmState.ACKNOWLEDGED]
        mask = self._mark(
            c, alarms, hit, AlarmState.SILENCED, "none of these alarms is raised and unacknowledged"
        )
        for r in hit:
            r.silenced_until = s.now + duration_ms
        until = s.now + duration_ms + s.clock_offset_ms
        return c.commit(EventKind.ALARM_SILENCED, int(mask), until, bump=False)

    def _mark(
        self, c: Cmd, alarms: Alarm, hit: list[AlarmRecord], state: AlarmState, none: str
    ) -> Alarm:
        """Refuses if no alarm is hit, else moves each to `state`: the mask of those hit."""
        if not alarms or not hit:
            c.reject(Reason.INVALID_STATE, none)
        mask = Alarm(0)
        for r in hit:
            mask |= r.alarm
            r.state = state
        return mask

    def alarm_test(
        self, tone: Tone, *, command_id: bytes = NO_COMMAND, source: Source = Source.PROGRAMMER
    ) -> Applied:
        """Sounds a tone so the patient learns it; delivery and alarms are untouched."""
        c = self._begin(Command.ALARM_TEST, command_id, source, None, therapy=False)
        s = self._s
        s.tones_sounded += 1
        s.last_tone_at = s.now
        s.last_tone = Tone(tone)
        return c.commit(EventKind.ALARM_TEST, int(tone), 0, bump=False)

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
