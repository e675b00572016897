"""The read-only answers: each read request's response message, built from the model.

`READS` is the protocol's reads as data: one builder per read request class (`GetStatus` ->
`Status`, `GetEvents` -> `EventPage`, ...), each taking the `PumpDevice` and the request and
returning the response message; `PumpDevice._read` looks the builder up by the request's class.
Builders only look: they never change the model, the journal or the device (the fuzz oracle
checks that no read changes the therapy). Model values are clamped to the wire's field ranges
with `u32` and `at` (a missing time is 0). The stale-log rule (domain.md 2.1: a motor-recovery
record becomes readable only from the second session opened after it was written) is applied
here, in `GetEvents`, from the horizon the device keeps as sessions open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import firmware_model as fm
import protocol as p

if TYPE_CHECKING:
    from ._device import PumpDevice

FIRMWARE_VERSION = (1, 0, 0)
U32 = 0xFFFF_FFFF


def u32(v: int) -> int:
    return min(max(v, 0), U32)


def at(v: int | None) -> int:
    return 0 if v is None else max(v, 0)


def device_info(dev: PumpDevice, msg: p.GetDeviceInfo) -> p.DeviceInfo:
    prof = dev.pump.profile
    return p.DeviceInfo(
        model=p.PumpModel(int(prof.id)),
        serial_number=dev.pump.serial,
        firmware_major=FIRMWARE_VERSION[0],
        firmware_minor=FIRMWARE_VERSION[1],
        firmware_patch=FIRMWARE_VERSION[2],
        protocol_major=p.PROTOCOL_MAJOR,
        protocol_minor=p.PROTOCOL_MINOR,
        reservoir_capacity_nl=prof.reservoir_nl,
        min_rate_nl_per_day=prof.min_rate_nl_per_day,
        max_rate_nl_per_day=prof.max_rate_nl_per_day,
        supported_modes=p.Capability(int(prof.capabilities)),
        max_schedule_steps=prof.max_schedule_steps,
        speed_factor_milli=dev.clock.speed_milli,
    )


_ALARM_SETS: dict[int, p.Alarm] = {}  # IntFlag construction costs a microsecond: memoised


def alarm_set(alarms: int) -> p.Alarm:
    """The protocol's Alarm flag set with the same bits (few distinct sets ever occur)."""
    out = _ALARM_SETS.get(alarms)
    if out is None:
        out = p.Alarm(int(alarms))
        if len(_ALARM_SETS) < 4096:
            _ALARM_SETS[int(alarms)] = out
    return out


def status(dev: PumpDevice, msg: p.GetStatus) -> p.Status:
    # The model's enums are IntEnums with the protocol's values: the message's own validation
    # maps each to the protocol member (and refuses a value that has none), so no conversion
    # here. `_of` is the class call with positional values (the same checks, in the same
    # order; tests/test_codec_of.py), without keyword matching and a frozen setattr per field,
    # and `at` and `u32` are spelled out: this is every status request's path
    # (docs/emulator.md, "Round trips"; tests/test_status_fast_path.py holds it to the
    # keyword-built message). `wire_status` is `status()` cut to the frame's 20 fields.
    (
        clock_ms,
        version,
        seq,
        mode,
        bolus,
        suspended,
        rate,
        dose,
        drug_,
        conc,
        unit,
        volume,
        low_nl,
        alarms_,
        battery,
        permille,
        low,
        empty,
        refill,
        eri,
    ) = dev.pump.wire_status()
    return p.Status._of(  # type: ignore[no-any-return]
        max(clock_ms, 0),  # pump_time_ms
        version,
        seq,
        mode,
        bolus,
        suspended,
        min(rate, 4_000_000_000),
        min(max(dose, 0), U32),
        drug_,
        conc,  # concentration_ng_per_ml
        unit,  # concentration_unit
        volume,  # reservoir_volume_nl
        low_nl,  # low_reservoir_threshold_nl
        alarm_set(alarms_),
        battery,
        permille,
        0 if low is None else max(low, 0),  # low_reservoir_at_ms
        0 if empty is None else max(empty, 0),  # empty_at_ms
        0 if refill is None else max(refill, 0),  # last_refill_at_ms
        0 if eri is None else max(eri, 0),  # replacement_due_at_ms
    )


def program(dev: PumpDevice, msg: p.GetProgram) -> p.Program:
    pump = dev.pump
    st = pump.status()
    b = pump.bolus
    offset = pump.clock_ms - pump.now
    conc = st.conc_ng_per_ml
    steps = tuple(p.ScheduleStep(start_minute=m, dose_ng_per_day=d) for m, d in pump.schedule)
    return p.Program(
        program_version=st.program_version,
        mode=p.ProgramMode(int(st.mode)),
        suspended=st.suspended,
        dose_ng_per_day=u32(pump.program_dose_ng_per_day),
        rate_nl_per_day=min(st.basal_rate_nl_per_day, 4_000_000_000),
        bridge_ends_at_ms=at(pump.bridge_ends_at_ms),
        bolus=p.BolusKind(int(b.kind)) if b else p.BolusKind.NONE,
        bolus_dose_ng=u32(b.dose_ng) if b else 0,
        bolus_delivered_ng=u32(b.delivered_nl * conc // fm.NL_PER_ML) if b else 0,
        bolus_ends_at_ms=b.end_ms + offset if b else 0,
        steps=steps if st.mode is fm.Mode.SCHEDULE else (),
    )


def drug(dev: PumpDevice, msg: p.GetDrug) -> p.DrugInfo:
    st = dev.pump.status()
    lim = dev.pump.library.get(st.drug)
    return p.DrugInfo(
        drug=p.Drug(int(st.drug)),
        concentration_ng_per_ml=st.conc_ng_per_ml,
        concentration_unit=p.ConcentrationUnit(int(st.conc_unit)),
        soft_limit_ng_per_day=lim.soft_limit_ng_per_day if lim else 0,
        hard_limit_ng_per_day=lim.hard_limit_ng_per_day if lim else 0,
        max_rate_nl_per_day=lim.max_rate_nl_per_day if lim else 0,
        patient_bolus_allowed=bool(lim and lim.patient_bolus_allowed),
    )


def patient_bolus(dev: PumpDevice, msg: p.GetPatientBolus) -> p.PatientBolusSettings:
    pump = dev.pump
    pb = pump.patient_bolus
    count, lock = pump.bolus_window()
    offset = pump.clock_ms - pump.now
    return p.PatientBolusSettings(
        enabled=pb.enabled,
        dose_ng=pb.dose_ng,
        duration_ms=pb.duration_ms,
        lockout_ms=pb.lockout_ms,
        max_per_24h=pb.max_per_24h,
        boluses_in_window=min(count, 255),
        lockout_ends_at_ms=lock + offset if lock else 0,
    )


def alarms(dev: PumpDevice, msg: p.GetAlarms) -> p.AlarmList:
    return p.AlarmList(
        alarms=tuple(
            p.AlarmEntry(
                alarm=p.Alarm(int(a.alarm)),
                critical=a.critical,
                priority=p.AlarmPriority(int(a.priority)),
                state=p.AlarmState(int(a.state)),
                raised_at_ms=at(a.raised_at_ms),
                silenced_until_ms=at(a.silenced_until_ms),
                repeat_interval_ms=u32(a.repeat_interval_ms),
            )
            for a in dev.pump.alarms()[:16]
        )
    )


def events(dev: PumpDevice, msg: p.GetEvents) -> p.EventPage:
    """A page of the log from `cursor`; with the stale-log rule, a recovery record not yet
    published ends the page (and `more` stops before it)."""
    pump = dev.pump
    cursor = msg.cursor
    newest = pump.event_seq
    records = pump.events(cursor, msg.max_count)
    if dev.stale_recovery_log:
        published_upto = dev._published_upto
        for i, e in enumerate(records):
            if e.kind is fm.EventKind.MOTOR_RECOVERED and e.seq > published_upto:
                newest = e.seq - 1
                records = records[:i]
                break
        else:
            hidden = _first_unpublished_recovery(pump, cursor, published_upto)
            if hidden is not None:
                newest = hidden - 1
    next_cursor = records[-1].seq + 1 if records else max(cursor, pump.oldest_seq)
    return p.EventPage(
        next_cursor=next_cursor,
        oldest_seq=pump.oldest_seq,
        more=next_cursor <= newest,
        events=tuple(
            p.EventRecord(
                seq=e.seq,
                time_ms=e.time_ms,
                kind=int(e.kind),
                source=p.EventSource(int(e.source)),
                command_id=e.command_id,
                value_a=e.a,
                value_b=e.b,
            )
            for e in records
        ),
    )


def _first_unpublished_recovery(pump: fm.Pump, cursor: int, published_upto: int) -> int | None:
    for e in pump.events(max(cursor, published_upto + 1)):
        if e.kind is fm.EventKind.MOTOR_RECOVERED:
            return e.seq
    return None


def clock(dev: PumpDevice, msg: p.GetClock) -> p.Clock:
    return p.Clock(pump_time_ms=at(dev.pump.clock_ms), speed_factor_milli=dev.clock.speed_milli)


def clock_local(dev: PumpDevice, msg: p.GetClockLocal) -> p.ClockLocal:
    st = dev.pump.status()
    return p.ClockLocal(
        pump_time_ms=at(st.clock_ms),
        speed_factor_milli=dev.clock.speed_milli,
        utc_offset_ms=st.utc_offset_ms,
        zone=st.zone,
    )


def command_status(dev: PumpDevice, msg: p.GetCommandStatus) -> p.CommandStatus:
    """What the exactly-once journal knows of a command id (UNKNOWN: never seen, or evicted)."""
    rec = dev._commands.get(msg.command_id)
    if rec is None:
        return p.CommandStatus(
            command_id=msg.command_id,
            state=p.CommandState.UNKNOWN,
            error_code=0,
            program_version=0,
            event_seq=0,
        )
    return p.CommandStatus(
        command_id=msg.command_id,
        state=p.CommandState(rec.state),
        error_code=rec.error_code,
        program_version=rec.program_version,
        event_seq=rec.event_seq,
    )


def alarm_settings(dev: PumpDevice, msg: p.GetAlarmSettings) -> p.AlarmSettings:
    low, crit, noncrit = dev.pump.alarm_settings
    return p.AlarmSettings(
        low_reservoir_threshold_nl=low,
        critical_repeat_ms=crit,
        noncritical_repeat_ms=noncrit,
    )


def catheter_info(dev: PumpDevice, msg: p.GetCatheterInfo) -> p.CatheterInfo:
    pump = dev.pump
    return p.CatheterInfo(
        catheter_volume_nl=pump.catheter_volume_nl,
        pump_tubing_nl=pump.profile.pump_tubing_nl,
    )


Reader = Callable[["PumpDevice", Any], p.Message]

READS: dict[type[p.Message], Reader] = {
    p.GetDeviceInfo: device_info,
    p.GetStatus: status,
    p.GetProgram: program,
    p.GetDrug: drug,
    p.GetPatientBolus: patient_bolus,
    p.GetAlarms: alarms,
    p.GetEvents: events,
    p.GetClock: clock,
    p.GetClockLocal: clock_local,
    p.GetCommandStatus: command_status,
    p.GetAlarmSettings: alarm_settings,
    p.GetCatheterInfo: catheter_info,
}
