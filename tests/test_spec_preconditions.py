"""docs/protocol.md section 16 is the behaviour: a fresh pump is in the documented starting
state, and every command is refused, with the documented code, in every state the table
(protocol/_preconditions.py) lists for it. Each command is driven into each state on the model,
through `apply_message`, the device's only mapping from messages to the model."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

import firmware_model as fm
import protocol as p
from emulator import PumpDevice
from emulator._clock import VirtualClock
from emulator._device_commands import apply_message
from protocol._preconditions import PRECONDITIONS, STATES

T0 = 1_767_225_600_000
MG = 1_000_000  # ng
MORPHINE_25 = 25 * MG  # ng/mL
CID = bytes(range(16))


def fresh(profile: fm.ProfileId = fm.ProfileId.SYNCHROMED_II_20) -> fm.Pump:
    return fm.Pump.create(profile, serial=1234, now_ms=T0)


def past_self_test(pump: fm.Pump) -> fm.Pump:
    pump.advance_to(pump.now + pump.profile.post_ms + 1)
    return pump


def filled(
    pump: fm.Pump, *, conc: int = MORPHINE_25, drug: fm.Drug = fm.Drug.MORPHINE, nl: int = 20 * MG
) -> fm.Pump:
    mcg = drug is fm.Drug.BACLOFEN
    unit = fm.ConcentrationUnit.MCG_PER_ML if mcg else fm.ConcentrationUnit.MG_PER_ML
    pump.record_refill(
        withdrawn_nl=0, added_nl=nl, drug=drug, conc_ng_per_ml=conc, unit=unit,
        low_threshold_nl=2_000_000, confirm_soft_limit=True,
    )  # fmt: skip
    return pump


def running(pump: fm.Pump) -> fm.Pump:
    if pump.profile.supports(fm.Capability.VARIABLE_RATE):
        pump.set_continuous_dose(5 * MG, confirm_soft_limit=True)
    return pump


def ready(**kw: object) -> fm.Pump:
    """Past the self test, 20 mL of morphine 25 mg/mL, 5 mg/day continuous."""
    return running(filled(past_self_test(fresh()), **kw))  # type: ignore[arg-type]


def patient_enabled(pump: fm.Pump, *, lockout_ms: int = 3_600_000, per_day: int = 4) -> fm.Pump:
    pump.set_patient_bolus(
        enabled=True, dose_ng=250_000, duration_ms=600_000, lockout_ms=lockout_ms,
        max_per_24h=per_day, confirm_soft_limit=True,
    )  # fmt: skip
    return pump


def clinician_bolus(pump: fm.Pump) -> fm.Pump:
    pump.start_clinician_bolus(1 * MG, 3_600_000, confirm_soft_limit=True)
    return pump


# --- one valid message per command (valid on a ready pump, unless its state forbids it) -------


def _message(name: str) -> p.Message:
    v: dict[str, Any] = {"command_id": CID}
    t: dict[str, Any] = {**v, "expected_program_version": 0}  # the pump's version, below
    morphine: dict[str, Any] = {
        "drug": p.Drug.MORPHINE,
        "concentration_unit": p.ConcentrationUnit.MG_PER_ML,
    }
    make: dict[str, Callable[[], p.Message]] = {
        "SET_DRUG": lambda: p.SetDrug(**t, **morphine, concentration_ng_per_ml=20 * MG,
                                      confirm_soft_limit=False),
        "SET_CONTINUOUS_DOSE": lambda: p.SetContinuousDose(**t, dose_ng_per_day=5 * MG,
                                                           confirm_soft_limit=False),
        "SET_SCHEDULE": lambda: p.SetSchedule(**t, confirm_soft_limit=False, steps=(
            p.ScheduleStep(0, 4 * MG), p.ScheduleStep(420, 6 * MG))),
        "START_CLINICIAN_BOLUS": lambda: p.StartClinicianBolus(
            **t, dose_ng=1 * MG, duration_ms=3_600_000, then_stop=False, confirm_soft_limit=True),
        "CANCEL_BOLUS": lambda: p.CancelBolus(**t),
        "START_PRIMING_BOLUS": lambda: p.StartPrimingBolus(**t, volume_nl=200_000),
        "START_BRIDGE": lambda: p.StartBridge(
            **t, dead_volume_nl=233_000, previous_concentration_ng_per_ml=20 * MG,
            dose_ng_per_day=5 * MG, confirm_soft_limit=False),
        "SET_PATIENT_BOLUS": lambda: p.SetPatientBolus(
            **t, enabled=True, dose_ng=250_000, duration_ms=600_000, lockout_ms=3_600_000,
            max_per_24h=4, confirm_soft_limit=True),
        "RECORD_REFILL": lambda: p.RecordRefill(
            **t, **morphine, withdrawn_volume_nl=0, added_volume_nl=20_000_000,
            concentration_ng_per_ml=MORPHINE_25, low_reservoir_threshold_nl=2_000_000,
            confirm_soft_limit=False),
        "SET_ALARM_SETTINGS": lambda: p.SetAlarmSettings(
            **t, low_reservoir_threshold_nl=2_000_000, critical_repeat_ms=600_000,
            noncritical_repeat_ms=3_600_000),
        "SUSPEND": lambda: p.Suspend(**t),
        "RESUME": lambda: p.Resume(**t),
        "ACKNOWLEDGE_ALARMS": lambda: p.AcknowledgeAlarms(**v, alarms=p.Alarm.LOW_RESERVOIR),
        "SILENCE_ALARMS": lambda: p.SilenceAlarms(**v, alarms=p.Alarm.LOW_RESERVOIR,
                                                  duration_ms=60_000),
        "ALARM_TEST": lambda: p.AlarmTest(**v, tone=p.Tone(1)),
        "SET_CLOCK": lambda: p.SetClock(**v, pump_time_ms=T0),
        "SET_CLOCK_LOCAL": lambda: p.SetClockLocal(**v, pump_time_ms=T0, utc_offset_ms=3_600_000,
                                                   zone="Europe/Paris"),
        "REQUEST_PATIENT_BOLUS": lambda: p.RequestPatientBolus(**t),
    }  # fmt: skip
    return make[name]()


# --- one pump per state (for the patient bolus: with the patient bolus enabled) --------------


def _state(key: str, patient: bool) -> fm.Pump:
    def pb(pump: fm.Pump) -> fm.Pump:
        return patient_enabled(pump) if patient else pump

    if key == "self_test":
        return fresh()
    if key == "end_of_service":
        pump = pb(ready())
        pump.inject(fm.PrematureEos())
        return pump
    if key == "capability":
        return running(filled(past_self_test(fresh(fm.ProfileId.CONSTANT_FLOW))))
    if key == "no_drug":
        return past_self_test(fresh())
    if key == "drug_no_patient_bolus":
        return filled(past_self_test(fresh()), drug=fm.Drug.BACLOFEN, conc=2 * MG)
    if key in ("patient_bolus_disabled", "not_suspended", "no_bolus", "no_such_alarm"):
        return ready()
    if key == "lockout":
        pump = patient_enabled(ready())
        pump.request_patient_bolus()
        pump.advance_to(pump.now + 20 * 60_000)  # the bolus is over, the lockout is not
        return pump
    if key == "cap_reached":
        pump = patient_enabled(ready(), lockout_ms=600_000, per_day=1)
        pump.request_patient_bolus()
        pump.advance_to(pump.now + 20 * 60_000)
        return pump
    if key == "critical_alarm":
        pump = pb(ready())
        pump.inject(fm.CriticalMemoryError())
        return pump
    if key == "awaiting_program":
        pump = ready()
        filled(pump, conc=20 * MG)  # a new concentration: the program stops
        return pb(pump)  # (the patient bolus was disabled by it: enabled again)
    if key == "suspended":
        pump = pb(ready())
        pump.suspend()
        return pump
    if key in ("bolus_running", "bolus_running_drug_change"):
        return clinician_bolus(pb(ready()))
    if key == "reservoir_short":
        return pb(running(filled(past_self_test(fresh()), nl=5_000)))
    if key == "already_stopped":
        return filled(past_self_test(fresh()))  # a drug, no program yet
    raise AssertionError(key)


# INVALID_STATE names several states: the detail tells which one refused
DETAIL = {
    "no_drug": "no drug recorded", "awaiting_program": "re-confirm the program",
    "suspended": "is suspended", "bolus_running": "bolus is", "bolus_running_drug_change":
    "bolus is running", "already_stopped": "already stopped", "not_suspended": "not suspended",
    "no_bolus": "no bolus", "no_such_alarm": "none of these alarms",
}  # fmt: skip

CASES = [(name, key) for name, rows in PRECONDITIONS.items() for key, _ in rows]


@pytest.mark.parametrize(("name", "key"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_each_command_is_refused_in_each_listed_state(name: str, key: str) -> None:
    pump = _state(key, patient=name == "REQUEST_PATIENT_BOLUS")
    msg = _message(name)
    if "expected_program_version" in {f.name for f in msg.FIELDS}:
        msg = type(msg)(**{**vars_of(msg), "expected_program_version": pump.program_version})
    seq = pump.event_seq
    with pytest.raises(fm.Rejected) as exc:
        apply_message(pump, msg)
    assert p.ErrorCode(int(exc.value.reason)) is STATES[key].code, exc.value.detail
    assert DETAIL.get(key, "") in exc.value.detail
    # the refusal left one record and nothing else (section 16: a refusal changes nothing)
    assert len(pump.events(seq + 1)) == 1


def vars_of(msg: p.Message) -> dict[str, object]:
    return {f.name: getattr(msg, f.name) for f in msg.FIELDS}


def test_every_command_message_has_its_preconditions() -> None:
    commands = {
        cls.NAME for cls in p.MESSAGES.values()
        if cls.KIND in (p.CommandKind.THERAPY, p.CommandKind.COMMAND)
    }  # fmt: skip
    assert set(PRECONDITIONS) == commands
    assert {k for rows in PRECONDITIONS.values() for k, _ in rows} == set(STATES)


def test_the_capability_rows_name_what_the_model_requires() -> None:
    """The constant-flow pump (CONTINUOUS only) lacks every capability named in a row."""
    caps = fm.PROFILES[fm.ProfileId.CONSTANT_FLOW].capabilities
    for rows in PRECONDITIONS.values():
        for key, names in rows:
            if key == "capability":
                assert names and any(not caps & fm.Capability[n.strip()] for n in names.split(","))


def test_a_fresh_pump_is_in_the_documented_starting_state() -> None:
    pump = fresh()
    st = pump.status()
    assert (st.drug, st.conc_ng_per_ml, st.mode, st.suspended) == (
        fm.Drug.NONE,
        0,
        fm.Mode.STOPPED,
        False,
    )
    assert (st.program_version, st.reservoir_nl, st.bolus) == (1, 0, fm.BolusKind.NONE)
    assert st.low_threshold_nl == 2_000_000 and st.active_alarms == 0
    assert st.battery is fm.BatteryState.OK
    catheter = fm.snapshot(pump)["state"]["catheter"]  # slugs from the tip: all drug-free
    assert catheter and all(slug["conc_ng_per_ml"] == 0 for slug in catheter), catheter
    pb = pump.patient_bolus
    assert (pb.enabled, pb.dose_ng, pb.duration_ms, pb.lockout_ms, pb.max_per_24h) == (
        False, 0, 600_000, 3_600_000, 0)  # fmt: skip
    assert [e.kind for e in pump.events()] == [fm.EventKind.POWER_ON]
    assert [e.seq for e in pump.events()] == [1]
    with pytest.raises(fm.Rejected) as exc:  # the self test
        pump.set_continuous_dose(5 * MG)
    assert exc.value.reason is fm.Reason.BUSY
    past_self_test(pump)
    with pytest.raises(fm.Rejected) as exc:
        pump.set_continuous_dose(5 * MG)
    assert exc.value.reason is fm.Reason.INVALID_STATE  # no drug


def test_a_refill_that_changes_the_concentration_stops_the_program_until_re_confirmed() -> None:
    pump = patient_enabled(ready())
    filled(pump, conc=20 * MG)
    st = pump.status()
    assert (st.mode, st.awaiting_program, pump.patient_bolus.enabled) == (
        fm.Mode.STOPPED,
        True,
        False,
    )
    with pytest.raises(fm.Rejected) as exc:
        pump.start_clinician_bolus(1 * MG, 3_600_000, confirm_soft_limit=True)
    assert exc.value.reason is fm.Reason.INVALID_STATE
    pump.set_continuous_dose(5 * MG)  # re-confirmed at the new concentration
    assert (pump.status().mode, pump.status().awaiting_program) == (fm.Mode.CONTINUOUS, False)
    pump.start_clinician_bolus(1 * MG, 3_600_000, confirm_soft_limit=True)
    # the same drug and concentration again: the program keeps running
    pump = ready()
    filled(pump)
    assert (pump.status().mode, pump.status().awaiting_program) == (fm.Mode.CONTINUOUS, False)


@pytest.mark.parametrize(("name", "key"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_each_refusal_is_the_same_on_the_wire(name: str, key: str) -> None:
    """The same states through the device (session, journal, answer): the ERROR's code."""
    pump = _state(key, patient=name == "REQUEST_PATIENT_BOLUS")
    keys = {p.Role.CLINICIAN: p.SecretKey(bytes(range(32)))}
    rng = random.Random(3)
    device = PumpDevice(
        pump, keys, clock=VirtualClock(pump.now, monotonic_ns=lambda: 0),
        randbytes=rng.randbytes, mono=lambda: 0, wall=lambda: T0,
    )  # fmt: skip
    host = p.HostSecurity(pump.serial, p.Role.CLINICIAN, keys[p.Role.CLINICIAN], rng.randbytes)

    def send(data: bytes) -> p.Frame:
        (frame,) = p.FrameDecoder().feed(data)
        assert isinstance(frame, p.Frame)
        (reply,) = device.receive(frame)
        (answer,) = p.FrameDecoder().feed(reply)
        assert isinstance(answer, p.Frame)
        return answer

    confirm = host.receive(send(host.hello(seq=1)))
    assert isinstance(confirm, p.Send)
    assert isinstance(host.receive(send(confirm.data)), p.Established)
    msg = _message(name)
    if "expected_program_version" in {f.name for f in msg.FIELDS}:
        msg = type(msg)(**{**vars_of(msg), "expected_program_version": pump.program_version})
    answer = send(host.seal(msg, seq=3))
    if answer.authenticated:  # sealed in the session (or plain: section 10)
        event = host.receive(answer)
        assert isinstance(event, p.Response)
        error = event.message
    else:
        error = answer.decode()
    assert isinstance(error, p.Error) and error.code is STATES[key].code, error
