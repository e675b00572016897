"""What the `pump-emulator` subcommands share: option types, profiles, logging, start-up files.

The argparse types `speed_milli` (`--speed FACTOR` as a speed factor x1000, 0 .. the clock's
maximum) and `serial_number` (`--pump-serial`, `--first-serial`: 1 .. 4294967294), the pump
model names of `--profile` (`PROFILES`, the same names scenario files use), the log setup of the
long-running subcommands (`setup_logging`: plain or JSON lines on stderr), and the two things
`serve` and `fleet` both do once running: stop on SIGINT or SIGTERM (`stop_on_signals`) and
write the `--ready-file` JSON atomically (`write_ready_file`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import firmware_model as fm
import protocol as p

from ._clock import MAX_SPEED_MILLI, zone_offset_ms
from ._files import write_private_json
from ._scenario import PROFILES

__all__ = [
    "PROFILES",
    "serial_number",
    "setup_logging",
    "speed_milli",
    "stop_on_signals",
    "write_ready_file",
]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "t": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj)


def setup_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if as_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def speed_milli(text: str) -> int:
    try:
        value = round(float(text) * 1000)
    except (ValueError, OverflowError):  # OverflowError: "inf"
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= MAX_SPEED_MILLI:
        raise argparse.ArgumentTypeError(f"the speed factor must be 0 .. {MAX_SPEED_MILLI // 1000}")
    return value


CATHETER_NL_PER_CM = fm.CATHETER_NL_PER_CM


def catheter_cm(text: str) -> int:
    """`--catheter-cm`: whole centimetres, 1 .. 200."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of cm") from None
    if not 1 <= value <= 200:
        raise argparse.ArgumentTypeError("the catheter length must be 1 .. 200 cm")
    return value


def catheter_ul_per_cm(text: str) -> int:
    """`--catheter-ul-per-cm` in uL (0.5 .. 20), returned in nL per cm."""
    try:
        value = round(float(text) * 1000)
    except (ValueError, OverflowError):  # OverflowError: "inf"
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (uL per cm)") from None
    if not 500 <= value <= 20_000:
        raise argparse.ArgumentTypeError("the catheter volume must be 0.5 .. 20 uL per cm")
    return value


def control_address(text: str) -> tuple[str, int]:
    """`--control [HOST:]PORT`: loopback unless a host is given; an IPv6 host in brackets
    (`[::1]:8080`). ValueError if it is not that."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host or (sep and not host):
        raise ValueError(f"{text!r}: an IPv6 host goes in brackets, e.g. [::1]:8080")
    value = int(port)
    if not 0 <= value <= 65535:
        raise ValueError(f"{text!r}: the port must be 0 .. 65535")
    return (host or "127.0.0.1", value)


def zone_name(text: str) -> str:
    """`--zone NAME`: an IANA time zone the tz database knows and the pump can hold."""
    try:
        zone_offset_ms(text, 0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not fm.valid_zone_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: the pump holds a zone name of 1 .. 64 letters, digits and / _ + -"
        )
    return text


def serial_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < p.BROADCAST_PUMP_ID:
        raise argparse.ArgumentTypeError("the pump serial number must be 1 .. 4294967294")
    return value


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def write_ready_file(path: Path, info: dict[str, object]) -> None:
    """`info` as JSON at `path`, 0600 (it holds the control token), whole or not at all
    (written beside it, then renamed)."""
    write_private_json(path, info)


def status_line(*, quiet: bool = False) -> Callable[[str], None] | None:
    """A one-line progress display on stderr, redrawn in place, cleared by "". None (nothing
    shown) when `quiet` (--json) or stderr is not a terminal: pipes and scripts never see it."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(text: str) -> None:
        sys.stderr.write(f"\r{text}\x1b[K" if text else "\r\x1b[K")
        sys.stderr.flush()

    return show


@contextlib.contextmanager
def shown_after(text: str, seconds: float = 1.0) -> Iterator[None]:
    """Show `text` on the status line if the block is still running after `seconds` (a
    request that may take long: an advance over months); cleared when it ends."""
    show = status_line()
    if show is None:
        yield
        return
    started = time.monotonic()
    shown = threading.Event()
    done = threading.Event()

    def tick() -> None:
        while not done.wait(0.5 if shown.is_set() else seconds):
            shown.set()
            show(f"{text} ({time.monotonic() - started:.0f} s)")

    thread = threading.Thread(target=tick, daemon=True, name="status-line")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if shown.is_set():
            show("")
