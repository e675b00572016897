"""Files that hold patient data or a credential: created 0600, directories 0700, whatever the
umask (docs/emulator.md section 16).

`os.open(..., 0o600)` and `mkdir(0o700)` can only lose bits to the umask, never gain any, so a
file is never wider than 0600 at any moment; the `fchmod`/`chmod` after restores bits a strict
umask removed. SQLite creates a database's `-wal` and `-shm` files with the database file's own
permission bits (unix VFS, `robust_open`), so a database created here 0600 keeps all three
0600; existing ones are tightened when opened.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """`mkdir -p path`: each directory it creates is 0700. Existing ones are left as they are."""
    missing: list[Path] = []
    d = path
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)


def tighten_dir(path: Path) -> None:
    """A directory only the emulator uses (a pump's state directory): 0700, created or not."""
    private_dir(path)
    if path.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)


def _private_fd(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private_text(path: Path, *, append: bool = True) -> IO[str]:
    """A text file, line-buffered, 0600 (an existing file is tightened)."""
    flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
    return os.fdopen(_private_fd(path, flags), "w", encoding="utf-8", buffering=1)


def write_private_json(path: Path, obj: object) -> None:
    """`obj` as JSON at `path`, 0600, whole or not at all (written beside it, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(_private_fd(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as f:
        f.write(json.dumps(obj))
    tmp.replace(path)


def connect_private_sqlite(path: Path) -> sqlite3.Connection:
    """An SQLite database in WAL mode whose file, `-wal` and `-shm` are all 0600."""
    os.close(_private_fd(path, os.O_RDWR))
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    for suffix in SQLITE_SIDE_FILES:  # left by an older version or another umask
        side = path.with_name(path.name + suffix)
        if side.exists() and side.stat().st_mode & 0o777 != FILE_MODE:
            os.chmod(side, FILE_MODE)
    return db
