"""The emulator under test in bench/roundtrip.py, and the processes around it.

`emulator()` starts `pump-emulator serve` in a subprocess with a fresh state directory on a real
disk (`state_parent`, `fs_type`: not tmpfs, where fsync costs nothing), waits for its ready
file and yields its clinician key; `broker()` starts a private mosquitto on a free loopback
port. The constants here are the pump every round trip talks to (its serial, the refill and
the alternated doses set before anything is timed, the 40-byte size of a sealed GET_STATUS).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _processes import BenchError, stop_process, tail

import protocol as p

REPO = Path(__file__).resolve().parent.parent
SERIAL = 1234
FRAME_BYTES = 40  # a sealed GET_STATUS: header 14 + session 8 + payload 0 + tag 16 + crc 2
POST_S = 2.1  # the pump answers BUSY to commands for its first 2 s (power-on self test)
READY_TIMEOUT_S = 20.0
EXCHANGE_TIMEOUT_S = 5.0
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
DOSES = (5_000_000, 4_000_000)  # ng/day of morphine, alternated so every command changes it
REFILL: dict[str, Any] = {
    "withdrawn_volume_nl": 0,
    "added_volume_nl": 20_000_000,
    "drug": p.Drug.MORPHINE,
    "concentration_ng_per_ml": 25_000_000,
    "concentration_unit": p.ConcentrationUnit.MG_PER_ML,
    "low_reservoir_threshold_nl": 2_000_000,
    "confirm_soft_limit": False,
}

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
max_queued_messages 100000
max_inflight_messages 100
set_tcp_nodelay true
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_tcp(port: int, proc: subprocess.Popen[Any], log: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise BenchError(f"the broker exited ({proc.returncode}): {tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.connect(("127.0.0.1", port))
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise BenchError(f"the broker does not accept on port {port}: {tail(log)}")
        time.sleep(0.02)


def fs_type(path: Path) -> str:
    """The file system type of the mount holding `path` (from /proc/self/mounts)."""
    path = path.resolve()
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = parts[1].replace("\\040", " ")
        if (path == Path(mnt) or Path(mnt) in path.parents) and len(mnt) >= len(best):
            best, kind = mnt, parts[2]
    return kind


def state_parent(requested: Path | None) -> Path:
    """Where the emulator's state directories go: a real disk, so its fsync is real."""
    if requested is not None:
        return requested
    tmp = Path(tempfile.gettempdir())
    if fs_type(tmp) not in ("tmpfs", "ramfs", "unknown"):
        return tmp
    return REPO / "bench"


@dataclass
class Emulator:
    proc: subprocess.Popen[bytes]
    info: dict[str, Any]
    started: float  # time.monotonic() when its ready file appeared (the pump exists by then)
    key: p.SecretKey

    def wait_post(self) -> None:
        """Sleep until the power-on self test is over (commands before it get BUSY)."""
        time.sleep(max(0.0, self.started + POST_S - time.monotonic()))


@contextlib.contextmanager
def emulator(parent: Path, mqtt_port: int | None) -> Iterator[Emulator]:
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".state-", dir=parent))
    ready = work / "ready.json"
    log = work / "emulator.log"
    cmd = [
        str(REPO / ".venv" / "bin" / "pump-emulator"),
        "serve",
        "--state-dir",
        str(work / "pump"),
        "--pump-serial",
        str(SERIAL),
        "--ready-file",
        str(ready),
        "--beacon-interval",
        "0",
        "--log-level",
        "warning",
    ]
    if not Path(cmd[0]).exists():
        cmd[:1] = [sys.executable, "-m", "emulator.cli"]
    if mqtt_port is not None:
        cmd += ["--mqtt", f"mqtt://127.0.0.1:{mqtt_port}"]
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
            )
        deadline = started + READY_TIMEOUT_S
        while not ready.exists():
            if proc.poll() is not None:
                raise BenchError(f"the emulator exited ({proc.returncode}):\n{tail(log)}")
            if time.monotonic() > deadline:
                raise BenchError(f"the emulator wrote no ready file:\n{tail(log)}")
            time.sleep(0.01)
        started = time.monotonic()
        info = json.loads(ready.read_text())
        key = p.SecretKey.from_hex(Path(info["key_files"]["clinician"]).read_text().strip())
        yield Emulator(proc, info, started, key)
        stop_process(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            raise BenchError(f"the emulator stopped with {proc.returncode}:\n{tail(log)}")
    finally:
        stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def broker(exe: str, work: Path) -> Iterator[int]:
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port))
    log = work / "mosquitto.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [exe, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_tcp(port, proc, log)
        yield port
    finally:
        stop_process(proc)
