"""The pump's behaviour on the wire (docs/protocol.md sections 5-10), without ports: every read
and every command reaching the model, and the stale log after a motor stall. Exactly-once and
durability: tests/test_emulator_durability.py; security on the wire:
tests/test_emulator_wire_security.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import firmware_model as fm
import protocol as p

from .emulator_helpers import (
    MORPHINE_25,
    SERIAL,
    Host,
    Rig,
    events_of,
)

# --- reads ------------------------------------------------------------------------------------


def test_device_info_is_open_and_reports_speed(tmp_path: Path) -> None:
    rig = Rig(tmp_path, speed_milli=250_000)
    info = Host(rig, p.Role.CLINICIAN).call(p.GetDeviceInfo())
    assert isinstance(info, p.DeviceInfo)
    assert info.serial_number == SERIAL
    assert info.model is p.PumpModel.SYNCHROMED_II_20
    assert info.reservoir_capacity_nl == 20_000_000
    assert info.speed_factor_milli == 250_000
    assert info.supported_modes & p.Capability.SCHEDULE
    # the broadcast address is allowed for this message only
    host = Host(rig, p.Role.CLINICIAN)
    data = p.encode_frame(p.GetDeviceInfo(), pump_id=p.BROADCAST_PUMP_ID, seq=9, from_pump=False)
    assert isinstance(host.answer(rig.send(data)), p.DeviceInfo)


def test_every_read_is_answered_from_the_model(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host, dose_ng=15_000_000)
    rig.advance(3_600_000)
    st = host.status()
    model = rig.pump.status()
    assert st.reservoir_volume_nl == model.reservoir_nl < 20_000_000
    assert st.mode is p.ProgramMode.CONTINUOUS and st.daily_dose_ng == 15_000_000
    assert st.current_rate_nl_per_day == 600_000  # 15 mg/day at 25 mg/mL
    assert st.pump_time_ms == rig.pump.clock_ms
    assert st.low_reservoir_at_ms == model.low_reservoir_at_ms
    prog = host.call(p.GetProgram())
    assert isinstance(prog, p.Program)
    assert (prog.mode, prog.dose_ng_per_day, prog.rate_nl_per_day) == (
        p.ProgramMode.CONTINUOUS,
        15_000_000,
        600_000,
    )
    drug = host.call(p.GetDrug())
    assert isinstance(drug, p.DrugInfo)
    assert (drug.drug, drug.concentration_ng_per_ml) == (p.Drug.MORPHINE, MORPHINE_25)
    limits = rig.pump.library[fm.Drug.MORPHINE]
    assert drug.hard_limit_ng_per_day == limits.hard_limit_ng_per_day
    pb = host.call(p.GetPatientBolus())
    assert isinstance(pb, p.PatientBolusSettings) and not pb.enabled
    alarms = host.call(p.GetAlarms())
    assert isinstance(alarms, p.AlarmList) and alarms.alarms == ()
    clock = host.call(p.GetClock())
    assert isinstance(clock, p.Clock) and clock.pump_time_ms == rig.pump.clock_ms
    settings = host.call(p.GetAlarmSettings())
    assert isinstance(settings, p.AlarmSettings)
    assert settings.low_reservoir_threshold_nl == 2_000_000
    page = host.call(p.GetEvents(cursor=0, max_count=16))
    assert isinstance(page, p.EventPage)
    assert [e.seq for e in page.events] == list(range(1, len(page.events) + 1))
    assert page.events[0].kind == fm.EventKind.POWER_ON


def test_event_pages_walk_the_whole_log(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    for _ in range(20):
        host.command(p.AlarmTest, tone=p.Tone.SINGLE_TONE)
    seen: list[int] = []
    cursor, more = 0, True
    while more:
        page = host.call(p.GetEvents(cursor=cursor, max_count=7))
        seen += [e.seq for e in page.events]
        cursor, more = page.next_cursor, page.more
    assert seen == list(range(1, rig.pump.event_seq + 1))


def test_patient_role_reads_status_but_not_the_program(rig: Rig) -> None:
    patient = rig.host(p.Role.PATIENT)
    rig.sleep(2_001)
    assert isinstance(patient.call(p.GetStatus()), p.Status)
    err = patient.call(p.GetProgram())
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.ROLE_FORBIDDEN
    before = rig.model_state()
    err = patient.command(p.SetContinuousDose, dose_ng_per_day=1_000_000)
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.ROLE_FORBIDDEN
    assert rig.pump.program_version == before["state"]["program_version"]


# --- commands ---------------------------------------------------------------------------------


def test_every_command_reaches_the_model(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    v0 = host.version
    ack = host.command(
        p.SetSchedule,
        steps=(p.ScheduleStep(0, 8_000_000), p.ScheduleStep(720, 12_000_000)),
    )
    assert isinstance(ack, p.CommandAck) and ack.program_version == v0 + 1
    assert rig.pump.schedule == ((0, 8_000_000), (720, 12_000_000))
    prog = host.call(p.GetProgram())
    assert [(s.start_minute, s.dose_ng_per_day) for s in prog.steps] == [
        (0, 8_000_000),
        (720, 12_000_000),
    ]
    ack = host.command(p.StartClinicianBolus, dose_ng=500_000, duration_ms=600_000, then_stop=False)
    assert isinstance(ack, p.CommandAck)
    assert rig.pump.bolus is not None and rig.pump.bolus.dose_ng == 500_000
    assert host.call(p.GetProgram()).bolus is p.BolusKind.CLINICIAN
    assert isinstance(host.command(p.CancelBolus), p.CommandAck)
    assert rig.pump.bolus is None
    assert isinstance(host.command(p.Suspend), p.CommandAck) and rig.pump.status().suspended
    assert isinstance(host.command(p.Resume), p.CommandAck) and not rig.pump.status().suspended
    ack = host.command(
        p.SetPatientBolus,
        enabled=True,
        dose_ng=250_000,
        duration_ms=600_000,
        lockout_ms=3_600_000,
        max_per_24h=4,
    )
    assert isinstance(ack, p.CommandAck) and rig.pump.patient_bolus.enabled
    granted = host.command(p.RequestPatientBolus)
    assert isinstance(granted, p.PatientBolusAccepted) and granted.dose_ng == 250_000
    assert granted.boluses_left == 3
    ack = host.command(
        p.SetAlarmSettings,
        low_reservoir_threshold_nl=3_000_000,
        critical_repeat_ms=300_000,
        noncritical_repeat_ms=1_800_000,
    )
    assert isinstance(ack, p.CommandAck)
    assert rig.pump.alarm_settings == (3_000_000, 300_000, 1_800_000)
    assert isinstance(host.command(p.AlarmTest, tone=p.Tone.TWO_TONE), p.CommandAck)
    assert rig.pump.last_tone is not None
    new_clock = rig.pump.clock_ms + 3_600_000
    assert isinstance(host.command(p.SetClock, pump_time_ms=new_clock), p.CommandAck)
    assert rig.pump.clock_ms == new_clock
    rig.advance(700_000)  # the patient bolus ends
    ack = host.command(p.StartPrimingBolus, volume_nl=200_000)
    assert isinstance(ack, p.CommandAck) and rig.pump.bolus.kind is fm.BolusKind.PRIMING
    rig.advance(3_600_000)  # the priming bolus ends
    ack = host.command(
        p.SetDrug,
        drug=p.Drug.MORPHINE,
        concentration_ng_per_ml=20_000_000,
        concentration_unit=p.ConcentrationUnit.MG_PER_ML,
    )
    assert isinstance(ack, p.CommandAck) and rig.pump.status().awaiting_program
    ack = host.command(
        p.StartBridge,
        dead_volume_nl=233_000,
        previous_concentration_ng_per_ml=MORPHINE_25,
        dose_ng_per_day=15_000_000,
    )
    assert isinstance(ack, p.CommandAck) and rig.pump.status().mode is fm.Mode.BRIDGE
    st = host.status()
    rig.pump.inject(fm.MotorStall())
    rig.device.tick()
    ack = host.command(p.AcknowledgeAlarms, alarms=p.Alarm.MOTOR_STALL)
    assert isinstance(ack, p.CommandAck)
    assert st.program_version <= host.version


def test_silence_alarms_and_refill_result(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host, dose_ng=15_000_000)
    rig.advance(31 * fm.DAY_MS)  # past the low-reservoir day
    assert host.status().active_alarms & p.Alarm.LOW_RESERVOIR
    ack = host.command(p.SilenceAlarms, alarms=p.Alarm.LOW_RESERVOIR, duration_ms=60_000)
    assert isinstance(ack, p.CommandAck)
    (entry,) = host.call(p.GetAlarms()).alarms
    assert entry.state is p.AlarmState.SILENCED and entry.silenced_until_ms > 0
    expected = rig.pump.status().reservoir_nl
    result = host.command(
        p.RecordRefill,
        withdrawn_volume_nl=expected - 500_000,
        added_volume_nl=18_000_000,
        drug=p.Drug.MORPHINE,
        concentration_ng_per_ml=MORPHINE_25,
        concentration_unit=p.ConcentrationUnit.MG_PER_ML,
        low_reservoir_threshold_nl=2_000_000,
    )
    assert isinstance(result, p.RefillResult)
    assert result.expected_residual_nl == expected
    assert result.discrepancy_nl == -500_000
    assert result.reservoir_volume_nl == rig.pump.status().reservoir_nl
    assert result.low_reservoir_at_ms == rig.pump.status().low_reservoir_at_ms


def test_model_refusals_carry_the_documented_code_and_change_nothing(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    rig.sleep(60_000)
    before = rig.pump.status()
    err = host.command(p.SetContinuousDose, dose_ng_per_day=4_000_000_000)
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.RATE_OUT_OF_RANGE
    err = host.command(p.SetContinuousDose, dose_ng_per_day=24_000_000)  # over the soft limit
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.SOFT_LIMIT_UNCONFIRMED
    assert err.detail and err.request_msg_id == p.SetContinuousDose.MSG_ID
    err = host.command(p.CancelBolus)
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.INVALID_STATE
    after = rig.pump.status()
    assert (after.program_version, after.mode, after.basal_rate_nl_per_day) == (
        before.program_version,
        before.mode,
        before.basal_rate_nl_per_day,
    )


def test_busy_during_the_self_test_is_not_recorded(rig: Rig) -> None:
    host = rig.host()
    cid = uuid.uuid4().bytes
    err = host.command(p.AlarmTest, tone=p.Tone.SINGLE_TONE, command_id=cid)
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.BUSY
    rig.sleep(2_001)
    ack = host.command(p.AlarmTest, tone=p.Tone.SINGLE_TONE, command_id=cid)
    assert isinstance(ack, p.CommandAck) and not ack.duplicate


# --- the stale log after a motor stall (domain.md 2.1) ----------------------------------------


def _recovered_seqs(page: p.EventPage) -> list[int]:
    return [e.seq for e in page.events if e.kind == fm.EventKind.MOTOR_RECOVERED]


def _read_all(host: Host) -> list[p.EventRecord]:
    out: list[p.EventRecord] = []
    cursor, more = 0, True
    while more:
        page = host.call(p.GetEvents(cursor=cursor, max_count=16))
        out += page.events
        cursor, more = page.next_cursor, page.more
    return out


def test_motor_recovery_shows_only_from_the_second_interrogation(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    rig.pump.inject(fm.MotorStall(recover_after_ms=60_000))
    rig.sleep(120_000)
    assert events_of(rig, fm.EventKind.MOTOR_RECOVERED)
    first = rig.host()
    kinds = [e.kind for e in _read_all(first)]
    assert fm.EventKind.MOTOR_STALL in kinds and fm.EventKind.MOTOR_RECOVERED not in kinds
    second = rig.host()
    kinds = [e.kind for e in _read_all(second)]
    assert fm.EventKind.MOTOR_RECOVERED in kinds


def test_stale_log_can_be_switched_off(tmp_path: Path) -> None:
    rig = Rig(tmp_path, stale_recovery_log=False)
    host = rig.host()
    rig.ready_pump(host)
    rig.pump.inject(fm.MotorStall(recover_after_ms=60_000))
    rig.sleep(120_000)
    kinds = [e.kind for e in _read_all(rig.host())]
    assert fm.EventKind.MOTOR_RECOVERED in kinds
