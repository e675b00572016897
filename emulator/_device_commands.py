"""The commands: a protocol command message as a call on the model, its result as the answer.

`apply_message` is the only mapping from host-to-pump command messages to model calls: the
device applies every new command through it and simulations replay logs through it. `CALLS` is
that mapping as data, one entry per command message class turning the message's fields into the
model method's arguments; the arguments all commands share (command id, source, and the expected
program version and soft-limit confirmation of the messages that carry them) are added in one
place. `command_response` turns what the model returned into the success answer, which is also
what the exactly-once journal records and replays (`CommandAck`, `RefillResult`,
`PatientBolusAccepted`). The journal itself (duplicate ids, the durable commit before the
answer, the rollback on a failed commit) is `PumpDevice._command` in _device.py: it shares the
device's memory state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import firmware_model as fm
import protocol as p

from ._device_reads import at, u32

Result = fm.Applied | fm.RefillReport | fm.PatientBolusGranted
Call = Callable[[fm.Pump, Any, dict[str, Any]], Result]
M = TypeVar("M", bound=p.Message)

# message field -> model keyword, added for every command message that has the field
_SHARED = (
    ("expected_program_version", "expected_version"),
    ("confirm_soft_limit", "confirm_soft_limit"),
)


def _model_alarms(bits: int) -> int:
    """Protocol alarm bits the model does not raise (dose limit, watchdog) match nothing."""
    known = 0
    for a in fm.Alarm:
        known |= int(a)
    return int(bits) & known


def _on(
    cls: type[M], call: Callable[[fm.Pump, M, dict[str, Any]], Result]
) -> tuple[type[p.Message], Call]:
    """One `CALLS` entry; typed so that mypy checks each call against its message's fields."""
    return cls, call


CALLS: dict[type[p.Message], Call] = dict(
    [
        _on(
            p.SetDrug,
            lambda pump, m, kw: pump.set_drug(
                fm.Drug(int(m.drug)),
                m.concentration_ng_per_ml,
                fm.ConcentrationUnit(int(m.concentration_unit)),
                **kw,
            ),
        ),
        _on(
            p.SetContinuousDose,
            lambda pump, m, kw: pump.set_continuous_dose(m.dose_ng_per_day, **kw),
        ),
        _on(
            p.SetSchedule,
            lambda pump, m, kw: pump.set_schedule(
                [(s.start_minute, s.dose_ng_per_day) for s in m.steps], **kw
            ),
        ),
        _on(
            p.StartClinicianBolus,
            lambda pump, m, kw: pump.start_clinician_bolus(
                m.dose_ng, m.duration_ms, then_stop=m.then_stop, **kw
            ),
        ),
        _on(p.CancelBolus, lambda pump, m, kw: pump.cancel_bolus(**kw)),
        _on(p.StartPrimingBolus, lambda pump, m, kw: pump.start_priming_bolus(m.volume_nl, **kw)),
        _on(
            p.StartBridge,
            lambda pump, m, kw: pump.start_bridge(
                m.dead_volume_nl, m.previous_concentration_ng_per_ml, m.dose_ng_per_day, **kw
            ),
        ),
        _on(
            p.SetPatientBolus,
            lambda pump, m, kw: pump.set_patient_bolus(
                enabled=m.enabled,
                dose_ng=m.dose_ng,
                duration_ms=m.duration_ms,
                lockout_ms=m.lockout_ms,
                max_per_24h=m.max_per_24h,
                **kw,
            ),
        ),
        _on(
            p.RecordRefill,
            lambda pump, m, kw: pump.record_refill(
                withdrawn_nl=m.withdrawn_volume_nl,
                added_nl=m.added_volume_nl,
                drug=fm.Drug(int(m.drug)),
                conc_ng_per_ml=m.concentration_ng_per_ml,
                unit=fm.ConcentrationUnit(int(m.concentration_unit)),
                low_threshold_nl=m.low_reservoir_threshold_nl,
                **kw,
            ),
        ),
        _on(
            p.SetAlarmSettings,
            lambda pump, m, kw: pump.set_alarm_settings(
                low_threshold_nl=m.low_reservoir_threshold_nl,
                critical_repeat_ms=m.critical_repeat_ms,
                noncritical_repeat_ms=m.noncritical_repeat_ms,
                **kw,
            ),
        ),
        _on(p.Suspend, lambda pump, m, kw: pump.suspend(**kw)),
        _on(p.Resume, lambda pump, m, kw: pump.resume(**kw)),
        _on(
            p.AcknowledgeAlarms,
            lambda pump, m, kw: pump.acknowledge_alarms(fm.Alarm(_model_alarms(m.alarms)), **kw),
        ),
        _on(
            p.SilenceAlarms,
            lambda pump, m, kw: pump.silence_alarms(
                fm.Alarm(_model_alarms(m.alarms)), m.duration_ms, **kw
            ),
        ),
        _on(p.AlarmTest, lambda pump, m, kw: pump.alarm_test(fm.Tone(int(m.tone)), **kw)),
        _on(p.SetClock, lambda pump, m, kw: pump.set_clock(m.pump_time_ms, **kw)),
        _on(
            p.SetClockLocal,
            lambda pump, m, kw: pump.set_clock(
                m.pump_time_ms, utc_offset_ms=m.utc_offset_ms, zone=m.zone, **kw
            ),
        ),
        _on(p.RequestPatientBolus, lambda pump, m, kw: pump.request_patient_bolus(**kw)),
    ]
)

# per command class: its model call and the shared (message field, model keyword) pairs it has
_PLAN: dict[type[p.Message], tuple[Call, tuple[tuple[str, str], ...]]] = {
    cls: (call, tuple(pair for pair in _SHARED if pair[0] in {f.name for f in cls.FIELDS}))
    for cls, call in CALLS.items()
}


def apply_message(pump: fm.Pump, msg: Any) -> Result:
    """Apply one host-to-pump command message to a model (raises `fm.Rejected`). The device's
    only mapping from protocol commands to the model; simulations replay logs through it."""
    kw: dict[str, Any] = {"command_id": msg.command_id, "source": fm.Source.PROGRAMMER}
    plan = _PLAN.get(type(msg))
    if plan is None:  # pragma: no cover
        raise AssertionError(f"no handler for {type(msg).__name__}")
    call, shared = plan
    for field, keyword in shared:
        kw[keyword] = getattr(msg, field)
    return call(pump, msg, kw)


def command_response(
    msg: Any, result: Result
) -> p.CommandAck | p.RefillResult | p.PatientBolusAccepted:
    """The success answer to command `msg` that the model applied with `result`."""
    cid = msg.command_id
    if isinstance(result, fm.RefillReport):
        return p.RefillResult(
            command_id=cid,
            duplicate=False,
            program_version=result.program_version,
            event_seq=result.event_seq,
            expected_residual_nl=u32(result.expected_residual_nl),
            discrepancy_nl=max(min(result.discrepancy_nl, 2**31 - 1), -(2**31)),
            delivery_ratio_ppm=u32(result.delivery_ratio_ppm or 0),
            beyond_limits=result.beyond_limits,
            reservoir_volume_nl=result.reservoir_volume_nl,
            low_reservoir_at_ms=at(result.low_reservoir_at_ms),
            empty_at_ms=at(result.empty_at_ms),
        )
    if isinstance(result, fm.PatientBolusGranted):
        return p.PatientBolusAccepted(
            command_id=cid,
            duplicate=False,
            dose_ng=u32(result.dose_ng),
            ends_at_ms=at(result.ends_at_ms),
            lockout_ends_at_ms=at(result.lockout_ends_at_ms),
            boluses_left=min(result.boluses_left, 255),
        )
    return p.CommandAck(
        command_id=cid,
        duplicate=False,
        program_version=result.program_version,
        event_seq=result.event_seq,
    )
