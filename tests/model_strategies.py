"""What tests/test_model_stateful.py draws from: the drugs (three the library refuses), the pump
profiles (most with a short event log), the clinic's library, the alarms and faults, and the
strategies of durations, doses, volumes and schedules."""

from __future__ import annotations

from hypothesis import strategies as st

import firmware_model as fm
from firmware_model import (
    DAY_MS,
    NL_PER_ML,
    YEAR_MS,
    Alarm,
    ConcentrationUnit,
    Drug,
    FaultKind,
    ProfileId,
)

MG, MCG = ConcentrationUnit.MG_PER_ML, ConcentrationUnit.MCG_PER_ML
MAX_RUN_MS = 3 * YEAR_MS  # far from any battery indicator, whatever is pumped (see above)
MAX_STEP_MS = 20 * DAY_MS
NEVER = 1 << 62

# (drug, ng/mL, unit): usable ones, and three the library refuses
DRUGS = [
    (Drug.MORPHINE, 10_000_000, MG),
    (Drug.MORPHINE, 1_000_000, MG),
    (Drug.MORPHINE, 25_000_000, MG),
    (Drug.HYDROMORPHONE, 2_000_000, MG),
    (Drug.BACLOFEN, 500_000, MCG),  # no patient bolus allowed
    (Drug.SALINE, 9_000_000, MG),  # no dose limits: the fastest rates
    (Drug.MORPHINE, 30_000_000, MG),  # above the library's maximum concentration
    (Drug.NONE, 1_000_000, MG),  # not a drug
    (Drug.FENTANYL, 500_000, MCG),  # not in this clinic's library
]
# A short event log (trimmed in batches past 64 records) exercises trimming under the log
# invariants; nothing else in the model reads the log. One profile keeps the stock log.
_SHORT_LOG = 64
PROFILE_CHOICES = {
    "SynchroMed II 20 mL": fm.PROFILES[ProfileId.SYNCHROMED_II_20].with_(
        event_log_capacity=_SHORT_LOG
    ),
    "Prometra II 20 mL": fm.PROFILES[ProfileId.PROMETRA_II_20].with_(event_log_capacity=_SHORT_LOG),
    "SynchroMed II 40 mL, stock": fm.PROFILES[ProfileId.SYNCHROMED_II_40],
    "empty at 1 mL": fm.PROFILES[ProfileId.SYNCHROMED_II_20].with_(
        empty_threshold_nl=NL_PER_ML, event_log_capacity=_SHORT_LOG
    ),
}
# The clinic's library: only the drugs used here.
LIBRARY = {
    d: fm.DEFAULT_LIBRARY[d]
    for d in (Drug.MORPHINE, Drug.HYDROMORPHONE, Drug.BACLOFEN, Drug.SALINE)
}
ALARMS = [
    Alarm.LOW_RESERVOIR,
    Alarm.EMPTY_RESERVOIR,
    Alarm.MOTOR_STALL,
    Alarm.PUMP_STOPPED,
    Alarm.CRITICAL_MEMORY_ERROR,  # never raised here: a mask that hits nothing
]
CLEARABLE = [
    FaultKind.MOTOR_STALL,
    FaultKind.CATHETER_OCCLUSION,
    FaultKind.DELIVERY_INACCURACY,
    FaultKind.POCKET_FILL,
    FaultKind.CATHETER_LEAK,
    FaultKind.PREMATURE_ERI,  # never active here: always refused
]

# --- strategies -------------------------------------------------------------------------------

durations = st.one_of(
    st.integers(0, 2_000),  # milliseconds
    st.integers(0, 6 * 3_600_000),  # hours
    st.integers(0, MAX_STEP_MS),  # days
)
daily_doses = st.one_of(st.integers(1, 30_000_000), st.integers(-1, 250_000_000))
step_doses = st.one_of(st.just(0), st.integers(500_000, 20_000_000), st.integers(-1, 250_000_000))
bolus_doses = st.one_of(st.integers(1, 3_000_000), st.integers(-1, 40_000_000))
bolus_durations = st.one_of(
    st.sampled_from([60_000, 600_000, 3_600_000]), st.integers(59_999, 2 * 3_600_000)
)
volumes = st.one_of(
    st.integers(NL_PER_ML, 20 * NL_PER_ML),  # a refill
    st.integers(1, 3 * NL_PER_ML),  # a few doses' worth: runs dry soon
    st.integers(-1, 41 * NL_PER_ML),  # anything, some refused
)


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[int, int]]:
    raw = draw(st.lists(st.tuples(st.integers(0, 1_439), step_doses), min_size=1, max_size=25))
    if draw(st.integers(0, 3)):  # mostly well formed: sorted, unique, the first at minute 0
        by_start = dict(raw)
        by_start.setdefault(0, raw[0][1])
        raw = sorted(by_start.items())
    return raw
