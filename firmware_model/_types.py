"""The pump's vocabulary: enumerations of the model, independent of any wire format.

Numeric values deliberately equal protocol v1's where both name the same thing, so the
emulator's mapping is an identity checked by a test, not a hand-kept table.
"""

from __future__ import annotations

import enum

# --- units: integers everywhere; human units only at the edges ---------------------------------
NL_PER_ML = 1_000_000
NL_PER_UL = 1_000
CATHETER_NL_PER_CM = 2_600  # Prometra catheter: 0.0026 mL/cm (domain.md #27)
DEFAULT_CATHETER_NL = 85 * CATHETER_NL_PER_CM  # 110 cm trimmed by 25 cm: 221 uL (domain.md 2.3)
NG_PER_MG = 1_000_000
NG_PER_MCG = 1_000
MS_PER_S = 1_000
MS_PER_MIN = 60_000
MS_PER_HOUR = 3_600_000
DAY_MS = 86_400_000
MINUTES_PER_DAY = 1_440
YEAR_MS = 365 * DAY_MS
PPM = 1_000_000  # parts per million: accuracy errors, shares, ratios


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
    """How the clinician entered the concentration; the value itself is always ng/mL."""

    MG_PER_ML = 1
    MCG_PER_ML = 2


class Mode(enum.IntEnum):
    """The basal program."""

    STOPPED = 0
    CONTINUOUS = 1
    SCHEDULE = 2
    BRIDGE = 3  # old-concentration rate for the dead volume, then CONTINUOUS


class BolusKind(enum.IntEnum):
    NONE = 0
    CLINICIAN = 1  # on top of the basal program, which keeps running
    CLINICIAN_SINGLE = 2  # the pump goes to STOPPED when it ends
    PATIENT = 3
    PRIMING = 4  # at the maximum rate; basal paused meanwhile


class Capability(enum.IntFlag):
    CONTINUOUS = 0x01
    SCHEDULE = 0x02
    CLINICIAN_BOLUS = 0x04
    PATIENT_BOLUS = 0x08
    PRIMING_BOLUS = 0x10
    BRIDGE = 0x20
    VARIABLE_RATE = 0x40


class Alarm(enum.IntFlag):
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
    DOWNSTREAM_OCCLUSION = 1 << 12  # external pump's pressure sensor (bits 10, 11: protocol's)
    AIR_IN_LINE = 1 << 13  # external pump's air detector
    EXTERNAL_BATTERY_LOW = 1 << 14  # external pump's replaceable cells running low


class Priority(enum.IntEnum):
    """IEC 60601-1-8 priority."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3


class AlarmState(enum.IntEnum):
    ACTIVE = 1  # sounding (or waiting behind a higher-priority alarm)
    SILENCED = 2  # audio paused until silenced_until; returns if still raised
    ACKNOWLEDGED = 3  # indefinitely silent; stays raised while its cause lasts


class Tone(enum.IntEnum):
    TWO_TONE = 1  # critical, about 3 s
    SINGLE_TONE = 2  # non-critical, about 1 s


class ClearedBy(enum.Enum):
    """What ends an alarm (domain.md section 3)."""

    REFILL = "refill (or a lower threshold)"
    CONDITION = "its cause ending"
    REPROGRAM = "a new program (SET_CONTINUOUS_DOSE, SET_SCHEDULE or START_BRIDGE)"
    ACKNOWLEDGE = "a clinician's acknowledgement"
    RESET = "the manual reset procedure (clear the fault)"
    REPLACEMENT = "replacing the pump only"


class BatteryState(enum.IntEnum):
    OK = 0
    ELECTIVE_REPLACEMENT = 1
    END_OF_SERVICE = 2
    NOT_APPLICABLE = 3


class Source(enum.IntEnum):
    PUMP = 1
    PROGRAMMER = 2
    CONTROL = 3


class EventKind(enum.IntEnum):
    """Event-log record kinds; the meaning of `a` and `b` per kind is in docs/firmware_model.md."""

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


class Reason(enum.IntEnum):
    """Why a command was rejected. Values equal protocol v1's ErrorCode for the same meaning."""

    PROGRAM_VERSION_MISMATCH = 20
    HARD_LIMIT = 30
    SOFT_LIMIT_UNCONFIRMED = 31
    RATE_OUT_OF_RANGE = 32
    ALARM_ACTIVE = 33
    BOLUS_LOCKOUT = 34
    BOLUS_CAP_REACHED = 35
    BOLUS_DISABLED = 36
    INVALID_STATE = 37
    MODE_NOT_SUPPORTED = 38
    INSUFFICIENT_VOLUME = 39
    INVALID_VALUE = 40
    DRUG_NOT_ALLOWED = 41
    PUMP_STOPPED = 42
    BUSY = 43


class Command(enum.IntEnum):
    """Command kinds, as logged in COMMAND_REJECTED records (`b`)."""

    SET_DRUG = 1
    SET_CONTINUOUS_DOSE = 2
    SET_SCHEDULE = 3
    START_CLINICIAN_BOLUS = 4
    CANCEL_BOLUS = 5
    START_PRIMING_BOLUS = 6
    START_BRIDGE = 7
    SET_PATIENT_BOLUS = 8
    RECORD_REFILL = 9
    SET_ALARM_SETTINGS = 10
    SUSPEND = 11
    RESUME = 12
    ACKNOWLEDGE_ALARMS = 13
    SILENCE_ALARMS = 14
    ALARM_TEST = 15
    SET_CLOCK = 16
    REQUEST_PATIENT_BOLUS = 17
    INJECT_FAULT = 18
    CLEAR_FAULT = 19


class FaultKind(enum.IntEnum):
    MOTOR_STALL = 1
    CATHETER_OCCLUSION = 2
    CATHETER_LEAK = 3
    POCKET_FILL = 4
    CRITICAL_MEMORY_ERROR = 5
    NONCRITICAL_MEMORY_ERROR = 6
    MRI_EXPOSURE = 7
    DELIVERY_INACCURACY = 8
    PREMATURE_ERI = 9
    PREMATURE_EOS = 10
    LOW_BATTERY_RESET = 11
    FLOW_VALVE_CLOSED = 12  # Prometra II valve latched shut (after MRI); cleared by reset
    AIR_IN_LINE = 13  # external pump: air at its detector; cleared by re-priming the line
    EXTERNAL_BATTERY_LOW = 14  # external pump: cells low; cleared by replacing them
    CATHETER_KINK = 15  # partial obstruction: a share of the flow held back
    CATHETER_GRANULOMA = 16  # catheter-tip mass: an obstruction growing day by day


class MriBehaviour(enum.IntEnum):
    """What a strong magnetic field does to the pump (domain.md #19, #28-#30)."""

    MOTOR_STALL = 1  # SynchroMed: motor stops during exposure, recovery lags 2-24 h
    VALVE_CLOSES = 2  # Prometra II: flow-activated valve closes (<= 10 uL passes), until reset
    UNAFFECTED = 3  # propellant-driven constant-flow pump


class ProfileId(enum.IntEnum):
    """Device profiles; values equal protocol v1's PumpModel."""

    SYNCHROMED_II_20 = 1
    SYNCHROMED_II_40 = 2
    PROMETRA_II_20 = 3
    PROMETRA_II_40 = 4
    CONSTANT_FLOW = 5
    EXTERNAL_TRIAL = 6  # external ambulatory pump on a trial catheter, before an implant
