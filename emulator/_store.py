"""The pump's memory: one SQLite file per pump (WAL, synchronous=FULL).

A command's effect (the model snapshot), its event-log records and its command-id record are
written in one transaction; the pump answers only after that transaction commits, so an
acknowledgement always means durable. On restart the last committed state is loaded.

Tables
- `meta`: format version, pump serial and profile.
- `state`: one row, the model snapshot without its event log, the model time it was taken at,
  the wall clock at that moment and the speed factor (to apply the time that passes while down).
- `events`: the event log, one row per record, trimmed to what the model keeps.
- `commands`: the exactly-once record (docs/protocol.md section 8), bounded to the newest
  `MAX_COMMANDS` ids.

Crash and I/O-error testing: every write step calls `self.fault_hook(step)` first; tests (and
`PUMP_CRASHPOINT=n`, which ends the process at the n-th step) use it to stop at each commit
point or to make the n-th write fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from firmware_model import Event

from ._files import connect_private_sqlite

FORMAT = "itp-emulator-store"
VERSION = 1
MAX_COMMANDS = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    snapshot TEXT NOT NULL,
    model_ms INTEGER NOT NULL,
    wall_ms INTEGER NOT NULL,
    speed_milli INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    source INTEGER NOT NULL,
    command_id BLOB NOT NULL,
    a INTEGER NOT NULL,
    b INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    command_id BLOB PRIMARY KEY,
    n INTEGER NOT NULL UNIQUE,
    msg_id INTEGER NOT NULL,
    request_hash BLOB NOT NULL,
    state INTEGER NOT NULL,
    error_code INTEGER NOT NULL,
    detail TEXT NOT NULL,
    program_version INTEGER NOT NULL,
    event_seq INTEGER NOT NULL,
    response BLOB NOT NULL
);
"""


class StoreError(Exception):
    """The state directory cannot be used (wrong format, another pump's file, corrupt)."""


@dataclasses.dataclass(frozen=True, slots=True)
class CommandRecord:
    """What the pump remembers about one command id."""

    command_id: bytes
    msg_id: int
    request_hash: bytes
    state: int  # protocol CommandState: 1 APPLIED, 2 REJECTED
    error_code: int  # REJECTED: the ErrorCode; 0 otherwise
    detail: str  # REJECTED: the error detail sent
    program_version: int
    event_seq: int
    response: bytes  # APPLIED: the response payload as first sent (duplicate = 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Saved:
    """The last committed state."""

    snapshot: dict[str, Any]  # firmware_model snapshot, event log included
    model_ms: int
    wall_ms: int
    speed_milli: int


def _crashpoint_hook() -> Callable[[str], None] | None:
    """PUMP_CRASHPOINT=n: end the process abruptly at the n-th write step (crash testing)."""
    raw = os.environ.get("PUMP_CRASHPOINT")
    if not raw:
        return None
    target = int(raw)
    count = 0

    def hook(step: str) -> None:
        nonlocal count
        count += 1
        if count == target:
            os._exit(99)

    return hook


class Store:
    """The pump's durable memory. Not thread-safe: one runtime owns it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.fault_hook: Callable[[str], None] | None = _crashpoint_hook()
        self._db = connect_private_sqlite(self.path)  # 0600, -wal and -shm too
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._persisted_seq = self._scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
        self._n = self._scalar("SELECT COALESCE(MAX(n), 0) FROM commands")
        self.commits = 0

    @property
    def persisted_seq(self) -> int:
        """Newest event-log seq written."""
        return self._persisted_seq

    def _scalar(self, sql: str, *args: Any) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _step(self, name: str) -> None:
        if self.fault_hook is not None:
            self.fault_hook(name)

    def close(self) -> None:
        self._db.close()

    # --- identity -------------------------------------------------------------------------

    def check_identity(self, serial: int, profile: int) -> None:
        """Refuse a state file of another format or another pump; stamp a new one."""
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        want = {"format": FORMAT, "version": str(VERSION), "serial": str(serial)}
        if not meta:
            with self._tx():
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [*want.items(), ("profile", str(profile))],
                )
            return
        for key, value in want.items():
            if meta.get(key) != value:
                raise StoreError(
                    f"{self.path}: {key} is {meta.get(key)!r}, expected {value!r} "
                    "(another pump's state, or another format): use another --state-dir"
                )

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    # --- reading --------------------------------------------------------------------------

    def load(self) -> Saved | None:
        row = self._db.execute(
            "SELECT snapshot, model_ms, wall_ms, speed_milli FROM state WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        try:
            snap = json.loads(row[0])
        except ValueError as exc:
            raise StoreError(f"{self.path}: the saved snapshot is not valid JSON") from exc
        snap["state"]["events"] = [
            {
                "seq": seq,
                "time_ms": t,
                "kind": kind,
                "source": source,
                "command_id": bytes(cid).hex(),
                "a": a,
                "b": b,
            }
            for seq, t, kind, source, cid, a, b in self._db.execute(
                "SELECT seq, time_ms, kind, source, command_id, a, b FROM events ORDER BY seq"
            )
        ]
        return Saved(snap, row[1], row[2], row[3])

    def commands(self) -> Iterable[CommandRecord]:
        for row in self._db.execute(
            "SELECT command_id, msg_id, request_hash, state, error_code, detail, "
            "program_version, event_seq, response FROM commands ORDER BY n"
        ):
            yield CommandRecord(
                command_id=bytes(row[0]),
                msg_id=row[1],
                request_hash=bytes(row[2]),
                state=row[3],
                error_code=row[4],
                detail=row[5],
                program_version=row[6],
                event_seq=row[7],
                response=bytes(row[8]),
            )

    def command_recorded(self, command_id: bytes) -> bool:
        """Whether a command record is on disk (to settle a commit whose outcome is unclear)."""
        try:
            row = self._db.execute(
                "SELECT 1 FROM commands WHERE command_id = ?", (command_id,)
            ).fetchone()
        except sqlite3.Error:
            return False
        return row is not None

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # --- writing --------------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def reset(self, profile: int) -> None:
        """Forget the pump (a new one replaces it): state, log and command records."""
        with self._tx():
            self._db.execute("DELETE FROM state")
            self._db.execute("DELETE FROM events")
            self._db.execute("DELETE FROM commands")
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'profile'", (str(profile),))
        self._persisted_seq = 0
        self._n = 0

    def commit(
        self,
        snapshot: dict[str, Any],
        events: list[Event],
        oldest_seq: int,
        model_ms: int,
        wall_ms: int,
        speed_milli: int,
        command: CommandRecord | None = None,
    ) -> None:
        """One transaction: the snapshot, the log records not yet written, the command record.

        `snapshot` is the model snapshot; its event list is stored row by row instead. Raises
        sqlite3.Error or OSError when it cannot commit; then nothing of it was written."""
        state = dict(snapshot["state"])
        state["events"] = []
        body = json.dumps({**snapshot, "state": state}, separators=(",", ":"))
        new = [e for e in events if e.seq > self._persisted_seq]
        self._step("begin")
        with self._tx():
            self._step("state")
            self._db.execute(
                "INSERT OR REPLACE INTO state VALUES (1, ?, ?, ?, ?)",
                (body, model_ms, wall_ms, speed_milli),
            )
            if new:
                self._step("events")
                self._db.executemany(
                    "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (e.seq, e.time_ms, int(e.kind), int(e.source), e.command_id, e.a, e.b)
                        for e in new
                    ],
                )
            self._db.execute("DELETE FROM events WHERE seq < ?", (oldest_seq,))
            if command is not None:
                self._step("command")
                self._db.execute(
                    "INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        command.command_id,
                        self._n + 1,
                        command.msg_id,
                        command.request_hash,
                        command.state,
                        command.error_code,
                        command.detail,
                        command.program_version,
                        command.event_seq,
                        command.response,
                    ),
                )
                if self._n + 1 > MAX_COMMANDS:
                    self._db.execute(
                        "DELETE FROM commands WHERE n <= ?", (self._n + 1 - MAX_COMMANDS,)
                    )
            self._step("commit")
        if new:
            self._persisted_seq = new[-1].seq
        if command is not None:
            self._n += 1
        self.commits += 1
        self._step("committed")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if anything raised (nothing half-written)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            # The connection may be unusable; either way the transaction did not commit.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
