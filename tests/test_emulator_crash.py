"""Crash durability (reliability.md claim 12): the emulator as a real process, ended abruptly at
every enumerated write step of its store (PUMP_CRASHPOINT=n) and killed with SIGKILL at random
moments, while a programmer drives it. After each restart: no acknowledged command lost, none
applied twice, the database passes its integrity check, every outcome is known."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import firmware_model as fm
import programmer
import protocol as p
from emulator._store import Store

from .emulator_helpers import wait_ready
from .simulation import replay_difference

MG = 1_000_000
START_S = 60  # deadline for the emulator to start or to stop cleanly
ANSWER_S = 10.0  # deadline for each answer while checking what a restarted pump kept


def start(state: Path, crashpoint: int | None = None) -> tuple[subprocess.Popen[bytes], dict]:  # type: ignore[type-arg]
    ready = state.parent / "ready.json"
    ready.unlink(missing_ok=True)
    env = dict(os.environ)
    env.pop("PUMP_CRASHPOINT", None)
    if crashpoint is not None:
        env["PUMP_CRASHPOINT"] = str(crashpoint)
    with (state.parent / "emulator.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(state),
             "--ready-file", str(ready), "--speed", "1000", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=log, env=env,
        )  # fmt: skip
    # {} when it died while starting (a crash point in the start-up commit); a loaded machine
    # may take many seconds to start a Python process: a generous deadline
    output = state.parent / "emulator.log"
    return proc, wait_ready(proc, ready, output, timeout_s=START_S, may_exit=True)


async def drive(info: dict, journal: Path, acked: dict[bytes, int], count: int) -> None:  # type: ignore[type-arg]
    """Dose changes until the pump dies; record every acknowledged command id."""
    try:
        async with programmer.connect(
            f"serial://{info['port']}",
            key=Path(info["key_files"]["clinician"]),
            journal=journal,
            timeout_s=0.3,
            retries=1,
        ) as pump:
            st = await pump.status()
            if st.drug is p.Drug.NONE:
                refill = await pump.prepare_refill(
                    withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE,
                    conc_ng_per_ml=25 * MG,
                )  # fmt: skip
                await refill.commit()
            for i in range(count):
                change = await pump.prepare_dose((2 + i % 8) * MG)  # 0.08 .. 0.36 mL/day
                ack = await change.commit()
                acked[change.message.command_id] = ack.event_seq  # type: ignore[attr-defined]
    except programmer.ProgrammerError:
        pass  # the pump died under us: what this test is about


def check(
    state: Path, journal: Path, acked: dict[bytes, int], new: set[bytes] | None = None
) -> None:
    """Restart the emulator and check what it kept. Every id acknowledged in the last run
    (`new`, default all) and a sample of the older ones is asked for through the protocol;
    all of them are checked in the store."""
    proc, info = start(state)
    rng = random.Random(len(acked))
    older = sorted(set(acked) - (set(acked) if new is None else new))
    ask = sorted(set(acked) if new is None else new) + rng.sample(older, min(50, len(older)))
    try:
        assert info, "the emulator did not restart"

        async def verify() -> None:
            async with programmer.connect(
                f"serial://{info['port']}",
                key=Path(info["key_files"]["clinician"]),
                journal=journal,
                timeout_s=ANSWER_S,  # a pump just restarted on a loaded machine may be slow
            ) as pump:
                for cid in ask:
                    status = await pump.command_status(cid)
                    assert status.state is p.CommandState.APPLIED, "an acknowledged command lost"
                    assert status.event_seq == acked[cid]
                assert programmer.Journal(journal).pending(info["pump_serial"]) == []

        asyncio.run(verify())
    finally:
        proc.terminate()
        proc.wait(START_S)
    db = sqlite3.connect(state / "pump.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        records = {
            bytes(c): (s, seq)
            for c, s, seq in db.execute("SELECT command_id, state, event_seq FROM commands")
        }
        for cid, seq in acked.items():
            assert records.get(cid) == (int(p.CommandState.APPLIED), seq), "acknowledged, lost"
        rows = db.execute(
            "SELECT command_id, COUNT(*) FROM events WHERE kind = 2 AND source = 2 "
            "GROUP BY command_id"
        ).fetchall()
        assert all(n == 1 for _, n in rows), "a command applied twice"
        applied = {bytes(c) for c, _ in rows}
        # The log is a bounded ring: acknowledged commands whose records it still keeps.
        oldest = db.execute("SELECT MIN(seq) FROM events").fetchone()[0]
        assert {cid for cid, seq in acked.items() if seq >= oldest} <= applied
    finally:
        db.close()
    if oldest == 1:  # the whole history is still in the log: the state must be its replay
        assert (
            replay_difference(stored_pump(state), state / "pump.sqlite", journaled(journal)) == []
        )


def stored_pump(state: Path) -> fm.Pump:
    store = Store(state / "pump.sqlite")
    try:
        saved = store.load()
    finally:
        store.close()
    assert saved is not None
    return fm.restore(saved.snapshot)


def journaled(journal: Path) -> dict[bytes, p.Message]:
    """Every command the programmer sent, decoded from its journal."""
    db = sqlite3.connect(journal)
    try:
        return {
            bytes(cid): p.MESSAGES_BY_NAME[name]._decode(request)
            for cid, name, request in db.execute("SELECT command_id, message, request FROM journal")
        }
    finally:
        db.close()


def crash_at(tmp_path: Path, point: int) -> None:
    state, journal = tmp_path / "state", tmp_path / "journal.sqlite"
    acked: dict[bytes, int] = {}
    proc, info = start(state, crashpoint=point)  # the start-up commit counts too
    try:
        if info:
            asyncio.run(drive(info, journal, acked, count=8))
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.terminate()  # the crash point lay beyond this run: a clean stop instead
            proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check(state, journal, acked)


@pytest.mark.parametrize("point", range(1, 25))
def test_crash_at_every_write_step(tmp_path: Path, point: int) -> None:
    """Steps 1-24: the start-up commit, the refill and the first dose changes, each of their
    write steps (begin, state, events, command, commit, committed)."""
    crash_at(tmp_path, point)


@pytest.mark.slow
@pytest.mark.parametrize("point", range(25, 121))
def test_crash_at_every_write_step_large(tmp_path: Path, point: int) -> None:
    crash_at(tmp_path, point)


async def _drive_until_killed(
    info: dict[str, object], journal: Path, acked: dict[bytes, int], pid: int, delay: float
) -> None:
    asyncio.get_running_loop().call_later(delay, os.kill, pid, signal.SIGKILL)
    await drive(info, journal, acked, count=1000)


def kill_randomly(tmp_path: Path, runs: int, seed: int) -> int:
    rng = random.Random(seed)
    state, journal = tmp_path / "state", tmp_path / "journal.sqlite"
    acked: dict[bytes, int] = {}
    kills = 0
    for _ in range(runs):
        proc, info = start(state)
        try:
            loop_acked: dict[bytes, int] = {}
            asyncio.run(
                _drive_until_killed(info, journal, loop_acked, proc.pid, rng.uniform(0, 0.25))
            )
            acked.update(loop_acked)
            kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        check(state, journal, acked, set(loop_acked))
    return kills


def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    assert kill_randomly(tmp_path, runs=12, seed=3) == 12


@pytest.mark.slow
def test_sigkill_hundreds_of_times(tmp_path: Path) -> None:
    assert kill_randomly(tmp_path, runs=500, seed=5) == 500
