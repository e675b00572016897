"""The alarm catalogue (domain.md section 3) as data: one row per alarm the model can raise."""

from __future__ import annotations

from dataclasses import dataclass

from ._types import Alarm, ClearedBy, Priority, Tone


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
    )
}
