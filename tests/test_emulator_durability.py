"""The pump's exactly-once and durability on the wire (docs/protocol.md sections 5-10), without
ports: a retried command applied once, acknowledged commands surviving a crash, a failed write
applying nothing, restart and resume."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from pathlib import Path

import pytest

import firmware_model as fm
import protocol as p
from emulator import ControlCode

from .emulator_helpers import (
    MORPHINE_25,
    Rig,
    events_of,
)

# --- exactly once -----------------------------------------------------------------------------


def test_a_retried_command_is_applied_once_and_answered_as_duplicate(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    cmd = p.StartClinicianBolus(
        command_id=uuid.uuid4().bytes,
        expected_program_version=host.version,
        dose_ng=500_000,
        duration_ms=600_000,
        then_stop=False,
        confirm_soft_limit=False,
    )
    first = host.call(cmd)
    seq_after = rig.pump.event_seq
    boluses = len(events_of(rig, fm.EventKind.BOLUS_STARTED))
    second = host.call(cmd)  # the same command, sealed again with a new counter
    assert isinstance(first, p.CommandAck) and isinstance(second, p.CommandAck)
    assert not first.duplicate and second.duplicate
    assert (second.program_version, second.event_seq) == (first.program_version, first.event_seq)
    assert rig.pump.event_seq == seq_after
    assert len(events_of(rig, fm.EventKind.BOLUS_STARTED)) == boluses == 1
    status = host.call(p.GetCommandStatus(command_id=cmd.command_id))
    assert status.state is p.CommandState.APPLIED
    assert (status.program_version, status.event_seq) == (first.program_version, first.event_seq)


def test_a_duplicate_refill_resends_the_original_report(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    rig.advance(86_400_000)
    cmd = p.RecordRefill(
        command_id=uuid.uuid4().bytes,
        expected_program_version=host.version,
        withdrawn_volume_nl=19_000_000,
        added_volume_nl=1_000_000,
        drug=p.Drug.MORPHINE,
        concentration_ng_per_ml=MORPHINE_25,
        concentration_unit=p.ConcentrationUnit.MG_PER_ML,
        low_reservoir_threshold_nl=2_000_000,
        confirm_soft_limit=False,
    )
    first = host.call(cmd)
    rig.advance(3_600_000)
    second = host.call(cmd)
    assert isinstance(first, p.RefillResult) and second.duplicate
    assert second == dataclasses.replace(first, duplicate=True)
    assert len(events_of(rig, fm.EventKind.REFILL)) == 2  # the first fill and this one


def test_same_command_id_with_other_content_is_refused(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    cid = uuid.uuid4().bytes
    host.command(p.SetContinuousDose, dose_ng_per_day=10_000_000, command_id=cid)
    version = rig.pump.program_version
    err = host.command(
        p.SetContinuousDose,
        dose_ng_per_day=12_000_000,
        command_id=cid,
        expected_program_version=version,
    )
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.IDEMPOTENCY_MISMATCH
    assert rig.pump.program_version == version
    assert rig.pump.status().daily_dose_ng == 10_000_000


def test_a_refusal_is_recorded_and_repeated_for_its_retry(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    cmd = p.SetContinuousDose(
        command_id=uuid.uuid4().bytes,
        expected_program_version=host.version,
        dose_ng_per_day=24_000_000,
        confirm_soft_limit=False,
    )
    assert host.call(cmd).code is p.ErrorCode.SOFT_LIMIT_UNCONFIRMED
    status = host.call(p.GetCommandStatus(command_id=cmd.command_id))
    assert (status.state, status.error_code) == (
        p.CommandState.REJECTED,
        p.ErrorCode.SOFT_LIMIT_UNCONFIRMED,
    )
    assert host.call(cmd).code is p.ErrorCode.SOFT_LIMIT_UNCONFIRMED


def test_version_mismatch_is_not_recorded_so_the_reviewed_retry_applies(rig: Rig) -> None:
    host, other = rig.host(), rig.host()
    rig.ready_pump(host)
    other.status()
    assert isinstance(other.command(p.SetContinuousDose, dose_ng_per_day=9_000_000), p.CommandAck)
    cid = uuid.uuid4().bytes
    err = host.command(p.SetContinuousDose, dose_ng_per_day=10_000_000, command_id=cid)
    assert err.code is p.ErrorCode.PROGRAM_VERSION_MISMATCH
    assert rig.pump.status().daily_dose_ng == 9_000_000  # not silently overwritten
    unknown = host.call(p.GetCommandStatus(command_id=cid))
    assert unknown.state is p.CommandState.UNKNOWN
    host.status()
    ack = host.command(p.SetContinuousDose, dose_ng_per_day=10_000_000, command_id=cid)
    assert isinstance(ack, p.CommandAck)


def test_unknown_command_id_status(rig: Rig) -> None:
    host = rig.host(p.Role.PATIENT)
    status = host.call(p.GetCommandStatus(command_id=bytes(range(16))))
    assert status.state is p.CommandState.UNKNOWN and status.error_code == 0


# --- durability -------------------------------------------------------------------------------


def test_acknowledged_commands_survive_a_crash_and_stay_exactly_once(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    cmd = p.SetContinuousDose(
        command_id=uuid.uuid4().bytes,
        expected_program_version=host.version,
        dose_ng_per_day=11_000_000,
        confirm_soft_limit=False,
    )
    ack = host.call(cmd)
    rig.crash()
    assert rig.pump.status().daily_dose_ng == 11_000_000
    assert rig.pump.program_version == ack.program_version
    host = rig.host()  # sessions live in RAM: a new handshake
    again = host.call(cmd)
    assert isinstance(again, p.CommandAck) and again.duplicate
    assert again.event_seq == ack.event_seq
    status = host.call(p.GetCommandStatus(command_id=cmd.command_id))
    assert status.state is p.CommandState.APPLIED


def test_a_failed_commit_applies_nothing_and_the_retry_succeeds(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host)
    store = rig.device.store
    assert store is not None
    before = rig.model_state()

    def fail(step: str) -> None:
        if step == "command":
            raise sqlite3.OperationalError("disk I/O error")

    store.fault_hook = fail
    cmd = p.SetContinuousDose(
        command_id=uuid.uuid4().bytes,
        expected_program_version=host.version,
        dose_ng_per_day=11_000_000,
        confirm_soft_limit=False,
    )
    err = host.call(cmd)
    assert isinstance(err, p.Error) and err.code is p.ErrorCode.STORAGE_FAILURE
    assert "nothing was applied" in err.detail
    assert rig.model_state()["state"]["program_version"] == before["state"]["program_version"]
    assert rig.pump.status().daily_dose_ng == 10_000_000
    assert host.call(p.GetCommandStatus(command_id=cmd.command_id)).state is (
        p.CommandState.UNKNOWN
    )
    store.fault_hook = None
    ack = host.call(cmd)
    assert isinstance(ack, p.CommandAck) and not ack.duplicate
    rig.crash()
    assert rig.pump.status().daily_dose_ng == 11_000_000
    assert rig.device.store is not None and rig.device.store.integrity_check() == "ok"


def test_restart_applies_the_time_spent_down(rig: Rig) -> None:
    host = rig.host()
    rig.ready_pump(host, dose_ng=15_000_000)
    rig.sleep(1000)
    before = rig.pump.status()
    rig.restart(down_ms=10 * 86_400_000)  # ten days off, at speed x1
    after = rig.pump.status()
    assert after.now >= before.now + 10 * fm.DAY_MS
    # the pump kept pumping: 0.6 mL/day for ten days
    assert before.reservoir_nl - after.reservoir_nl == pytest.approx(6_000_000, abs=1_000)
    started = [e for e in events_of(rig, fm.EventKind.CONTROL) if e.a == ControlCode.STARTED]
    assert started[-1].b >= 10 * fm.DAY_MS
    closed = events_of(rig, fm.EventKind.SESSION_CLOSED)
    assert closed and closed[-1].a == p.SessionEndReason.PUMP_RESTART


def test_restart_at_speed_applies_accelerated_downtime(tmp_path: Path) -> None:
    rig = Rig(tmp_path, speed_milli=1_000_000)  # x1000
    host = rig.host()
    rig.ready_pump(host)
    t = rig.pump.now
    rig.restart(down_ms=1_000)
    assert rig.pump.now >= t + 1_000_000


def test_a_state_directory_of_another_pump_is_refused(tmp_path: Path) -> None:
    Rig(tmp_path).device.store.close()  # type: ignore[union-attr]
    with pytest.raises(Exception, match="holds pump 1234"):
        Rig(tmp_path, serial=99)


def test_key_files_are_private(rig: Rig) -> None:
    for name in ("clinician.key", "patient.key"):
        mode = (rig.state_dir / name).stat().st_mode & 0o777
        assert mode == 0o600


@pytest.mark.parametrize("n", range(1, 41))
def test_an_io_error_at_the_nth_write_step_applies_nothing(tmp_path: Path, n: int) -> None:
    """reliability.md claim 13: the n-th store write step fails; the command that hit it is
    answered STORAGE_FAILURE and left no trace; its retry (same id) applies once; the memory
    on disk then equals the pump in memory."""
    rig = Rig(tmp_path)
    host = rig.host()
    rig.ready_pump(host)
    store = rig.device.store
    assert store is not None
    steps = 0

    def fail_once(step: str) -> None:
        nonlocal steps
        steps += 1
        if steps == n:
            raise OSError(5, "Input/output error")

    store.fault_hook = fail_once
    failures = 0
    for i in range(8):
        cmd = p.SetContinuousDose(
            command_id=uuid.uuid4().bytes,
            expected_program_version=rig.pump.program_version,
            dose_ng_per_day=(2 + i) * 1_000_000,
            confirm_soft_limit=False,
        )
        before = rig.pump.program_version
        answer = host.call(cmd)
        if isinstance(answer, p.Error):
            assert answer.code is p.ErrorCode.STORAGE_FAILURE and "nothing" in answer.detail
            assert rig.pump.program_version == before  # no partial effect
            status = host.call(p.GetCommandStatus(command_id=cmd.command_id))
            assert status.state is p.CommandState.UNKNOWN
            failures += 1
            answer = host.call(cmd)  # the retry, same id
        assert isinstance(answer, p.CommandAck) and not answer.duplicate
        assert rig.pump.status().daily_dose_ng == (2 + i) * 1_000_000
    assert failures <= 1
    in_memory = (rig.pump.program_version, rig.pump.status().daily_dose_ng)
    rig.crash()
    assert (rig.pump.program_version, rig.pump.status().daily_dose_ng) == in_memory
    assert rig.device.store is not None and rig.device.store.integrity_check() == "ok"


def test_the_clock_never_goes_back() -> None:
    from emulator import VirtualClock

    mono = [0]
    clock = VirtualClock(1_000, 2_000, monotonic_ns=lambda: mono[0])
    mono[0] = 5 * 1_000_000  # 5 ms real at x2
    assert clock.now() == 1_010
    clock.jump_to(500)  # already passed: stays
    assert clock.now() == 1_010
    clock.jump_to(9_000)
    mono[0] += 1_000_000
    assert clock.now() == 9_002
