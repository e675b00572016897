"""The interrogation summary: everything a clinician reviews at the start of a session, read
in one go (`Pump.interrogate()`), with the dates a summary screen shows (0 on the wire: None)."""

from __future__ import annotations

import dataclasses

import protocol as p

from ._zone import LocalClock


@dataclasses.dataclass(frozen=True)
class Interrogation:
    """Everything a clinician reviews at the start of a session, read in one go."""

    device: p.DeviceInfo
    status: p.Status
    drug: p.DrugInfo | None  # None in a patient session
    program: p.Program | None  # None in a patient session
    patient_bolus: p.PatientBolusSettings
    alarms: tuple[p.AlarmEntry, ...]
    alarm_settings: p.AlarmSettings | None  # None in a patient session
    clock: p.Clock
    local_clock: LocalClock | None = None  # None: a 1.0 pump (schedules on UTC)

    @property
    def battery(self) -> p.BatteryState:
        return self.status.battery

    @property
    def last_refill_at_ms(self) -> int | None:
        return self.status.last_refill_at_ms or None

    @property
    def low_reservoir_at_ms(self) -> int | None:
        return self.status.low_reservoir_at_ms or None

    @property
    def empty_at_ms(self) -> int | None:
        return self.status.empty_at_ms or None

    @property
    def replacement_due_at_ms(self) -> int | None:
        return self.status.replacement_due_at_ms or None
