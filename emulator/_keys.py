"""Role keys on disk: one file per role, 64 hex characters, mode 0600, never logged.

The key files are the emulator's provisioning channel (docs/protocol.md section 5): whoever can
read `clinician.key` can change therapy, as whoever holds the wand can on a real pump.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import protocol as p

from ._files import tighten_dir

KEY_FILES = {p.Role.CLINICIAN: "clinician.key", p.Role.PATIENT: "patient.key"}


class KeyFileError(Exception):
    """A key file is missing, unreadable, malformed or readable by others."""


def key_path(state_dir: Path, role: p.Role) -> Path:
    return state_dir / KEY_FILES[role]


def load_or_create_keys(state_dir: Path) -> dict[p.Role, p.SecretKey]:
    """The pump's role keys; fresh random ones are written (0600) on first use."""
    tighten_dir(state_dir)
    keys = {}
    for role in KEY_FILES:
        path = key_path(state_dir, role)
        if not path.exists():
            _write_new(path)
        keys[role] = read_key(path)
    return keys


def read_key(path: Path) -> p.SecretKey:
    """Read one key file. Refuses a file that group or others can read (like ssh does)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {type(exc).__name__}") from None
    try:
        return p.key_from_file(text, mode, str(path))
    except ValueError as exc:
        raise KeyFileError(str(exc)) from None


def _write_new(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a umask cannot widen it, but one may narrow it below 0600
        os.write(fd, (secrets.token_bytes(32).hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
