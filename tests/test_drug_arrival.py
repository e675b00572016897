"""Issue 19 item 12: "after ~19 h at 500 mcg/day the 'delivered to the patient' plot stayed at
0". The cause is neither the console's history nor a refill edge case: a first fill's drug
has the unprimed fluid path (233 uL) to cross, at 0.25 mL/day nearly a day. The ground truth
says so (`catheter().drug_free_nl`), the history follows it exactly, and a primed path
delivers from the start."""

from __future__ import annotations

import secrets

import firmware_model as fm
import protocol as p
from emulator import PumpDevice, Runtime, VirtualClock
from emulator._console import History
from emulator._control_state import state

from .model_helpers import baclofen_pump

PATH_NL = fm.DEFAULT_CATHETER_NL + fm.PROFILES[fm.ProfileId.SYNCHROMED_II_20].pump_tubing_nl


def test_the_first_fill_reaches_the_patient_after_the_path_volume() -> None:
    pump = baclofen_pump()  # 2000 mcg/mL, 500 mcg/day: 0.25 mL/day
    start = pump.now
    assert pump.catheter().drug_free_nl == PATH_NL == 233_000
    history = History()
    arrival = None
    t = start
    while t < start + 2 * fm.DAY_MS:
        t += 15 * fm.MS_PER_MIN
        pump.advance_to(t)
        history.note(pump, force=True)
        st = pump.status()
        free = pump.catheter().drug_free_nl
        # what left the tip so far is drug-free fluid, exactly until the path is crossed
        assert free == max(0, PATH_NL - st.patient_total_nl)
        if arrival is None and st.patient_dose_ng:
            arrival = t
        if st.patient_total_nl < PATH_NL:
            assert st.patient_dose_ng == 0  # the plot at 0 is the truth, not a lost sample
    assert arrival is not None
    hours = (arrival - start) / fm.MS_PER_HOUR
    assert 21.9 < hours < 22.5  # 233 uL at 0.25 mL/day (+1 % pump accuracy) = 22.1 h
    offset = pump.clock_ms - pump.now  # samples are on the pump clock
    at_19h = next(s for s in history.samples if s[0] - offset - start >= 19 * fm.MS_PER_HOUR)
    assert at_19h[4] == 0  # the history's "delivered to the patient" at 19 h
    assert history.samples[-1][4] == pump.status().patient_dose_ng > 0  # and it rises after


def test_a_primed_path_delivers_from_the_start() -> None:
    pump = baclofen_pump()
    pump.fill_catheter()
    assert pump.catheter().drug_free_nl == 0
    pump.advance_to(pump.now + fm.MS_PER_HOUR)
    assert pump.status().patient_dose_ng > 0


def test_the_control_state_carries_the_drug_free_volume() -> None:
    pump = baclofen_pump()
    pump.advance_to(pump.now + 19 * fm.MS_PER_HOUR)
    keys = {r: p.SecretKey(secrets.token_bytes(32)) for r in p.Role}
    rt = Runtime(PumpDevice(pump, keys, clock=VirtualClock(pump.now, 0)))
    answer = state(rt)
    assert answer["catheter"]["drug_free_nl"] == pump.catheter().drug_free_nl > 0
    assert answer["status"]["patient_dose_ng"] == 0
