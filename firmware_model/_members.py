"""The enum members the event path tests on every event, as plain module globals.

On Python 3.11 naming a member through its class (`Mode.STOPPED`) costs about 130 ns against
about 10 ns for a module global: `enum.EnumType` defines `__getattr__`, so every attribute
lookup on an enum class goes through CPython's slow lookup hook, even when the member is found
at once. The hot paths (`_settle`, `_replan`, `_next_internal`, `_flow`, `_predict`, the patient
bolus request) name dozens of members per event, a fifth of a simulated year's cost; they use
these aliases instead. Each is the member itself (`MODE_STOPPED is Mode.STOPPED`).
"""

from __future__ import annotations

from ._types import BatteryState, BolusKind, Capability, Command, Drug, EventKind, Mode, Source

MODE_STOPPED = Mode.STOPPED
MODE_CONTINUOUS = Mode.CONTINUOUS
MODE_SCHEDULE = Mode.SCHEDULE
MODE_BRIDGE = Mode.BRIDGE
DRUG_NONE = Drug.NONE
BATTERY_OK = BatteryState.OK
BATTERY_ERI = BatteryState.ELECTIVE_REPLACEMENT
BATTERY_EOS = BatteryState.END_OF_SERVICE
BOLUS_NONE = BolusKind.NONE
BOLUS_PRIMING = BolusKind.PRIMING
BOLUS_PATIENT = BolusKind.PATIENT
BOLUS_SINGLE = BolusKind.CLINICIAN_SINGLE
SOURCE_PUMP = Source.PUMP
CAP_PATIENT_BOLUS = Capability.PATIENT_BOLUS
CMD_REQUEST_PATIENT_BOLUS = Command.REQUEST_PATIENT_BOLUS
EV_BOLUS_STARTED = EventKind.BOLUS_STARTED
EV_BOLUS_COMPLETED = EventKind.BOLUS_COMPLETED
EV_BOLUS_CANCELLED = EventKind.BOLUS_CANCELLED
