"""firmware_model: the implanted pump as a pure, exact, deterministic model on a virtual clock.

No I/O and no wall clock: a runtime hands in time (`advance_to`) and commands, and asks when the
next thing happens (`next_event_time`). See docs/firmware_model.md.

Theory of operation
-------------------
State. Everything the pump knows is one `State` (_state.py), plain dataclasses; a snapshot is
exactly that tree (_snapshot.py). `Pump` (_pump.py) is a thin facade assembled from one mixin per
concept, all over that one state (`PumpCore` in _core.py, `__slots__` everywhere): calls cost
what they cost in one class, and no concept keeps state of its own beyond caches that are
rebuilt from the state (the basal rate function, its rate profiles, the next internal event).

Time is handed in. `advance_to(t)` (_clock.py) repeatedly finds the next *internal* event (a
bolus or bridge ending, a threshold crossed, an alarm tone, a battery milestone, a stall
recovering, a silence expiring, 48 h in stopped mode, a granuloma's daily step:
`_next_internal` in _delivery.py, asked with a horizon: events past `t` need not be found
exactly), integrates delivery analytically up to it (`_flow`), and
applies it (`_settle`, which applies every condition due at the current instant until nothing
changes). Between internal events the basal rate is a fixed periodic function of the time of
day (`RateProfile`, _rates.py), so crossing any number of schedule steps costs O(1): the cost
of advancing grows with events, not with time. Alarm tones are counted, not ticked.
`next_event_time()` also reports schedule step boundaries, so a runtime that wants to publish
each rate change can wake for them.

The integral. Three volumes are tracked, all exact integers (_delivery.py):
- program volume: what the pump believes it delivered (drives the *calculated* reservoir volume);
  basal volume is floor(integral of the rate) with the remainder carried, a bolus delivers
  floor(V * elapsed / D) and exactly V at its end;
- pumped volume: what truly left the reservoir (program volume scaled by the device's accuracy
  error, then by what a kink or granuloma lets pass; zero while stalled, occluded, valve-closed
  or dry);
- patient volume and dose: what left the catheter tip into the intrathecal space, after the
  catheter's dead volume (a FIFO of drug slugs) and any leak.
Every settle recomputes the basal function from the state and drops the cached next event
(`_replan`), so the next integral starts from the new state.

Events. Every effect is one record in the event log (_log.py): seq, pump-clock time, kind,
source, command id and two integers whose meaning per kind is the protocol's
`protocol/_event_values.py` (docs/protocol.md section 19). A record
caused by a command carries that command's id; what the pump does by itself has source PUMP.

Commands are methods (one per protocol command) and share one path (_command.py):
`c = self._begin(Command.X, command_id, source, expected_version)` checks the id, the self test,
end of service and the program version; the command then validates completely through `c`
(`c.require`, `c.require_drug`, `c.check_drug`, `c.check_rate`, `c.check_dose_limits`, its own
checks) and a refusal (`c.reject(reason, detail)`) raises `Rejected` and leaves one log record
(COMMAND_REJECTED, or BOLUS_DENIED for a patient request) and nothing else. Only then does it
apply, and end with `c.commit(kind, a, b)` (bump the program version, log the effect, settle) or
`c.done(seq)`. Faults and control actions (`inject`, `clear_fault`) skip the preamble
(`self._command(...)`), not the rest.

Where things live: _delivery (rates, the integral, volumes, next event, predictions), _programs
(drug record, continuous, schedule, bridge, suspend, resume), _boluses (clinician, priming,
cancel, patient bolus), _refill, _alarms (catalogue and alarm logic), _battery, _faults (fault
values and their logic), _catheter (partial obstructions and their daily ramp, the true
catheter, CAP aspiration), _clock (advance, settle, set_clock), _log, _command.

WHERE TO ADD
- A new fault: its frozen value and the `Fault` union in _faults.py, a `FaultKind` in _types.py
  (and the protocol's twin enum, if it is on the wire), a `case` in `FaultsMixin.inject`
  (checks first, then its FAULT record, then its consequence), a `case` in `clear_fault` and a
  line in `active_faults`; any state it needs in `Faults` in _state.py (snapshots follow);
  what it does to the flow in _delivery.py (`_flow`, `_flowing`, `_next_internal`).
- A new alarm: an `Alarm` bit in _types.py (equal to the protocol's bit), its row in `CATALOGUE`
  in _alarms.py, the profiles that can raise it (`alarms` in _profiles.py); raise and resolve it
  where its condition starts and ends (`_settle` in _clock.py for a condition of the state, or
  the fault in _faults.py that causes it). Then `python -m firmware_model._doc --write`.
- A new command: a `Command` (and any new `Reason`, equal to the protocol's error code) in
  _types.py; a method in the mixin of its concept (or a new `_concept.py` mixin added to the
  bases of `Pump` in _pump.py) written as above: `_begin`, validate through `c`, apply, `commit`;
  a new record kind in `EventKind` (and the protocol's twin, with its meaning in
  protocol/_event_values.py); new state in _state.py. A new time
  driven condition goes into `_next_internal` (when) and `_settle` (what). On the wire, the
  emulator maps protocol messages to these methods (`CALLS` in emulator/_device_commands.py,
  outside this package).
"""

from ._alarms import CATALOGUE, AlarmSpec
from ._catheter import FINDING_TEXT, CapAspiration, CapFinding, CatheterView
from ._clock import valid_zone_name
from ._core import CONTROL_CAP_ASPIRATION, CONTROL_CATHETER_FILLED
from ._errors import ModelError, Rejected, SnapshotError, TimeWentBackwards
from ._faults import (
    AirInLine,
    CatheterGranuloma,
    CatheterKink,
    CatheterLeak,
    CatheterOcclusion,
    CriticalMemoryError,
    DeliveryInaccuracy,
    ExternalBatteryLow,
    Fault,
    LowBatteryReset,
    MotorStall,
    MriExposure,
    NoncriticalMemoryError,
    PocketFill,
    PrematureEos,
    PrematureEri,
)
from ._profiles import DEFAULT_LIBRARY, PROFILES, Battery, DrugLimits, Profile
from ._pump import Pump, Status
from ._rates import RateProfile
from ._snapshot import SNAPSHOT_VERSION, encode_events, restore, snapshot
from ._state import (
    NO_COMMAND,
    AlarmView,
    Applied,
    BolusRun,
    Event,
    PatientBolus,
    PatientBolusGranted,
    RefillReport,
)
from ._types import (
    CATHETER_NL_PER_CM,
    DAY_MS,
    DEFAULT_CATHETER_NL,
    MINUTES_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MIN,
    NG_PER_MCG,
    NG_PER_MG,
    NL_PER_ML,
    NL_PER_UL,
    PPM,
    YEAR_MS,
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
    Priority,
    ProfileId,
    Reason,
    Source,
    Tone,
)

__all__ = [
    "CATALOGUE",
    "CATHETER_NL_PER_CM",
    "CONTROL_CAP_ASPIRATION",
    "CONTROL_CATHETER_FILLED",
    "DAY_MS",
    "DEFAULT_CATHETER_NL",
    "DEFAULT_LIBRARY",
    "FINDING_TEXT",
    "MINUTES_PER_DAY",
    "MS_PER_HOUR",
    "MS_PER_MIN",
    "NG_PER_MCG",
    "NG_PER_MG",
    "NL_PER_ML",
    "NL_PER_UL",
    "NO_COMMAND",
    "PPM",
    "PROFILES",
    "SNAPSHOT_VERSION",
    "YEAR_MS",
    "AirInLine",
    "Alarm",
    "AlarmSpec",
    "AlarmState",
    "AlarmView",
    "Applied",
    "Battery",
    "BatteryState",
    "BolusKind",
    "BolusRun",
    "CapAspiration",
    "CapFinding",
    "Capability",
    "CatheterGranuloma",
    "CatheterKink",
    "CatheterLeak",
    "CatheterOcclusion",
    "CatheterView",
    "ClearedBy",
    "Command",
    "ConcentrationUnit",
    "CriticalMemoryError",
    "DeliveryInaccuracy",
    "Drug",
    "DrugLimits",
    "Event",
    "EventKind",
    "ExternalBatteryLow",
    "Fault",
    "FaultKind",
    "LowBatteryReset",
    "Mode",
    "ModelError",
    "MotorStall",
    "MriBehaviour",
    "MriExposure",
    "NoncriticalMemoryError",
    "PatientBolus",
    "PatientBolusGranted",
    "PocketFill",
    "PrematureEos",
    "PrematureEri",
    "Priority",
    "Profile",
    "ProfileId",
    "Pump",
    "RateProfile",
    "Reason",
    "RefillReport",
    "Rejected",
    "SnapshotError",
    "Source",
    "Status",
    "TimeWentBackwards",
    "Tone",
    "encode_events",
    "restore",
    "snapshot",
    "valid_zone_name",
]
