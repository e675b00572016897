"""The host's command journal (docs/protocol.md section 8, rule 1).

A command id is written here, durably, before the command is first sent, with the pump it is
for and the request. Its outcome is written when known. A session that connects to a pump first
resolves that pump's unfinished entries with GET_COMMAND_STATUS, so even after a crash of the
host nothing is re-sent blindly and nothing is applied twice.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import sqlite3
import time
from pathlib import Path

PENDING, APPLIED, REJECTED, NOT_APPLIED = "pending", "applied", "rejected", "not-applied"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    command_id BLOB PRIMARY KEY,
    pump_serial INTEGER NOT NULL,
    message TEXT NOT NULL,
    request BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error_code INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (pump_serial, outcome);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def default_path() -> Path:
    env = os.environ.get("ITP_JOURNAL")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "itp-programmer" / "journal.sqlite"


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    command_id: bytes
    pump_serial: int
    message: str  # message name
    request: bytes  # the encoded request payload
    created_ms: int
    outcome: str
    error_code: int


def _connect_private(path: Path) -> sqlite3.Connection:
    """The journal's SQLite file, its `-wal` and `-shm` 0600 and the directories made for it
    0700, whatever the umask: it holds patient data. SQLite gives `-wal` and `-shm` the main
    file's permission bits, so creating that one 0600 is enough; older ones are tightened."""
    missing = []
    d = path.parent
    while not d.exists() and d.parent != d:
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists() and side.stat().st_mode & 0o777 != 0o600:
            os.chmod(side, 0o600)
    return db


class Journal:
    """One SQLite file (WAL, synchronous=FULL): every write is on disk when the call returns."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._db = _connect_private(self.path)  # 0600, -wal and -shm too; new dirs 0700
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('host_id', ?)", (secrets.randbelow(2**32 - 1) + 1,)
        )
        row = self._db.execute("SELECT value FROM meta WHERE key = 'host_id'").fetchone()
        self.host_id: int = row[0]
        """This host's id in handshakes, kept across restarts: a new session then ends the ones
        an earlier run of this host left open, so nothing it left in flight can still be applied
        after its outcome was resolved (docs/protocol.md sections 5 and 8). One journal per
        programmer process: two processes sharing one would end each other's sessions."""

    def close(self) -> None:
        self._db.close()

    def begin(self, command_id: bytes, pump_serial: int, message: str, request: bytes) -> None:
        """Record a command before its first send."""
        self._db.execute(
            "INSERT OR IGNORE INTO journal VALUES (?, ?, ?, ?, ?, ?, 0)",
            (command_id, pump_serial, message, request, time.time_ns() // 1_000_000, PENDING),
        )

    def finish(self, command_id: bytes, outcome: str, error_code: int = 0) -> None:
        self._db.execute(
            "UPDATE journal SET outcome = ?, error_code = ? WHERE command_id = ?",
            (outcome, error_code, command_id),
        )

    def pending(self, pump_serial: int) -> list[Entry]:
        rows = self._db.execute(
            "SELECT command_id, pump_serial, message, request, created_ms, outcome, error_code "
            "FROM journal WHERE pump_serial = ? AND outcome = ? ORDER BY created_ms",
            (pump_serial, PENDING),
        ).fetchall()
        return [Entry(bytes(r[0]), r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def get(self, command_id: bytes) -> Entry | None:
        r = self._db.execute(
            "SELECT command_id, pump_serial, message, request, created_ms, outcome, error_code "
            "FROM journal WHERE command_id = ?",
            (command_id,),
        ).fetchone()
        return Entry(bytes(r[0]), r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) if r else None
