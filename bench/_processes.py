"""Process helpers shared by the bench scripts (bench/roundtrip.py, bench/fleet.py).

Every script starts subprocesses (the emulator or the fleet, echo clients, subscribers, a
broker) and must leave none behind: `stop_process` ends one (SIGTERM, then SIGKILL), `tail`
quotes the end of its log in an error, and `terminate` (installed for SIGTERM) turns the signal
into a KeyboardInterrupt so the scripts' finally blocks run. `BenchError` is what a script
raises when something could not be measured; it then prints FAILED and exits 1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import FrameType
from typing import Any


class BenchError(Exception):
    """Something could not be measured (a process did not start or died, an answer was wrong)."""


def stop_process(proc: subprocess.Popen[Any] | None, *, grace_s: float = 5.0) -> None:
    """SIGTERM, wait; SIGKILL if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for an error message."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def terminate(signum: int, _frame: FrameType | None) -> None:
    """The SIGTERM handler of the scripts."""
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds the finally blocks: nothing leaks
