"""docs/protocol.md section 17, the order of checks for a command, on the wire: the exactly-once
journal first, then the self test, end of service, the program version compare-and-set, and
only then the command's own validation."""

from __future__ import annotations

import uuid
from typing import Any

import firmware_model as fm
import protocol as p

from .emulator_helpers import Host, Rig


def dose(version: int, ng: int = 6_000_000, cid: bytes | None = None) -> p.SetContinuousDose:
    return p.SetContinuousDose(
        command_id=cid or uuid.uuid4().bytes,
        expected_program_version=version,
        dose_ng_per_day=ng,
        confirm_soft_limit=True,
    )


def code(answer: Any) -> p.ErrorCode | None:
    return answer.code if isinstance(answer, p.Error) else None


def status_of(host: Host, cid: bytes) -> p.CommandState:
    st = host.call(p.GetCommandStatus(command_id=cid))
    assert isinstance(st, p.CommandStatus), st
    return st.state


def ready(rig: Rig) -> Host:
    host = rig.host()
    rig.ready_pump(host)
    host.status()
    return host


def test_a_stale_version_retry_of_an_applied_command_is_a_duplicate(rig: Rig) -> None:
    host = ready(rig)
    v = host.version
    msg = dose(v)
    first = host.call(msg)
    assert isinstance(first, p.CommandAck) and first.program_version == v + 1
    again = host.call(msg)  # its expected version (v) is stale now: the command itself moved it
    assert isinstance(again, p.CommandAck), again
    assert again.duplicate and (again.program_version, again.event_seq) == (
        first.program_version,
        first.event_seq,
    )


def test_a_new_command_with_a_stale_version_is_refused_unrecorded(rig: Rig) -> None:
    host = ready(rig)
    v = host.version
    assert isinstance(host.call(dose(v)), p.CommandAck)
    cid = uuid.uuid4().bytes
    assert code(host.call(dose(v, cid=cid))) is p.ErrorCode.PROGRAM_VERSION_MISMATCH
    assert status_of(host, cid) is p.CommandState.UNKNOWN
    # not recorded: the same id, with the version read again, is a new command
    ack = host.call(dose(v + 1, ng=7_000_000, cid=cid))
    assert isinstance(ack, p.CommandAck) and not ack.duplicate


def test_the_version_is_compared_before_the_values_are_validated(rig: Rig) -> None:
    host = ready(rig)
    v = host.version
    assert isinstance(host.call(dose(v)), p.CommandAck)
    # 0.5 mg/day at 25 mg/mL is below the pump's minimum rate
    cid = uuid.uuid4().bytes
    assert code(host.call(dose(v, ng=500_000, cid=cid))) is p.ErrorCode.PROGRAM_VERSION_MISMATCH
    invalid = dose(v + 1, ng=500_000, cid=cid)
    assert code(host.call(invalid)) is p.ErrorCode.RATE_OUT_OF_RANGE
    assert status_of(host, cid) is p.CommandState.REJECTED
    # the refusal is recorded: after the version moved on, its retry gets the same refusal
    assert isinstance(host.call(dose(v + 1)), p.CommandAck)
    assert code(host.call(invalid)) is p.ErrorCode.RATE_OUT_OF_RANGE


def test_the_journal_comes_before_the_version_also_for_another_payload(rig: Rig) -> None:
    host = ready(rig)
    v = host.version
    msg = dose(v)
    assert isinstance(host.call(msg), p.CommandAck)
    other = dose(v, ng=7_000_000, cid=msg.command_id)  # same id, other payload, stale version
    assert code(host.call(other)) is p.ErrorCode.IDEMPOTENCY_MISMATCH


def test_the_self_test_comes_before_the_version(rig: Rig) -> None:
    host = rig.host()
    cid = uuid.uuid4().bytes
    assert code(host.call(dose(99, cid=cid))) is p.ErrorCode.BUSY  # in the first 2 s
    assert status_of(host, cid) is p.CommandState.UNKNOWN
    rig.sleep(2_001)
    assert code(host.call(dose(99, cid=cid))) is p.ErrorCode.PROGRAM_VERSION_MISMATCH


def test_end_of_service_comes_before_the_version_and_is_recorded(rig: Rig) -> None:
    host = ready(rig)
    rig.device.advance(writing=True)
    rig.pump.inject(fm.PrematureEos())
    cid = uuid.uuid4().bytes
    assert code(host.call(dose(99, cid=cid))) is p.ErrorCode.PUMP_STOPPED
    assert status_of(host, cid) is p.CommandState.REJECTED
