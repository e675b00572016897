"""The history of a Jepsen-style run (docs/reliability.md claim 17) and its checker.

A run records one `Op` per command a client sent: when it was invoked, its command id and
request, and how it completed: `ok` (acknowledged, with its event seq), `fail` (a definite
refusal, with its ErrorCode) or `info` (indeterminate: the link, the broker or the pump went
away). Info ops are resolved later by the programmer's journal (`pump.recovered` at the next
connect) and, at the end, by the pump itself.

The checker compares the history with what the pump reports at the end (GET_COMMAND_STATUS for
every command id, the store's `commands` and `events` tables) and returns every violation of:
acknowledged => applied exactly once with its event seq; refused => never applied; no command id
applied twice; every info op resolved; the dose is a register (the last applied dose change by
event seq wins); the program version strictly increases along applied commands; the store
passes its integrity check; no command applied that nobody sent.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import programmer
import protocol as p

OK, FAIL, INFO = "ok", "fail", "info"
PROGRAMMER_SOURCE = 2  # firmware_model.Source.PROGRAMMER
# The record that is a command's effect, by op kind (firmware_model.EventKind); its seq is the
# event seq the pump acknowledges.
EFFECT_KIND = {"dose": 2, "refill": 4, "bolus": 5}  # PROGRAM_CHANGED, REFILL, BOLUS_STARTED
APPLIED_STATE = int(p.CommandState.APPLIED)


@dataclasses.dataclass
class Op:
    """One command as a client saw it."""

    index: int
    client: str
    kind: str  # a key of EFFECT_KIND
    value: int  # dose: ng/day; bolus: ng; refill: nL added
    command_id: bytes
    expected_version: int
    request: str  # the message, as sent (repr)
    invoke_s: float
    complete_s: float | None = None
    outcome: str = "invoked"  # then OK, FAIL or INFO
    event_seq: int | None = None  # ok
    program_version: int | None = None  # ok
    duplicate: bool = False  # ok: the answer was the pump's stored one (a retry got it)
    code: str | None = None  # fail: the ErrorCode's name
    error: str | None = None  # info: what was raised
    resolution: str | None = None  # info: the journal's outcome once known
    resolved_by: str | None = None  # info: "journal" (settled at once) or "reconnect"

    def as_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["command_id"] = self.command_id.hex()
        return d


class History:
    """Ops in invocation order; one instance shared by every client of a run."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.ops: list[Op] = []
        self.by_id: dict[bytes, Op] = {}
        self.reconnect_resolutions = 0
        self.faults: list[tuple[float, str, float]] = []  # (time, kind, down time) injected
        self.in_flight = 0  # ops invoked and not yet completed

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 4)

    def invoke(self, client: str, kind: str, value: int, message: p.Message) -> Op:
        cid = getattr(message, "command_id", b"")
        assert isinstance(cid, bytes) and len(cid) == 16
        assert cid not in self.by_id, "a command id drawn twice"
        op = Op(
            index=len(self.ops),
            client=client,
            kind=kind,
            value=value,
            command_id=cid,
            expected_version=int(getattr(message, "expected_program_version", -1)),
            request=repr(message),
            invoke_s=self.now(),
        )
        self.ops.append(op)
        self.by_id[cid] = op
        self.in_flight += 1
        return op

    def _complete(self, op: Op, outcome: str) -> None:
        assert op.outcome == "invoked", "an op completed twice"
        op.complete_s, op.outcome = self.now(), outcome
        self.in_flight -= 1

    def ok(self, op: Op, answer: Any) -> None:
        self._complete(op, OK)
        op.event_seq = int(answer.event_seq)
        op.program_version = int(answer.program_version)
        op.duplicate = bool(getattr(answer, "duplicate", False))

    def fail(self, op: Op, code: p.ErrorCode) -> None:
        self._complete(op, FAIL)
        op.code = code.name

    def info(self, op: Op, error: BaseException | str, journal: programmer.Journal) -> None:
        self._complete(op, INFO)
        op.error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        entry = journal.get(op.command_id)
        if entry is not None and entry.outcome != "pending":  # the library settled it by status
            op.resolution, op.resolved_by = entry.outcome, "journal"

    def recovered(self, entries: list[tuple[bytes, str, str]]) -> None:
        """`pump.recovered` of a new connection: pending ids resolved by command status."""
        for cid, _message, outcome in entries:
            op = self.by_id.get(cid)
            if op is not None and op.outcome == INFO and op.resolution is None:
                op.resolution, op.resolved_by = outcome, "reconnect"
                self.reconnect_resolutions += 1

    def client_ops(self) -> list[Op]:
        return [op for op in self.ops if op.client != "setup"]

    def dump(self, path: Path) -> None:
        with path.open("w") as f:
            for t, kind, down_s in self.faults:
                f.write(json.dumps({"fault": kind, "at_s": t, "down_s": down_s}) + "\n")
            for op in self.ops:
                f.write(json.dumps(op.as_json()) + "\n")


@dataclasses.dataclass
class Observed:
    """What the pump says at the end of the run, after a clean restart."""

    status: dict[bytes, p.CommandStatus]  # GET_COMMAND_STATUS of every command id
    journal: dict[bytes, str]  # the journal's outcome of every command id, after reconnecting
    daily_dose_ng: int
    mode: p.ProgramMode
    commands: dict[bytes, tuple[int, int, int, int]]  # id: (state, error, version, event seq)
    effects: dict[tuple[bytes, int], list[int]]  # (id, kind): seqs of its effect records
    oldest_seq: int  # the bounded event log keeps records from here on
    integrity: str


def read_store(
    path: Path,
) -> tuple[dict[bytes, tuple[int, int, int, int]], dict[Any, Any], int, str]:
    """The store's command records, programmer effect records, oldest seq and integrity."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        commands = {
            bytes(cid): (state, err, version, seq)
            for cid, state, err, version, seq in db.execute(
                "SELECT command_id, state, error_code, program_version, event_seq FROM commands"
            )
        }
        effects: dict[tuple[bytes, int], list[int]] = {}
        kinds = ",".join(str(k) for k in EFFECT_KIND.values())
        for cid, kind, seq in db.execute(
            f"SELECT command_id, kind, seq FROM events WHERE source = ? AND kind IN ({kinds}) "
            "ORDER BY seq",
            (PROGRAMMER_SOURCE,),
        ):
            effects.setdefault((bytes(cid), kind), []).append(seq)
        oldest = db.execute("SELECT COALESCE(MIN(seq), 0) FROM events").fetchone()[0]
    finally:
        db.close()
    return commands, effects, oldest, integrity


@dataclasses.dataclass
class Report:
    violations: list[str]
    figures: dict[str, Any]

    def summary(self) -> str:
        f = self.figures
        return (
            f"jepsen: ops={f['ops']} ok={f['ok']} fail={f['fail']} info={f['info']} "
            f"(info resolved: {f['info_resolved']}) fail codes={f['fail_codes']} "
            f"duplicates answered={f['duplicates']} faults={f['faults']} ({f['fault_kinds']}) "
            f"acked-but-lost={f['acked_but_lost']} double-applied={f['double_applied']} "
            f"unknown-left={f['unknown_left']} violations={len(self.violations)}"
        )


def check(history: History, seen: Observed, faults: Counter[str]) -> Report:
    v: list[str] = []
    lost = double = unknown = 0

    def applied(cid: bytes) -> bool:
        return seen.status[cid].state is p.CommandState.APPLIED

    def effects(op: Op) -> list[int]:
        return seen.effects.get((op.command_id, EFFECT_KIND[op.kind]), [])

    for (cid, kind), seqs in seen.effects.items():
        if len(seqs) > 1:
            double += 1
            v.append(f"command {cid.hex()} applied {len(seqs)} times (kind {kind}, seqs {seqs})")
    for op in history.ops:
        cid, st = op.command_id, seen.status[op.command_id]
        store = seen.commands.get(cid)
        where = f"op {op.index} ({op.client} {op.kind} {op.value}, {cid.hex()})"
        if (store is not None and store[0] == APPLIED_STATE) != applied(cid):
            v.append(f"{where}: command status {st.state.name} disagrees with the store {store}")
        seqs = effects(op)
        if op.outcome == OK:
            assert op.event_seq is not None
            if not applied(cid) or st.event_seq != op.event_seq:
                lost += 1
                v.append(f"{where}: acknowledged at seq {op.event_seq} but status is {st}")
            elif st.program_version != op.program_version:
                v.append(f"{where}: acknowledged version {op.program_version}, status {st}")
            if op.event_seq >= seen.oldest_seq and seqs != [op.event_seq]:
                v.append(f"{where}: acknowledged at seq {op.event_seq}, effect records {seqs}")
            if seen.journal.get(cid) != "applied":
                v.append(f"{where}: acknowledged but the journal says {seen.journal.get(cid)}")
        elif op.outcome == FAIL:
            if applied(cid) or seqs:
                v.append(f"{where}: refused ({op.code}) but applied: {st}, records {seqs}")
            if seen.journal.get(cid) not in ("rejected", "not-applied"):
                v.append(
                    f"{where}: refused ({op.code}) but the journal says {seen.journal.get(cid)}"
                )
        elif op.outcome == INFO:
            final = seen.journal.get(cid)
            if final not in ("applied", "rejected", "not-applied"):
                unknown += 1
                v.append(f"{where}: outcome still unknown (journal: {final})")
            elif (final == "applied") != applied(cid):
                v.append(f"{where}: the journal resolved it {final}, the pump says {st}")
            if op.resolution is not None and op.resolution != final:
                v.append(f"{where}: resolved {op.resolution} during the run, {final} at the end")
            if not applied(cid) and seqs:
                v.append(f"{where}: not applied, yet effect records {seqs}")
        else:
            v.append(f"{where}: never completed (outcome {op.outcome})")
    # Nothing applied that nobody sent (every programmer effect belongs to a command of ours).
    for cid, _kind in seen.effects:
        if cid not in history.by_id:
            v.append(f"an effect record of command {cid.hex()}, which no client sent")
    for cid, (state, *_rest) in seen.commands.items():
        if state == APPLIED_STATE and cid not in history.by_id:
            v.append(f"command {cid.hex()} is APPLIED in the store, but no client sent it")
    # The dose is a register: the last applied dose change (by event seq) is the pump's dose.
    done = sorted(
        (op for op in history.ops if applied(op.command_id)),
        key=lambda op: seen.status[op.command_id].event_seq,
    )
    doses = [op for op in done if op.kind == "dose"]
    if not doses:
        v.append("no dose change applied at all")
    elif seen.mode is not p.ProgramMode.CONTINUOUS or seen.daily_dose_ng != doses[-1].value:
        last = doses[-1]
        v.append(
            f"final dose {seen.daily_dose_ng} ng/day ({seen.mode.name}), but the last applied "
            f"dose change (op {last.index}, seq {seen.status[last.command_id].event_seq}) "
            f"set {last.value}"
        )
    # The program version strictly increases along applied commands in event-seq order.
    for a, b in itertools.pairwise(done):
        sa, sb = seen.status[a.command_id], seen.status[b.command_id]
        if not sa.program_version < sb.program_version:
            v.append(
                f"version {sa.program_version} at seq {sa.event_seq} (op {a.index}), then "
                f"{sb.program_version} at seq {sb.event_seq} (op {b.index})"
            )
    if seen.integrity != "ok":
        v.append(f"PRAGMA integrity_check: {seen.integrity}")
    ops = history.client_ops()
    outcomes = Counter(op.outcome for op in ops)
    figures = {
        "ops": len(ops),
        "ok": outcomes[OK],
        "fail": outcomes[FAIL],
        "info": outcomes[INFO],
        "info_resolved": dict(
            Counter(seen.journal.get(op.command_id) for op in ops if op.outcome == INFO)
        ),
        "fail_codes": dict(Counter(op.code for op in ops if op.outcome == FAIL)),
        "duplicates": sum(op.duplicate for op in ops),
        "faults": sum(faults.values()),
        "fault_kinds": dict(faults),
        "acked_but_lost": lost,
        "double_applied": double,
        "unknown_left": unknown,
        "applied": len(done),
    }
    return Report(v, figures)
