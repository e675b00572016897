"""The event log is in the order things happened (docs/protocol.md section 16): a SECURITY
record, although coalesced per code for up to a second, is written before any record of what
happened after the frames it counts, and carries the pump-clock time of the first of them."""

from __future__ import annotations

from pathlib import Path

import firmware_model as fm
import protocol as p

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
