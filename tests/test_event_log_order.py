"""The event log is in the order things happened (docs/protocol.md section 16): a SECURITY
record, although coalesced per code for up to a second, is written before any record of what
happened after the frames it counts, and carries the pump-clock time of the first of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
import protocol as p
from protocol._event_values import EVENT_VALUES

from .emulator_helpers import SERIAL, Host, Rig


def _plain_suspend() -> bytes:
    """A therapy command without a session: refused NOT_AUTHENTICATED, a security event."""
    msg = p.Suspend(command_id=bytes(range(16)), expected_program_version=1)
    return p.encode_frame(msg, pump_id=SERIAL, seq=7, from_pump=False)


def test_a_frame_refused_before_a_handshake_is_logged_before_the_session(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "pump")
    rig.sleep(2_001)
    seq = rig.pump.event_seq
    host = Host(rig, p.Role.CLINICIAN)
    refused_at = rig.pump.clock_ms
    answer = host.answer(rig.send(_plain_suspend()))
    assert isinstance(answer, p.Error) and answer.code is p.ErrorCode.NOT_AUTHENTICATED
    rig.sleep(300)  # less than the coalescing second: the count is still pending
    host.handshake()
    rig.sleep(2_000)
    records = list(rig.pump.events(seq + 1))
    kinds = [(e.kind, e.a) for e in records]
    assert kinds == [
        (fm.EventKind.SECURITY, int(p.ErrorCode.NOT_AUTHENTICATED)),
        (fm.EventKind.SESSION_OPENED, int(p.Role.CLINICIAN)),
    ]
    security, opened = records
    assert security.b == 1
    assert security.time_ms == refused_at < opened.time_ms


def test_a_flood_is_still_one_record_and_precedes_what_follows(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "pump")
    host = rig.host()
    rig.ready_pump(host)
    seq = rig.pump.event_seq
    first_at = rig.pump.clock_ms
    for _ in range(10):  # plain therapy commands: each refused, one record for all ten
        rig.send(_plain_suspend())
    host.command(p.Suspend)  # applied within the same second
    rig.sleep(2_000)
    records = list(rig.pump.events(seq + 1))
    assert [(e.kind, e.a, e.b) for e in records[:2]] == [
        (fm.EventKind.SECURITY, int(p.ErrorCode.NOT_AUTHENTICATED), 10),
        (fm.EventKind.SUSPENDED, int(fm.Mode.CONTINUOUS), 0),
    ]
    assert records[0].time_ms == first_at <= records[1].time_ms
    assert fm.EventKind.SECURITY not in [e.kind for e in records[2:]]


def test_a_count_pending_when_the_pump_logs_by_itself_comes_first(tmp_path: Path) -> None:
    """A clinician bolus ends on its own while a refusal's count is pending: the SECURITY record
    is written first, with its own (earlier) time."""
    rig = Rig(tmp_path / "pump")
    host = rig.host()
    rig.ready_pump(host)
    ack = host.command(p.StartClinicianBolus, dose_ng=100_000, duration_ms=60_000, then_stop=False)
    assert isinstance(ack, p.CommandAck), ack
    seq = rig.pump.event_seq
    refused_at = rig.pump.clock_ms
    rig.send(_plain_suspend())
    rig.advance(120_000)  # the bolus completes in model time before the count is written
    rig.sleep(2_000)
    records = list(rig.pump.events(seq + 1))
    assert [e.kind for e in records] == [fm.EventKind.SECURITY, fm.EventKind.BOLUS_COMPLETED]
    assert records[0].time_ms == refused_at < records[1].time_ms


# --- what value_a and value_b mean: one declaration, every kind, the model's numbers ----------


def test_every_event_kind_has_its_meaning_declared_once() -> None:
    assert list(EVENT_VALUES) == list(p.EventKind)
    runtime = {k.name for k, v in EVENT_VALUES.items() if v.runtime}
    assert runtime == {"SECURITY", "SESSION_OPENED", "SESSION_CLOSED", "CONTROL"}
    # the model accepts exactly these from a runtime (log_external) and writes the others
    pump = fm.Pump.create(serial=1234, now_ms=0)
    for kind in fm.EventKind:
        if kind.name in runtime:
            pump.log_external(kind, fm.Source.PROGRAMMER)
        else:
            try:
                pump.log_external(kind, fm.Source.PROGRAMMER)
            except ValueError:
                continue
            raise AssertionError(f"{kind.name} is the model's own")


@pytest.mark.parametrize(
    ("kind", "enum"),
    [
        (p.EventKind.COMMAND_REJECTED, fm.Command),
        (p.EventKind.FAULT, fm.FaultKind),
        (p.EventKind.MRI_EXPOSURE, fm.MriBehaviour),
    ],
)
def test_the_numbers_written_out_are_the_models(kind: p.EventKind, enum: Any) -> None:
    """Kinds whose value is a model enum with no protocol twin list its numbers in the text."""
    text = EVENT_VALUES[kind].a + " " + EVENT_VALUES[kind].b
    for member in enum:
        if member.name == "REQUEST_PATIENT_BOLUS":  # refused as BOLUS_DENIED instead
            continue
        assert f"{int(member)} {member.name}" in text, member


def test_log_external_dates_a_late_record_only_within_the_log_order() -> None:
    pump = fm.Pump.create(serial=1234, now_ms=1_000)
    pump.advance_to(5_000)
    seq = pump.log_external(fm.EventKind.SECURITY, fm.Source.PROGRAMMER, 5, 1, time_ms=3_000)
    assert pump.events(seq)[0].time_ms == 3_000
    for bad in (2_999, 5_001):  # before the newest record, or in the future
        with pytest.raises(ValueError, match=r"time_ms must be 3000 \.\. 5000"):
            pump.log_external(fm.EventKind.SECURITY, fm.Source.PROGRAMMER, 5, 1, time_ms=bad)
    assert pump.event_seq == seq
