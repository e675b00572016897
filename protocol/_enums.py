"""Enumerations carried on the wire. Values are part of protocol v1 and never change meaning."""

from __future__ import annotations

import enum


class Role(enum.IntEnum):
    """Who holds the session key: each pump has one independent 32-byte key per role."""

    CLINICIAN = 1
    PATIENT = 2


class PumpModel(enum.IntEnum):
    SYNCHROMED_II_20 = 1
    SYNCHROMED_II_40 = 2
    PROMETRA_II_20 = 3
    PROMETRA_II_40 = 4
    CONSTANT_FLOW = 5
    EXTERNAL_TRIAL = 6  # external ambulatory pump on a trial catheter (before an implant)


class Capability(enum.IntFlag):
    """What a pump model supports (DEVICE_INFO.supported_modes)."""

    CONTINUOUS = 0x01
    SCHEDULE = 0x02
    CLINICIAN_BOLUS = 0x04
    PATIENT_BOLUS = 0x08
    PRIMING_BOLUS = 0x10
    BRIDGE = 0x20
    VARIABLE_RATE = 0x40  # rate programmable at all (absent on a constant-flow pump)


class Drug(enum.IntEnum):
    NONE = 0
    MORPHINE = 1
    HYDROMORPHONE = 2
    BACLOFEN = 3
    ZICONOTIDE = 4
    BUPIVACAINE = 5
    CLONIDINE = 6
    FENTANYL = 7
    SUFENTANIL = 8
    SALINE = 9


class ConcentrationUnit(enum.IntEnum):
    """The unit a clinician entered and wants to see; the value itself is always ng/mL."""

    MG_PER_ML = 1
    MCG_PER_ML = 2


class ProgramMode(enum.IntEnum):
    """The basal program the pump runs."""

    STOPPED = 0
    CONTINUOUS = 1
    SCHEDULE = 2
    BRIDGE = 3  # old-concentration rate for the dead volume, then CONTINUOUS


class BolusKind(enum.IntEnum):
    """The bolus running on top of (or instead of) the basal program, if any."""

    NONE = 0
    CLINICIAN = 1  # on top of the program, which resumes
    CLINICIAN_SINGLE = 2  # program stopped when it ends
    PATIENT = 3
    PRIMING = 4


class Alarm(enum.IntFlag):
    """Alarm conditions; a u32 bit set wherever several can be named at once."""

    LOW_RESERVOIR = 1 << 0
    EMPTY_RESERVOIR = 1 << 1
    ELECTIVE_REPLACEMENT = 1 << 2
    END_OF_SERVICE = 1 << 3
    LOW_BATTERY_RESET = 1 << 4
    MOTOR_STALL = 1 << 5
    PUMP_STOPPED = 1 << 6
    CRITICAL_MEMORY_ERROR = 1 << 7
    NONCRITICAL_MEMORY_ERROR = 1 << 8
    FLOW_VALVE_CLOSED = 1 << 9
    DOSE_LIMIT_EXCEEDED = 1 << 10
    WATCHDOG = 1 << 11
    DOWNSTREAM_OCCLUSION = 1 << 12  # an external pump's downstream pressure sensor tripped
    AIR_IN_LINE = 1 << 13  # an external pump's air detector: delivery stopped
    EXTERNAL_BATTERY_LOW = 1 << 14  # an external pump's replaceable cells are low


class AlarmPriority(enum.IntEnum):
    """IEC 60601-1-8 priority the pump maps its alarm to."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3


class AlarmState(enum.IntEnum):
    ACTIVE = 1
    SILENCED = 2  # audio paused until silenced_until_ms; returns if unresolved
    ACKNOWLEDGED = 3  # seen by a clinician; the condition persists


class Tone(enum.IntEnum):
    TWO_TONE = 1  # critical: about 3 s
    SINGLE_TONE = 2  # non-critical: about 1 s


class BatteryState(enum.IntEnum):
    OK = 0
    ELECTIVE_REPLACEMENT = 1
    END_OF_SERVICE = 2
    NOT_APPLICABLE = 3  # propellant-driven constant-flow pump


class CommandState(enum.IntEnum):
    UNKNOWN = 0  # the pump never committed this command id: safe to send it
    APPLIED = 1
    REJECTED = 2


class EventSource(enum.IntEnum):
    PUMP = 1  # the pump's own behaviour (delivery, alarms, battery)
    PROGRAMMER = 2  # a command received over telemetry
    CONTROL = 3  # a trainer or test action through the emulator's control plane


class EventKind(enum.IntEnum):
    """Known event-log record kinds. The field is an open u16: unknown kinds must be shown raw,
    never rejected, so a newer pump's log stays readable by an older programmer."""

    POWER_ON = 1
    PROGRAM_CHANGED = 2
    DRUG_CHANGED = 3
    REFILL = 4
    BOLUS_STARTED = 5
    BOLUS_COMPLETED = 6
    BOLUS_CANCELLED = 7
    BOLUS_DENIED = 8
    PATIENT_BOLUS_SETTINGS = 9
    ALARM_RAISED = 10
    ALARM_CLEARED = 11
    ALARM_SILENCED = 12
    ALARM_ACKNOWLEDGED = 13
    ALARM_TEST = 14
    MOTOR_STALL = 15
    MOTOR_RECOVERED = 16
    SUSPENDED = 17
    RESUMED = 18
    CLOCK_SET = 19
    ALARM_SETTINGS = 20
    BATTERY = 21
    MRI_EXPOSURE = 22
    FAULT = 23
    SECURITY = 24
    SESSION_OPENED = 25
    SESSION_CLOSED = 26
    COMMAND_REJECTED = 27
    CONTROL = 28
    ZONE_SET = 29
    ZONE_NAME = 30


class SessionEndReason(enum.IntEnum):
    HOST_REQUEST = 1
    IDLE_TIMEOUT = 2
    LIFETIME = 3
    COUNTER_EXHAUSTED = 4
    REKEY = 5
    PUMP_RESTART = 6
    EVICTED = 7
    SUPERSEDED = 8  # the same host_id and role completed a new handshake
