"""`--trace FILE`: every frame in and out, one JSON object per line (docs/emulator.md section 7).

Line noise must not fill the disk (issue 19: 12 MB of junk on the pty once wrote 363,047 error
lines, 51 MB), and must never cost a frame record:
- decode errors are summarised per link: the first one in a second is written as it is, the
  rest are counted and written as one summary line (`"errors": N`) with the first error a
  second or more after the last error line, before the link's next frame record (so records
  stay in order), or at close; frames are always written one line each;
- the file is rotated before a record would take it past `max_bytes`: it becomes `FILE.1`
  (replacing an older `FILE.1`) and a new `FILE` starts with the header line again.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import protocol as p

from ._files import open_private_text

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MIN_MAX_BYTES = 64 * 1024
ERROR_LINE_INTERVAL_S = 1.0


class _Errors:
    """Decode errors of one link not yet written."""

    def __init__(self, t_ms: float) -> None:
        self.first_ms = self.last_ms = t_ms
        self.count = 0
        self.skipped_bytes = 0
        self.kinds: collections.Counter[str] = collections.Counter()

    def add(self, t_ms: float, err: p.DecodeError) -> None:
        self.last_ms = t_ms
        self.count += 1
        self.kinds[type(err).__name__] += 1
        if isinstance(err, p.GarbageSkipped):
            self.skipped_bytes += err.count


class Trace:
    """The trace file of one pump. `max_bytes` 0: never rotated. `monotonic` and `wall_ms` are
    injected so tests control the one-second window."""

    def __init__(
        self,
        path: Path,
        serial: int,
        speed_milli: int,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], float] = lambda: time.time_ns() / 1e6,
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0 (0: no limit)")
        self.path = path
        self.max_bytes = max_bytes
        self.rotations = 0
        self.errors_seen = 0
        self._monotonic = monotonic
        self._wall_ms = wall_ms
        self._header = self._line(
            {
                "trace": "itp-frames",
                "version": 1,
                "pump_serial": serial,
                "protocol": f"{p.PROTOCOL_MAJOR}.{p.PROTOCOL_MINOR}",
                "speed_factor_milli": speed_milli,
            }
        )
        self._pending: dict[str, _Errors] = {}
        self._next_error_line: dict[str, float] = {}
        self._f: IO[str] = open_private_text(path)  # 0600: frames carry patient data
        self._size = os.fstat(self._f.fileno()).st_size
        self._write(self._header)

    @staticmethod
    def _line(obj: dict[str, Any]) -> str:
        return json.dumps(obj, separators=(",", ":")) + "\n"

    def _write(self, line: str) -> None:
        n = len(line.encode())
        if self.max_bytes and self._size + n > self.max_bytes and self._size > 0:
            self._rotate()
        self._f.write(line)
        self._size += n

    def _rotate(self) -> None:
        self._f.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self.rotations += 1
        self._f = open_private_text(self.path)
        self._size = 0
        self._f.write(self._header)
        self._size = len(self._header.encode())

    def frame(self, link: str, direction: str, data: bytes) -> None:
        if link in self._pending:
            self._flush_errors(link)
        record = {"t_ms": self._wall_ms(), "link": link, "dir": direction, "hex": data.hex()}
        self._write(self._line(record))

    def error(self, link: str, err: p.DecodeError) -> None:
        self.errors_seen += 1
        now = self._monotonic()
        t_ms = self._wall_ms()
        pending = self._pending.get(link)
        if pending is None and now >= self._next_error_line.get(link, float("-inf")):
            self._next_error_line[link] = now + ERROR_LINE_INTERVAL_S
            self._write(self._line({"t_ms": t_ms, "link": link, "dir": "in", "error": repr(err)}))
            return
        if pending is None:
            pending = self._pending[link] = _Errors(t_ms)
        pending.add(t_ms, err)
        if now >= self._next_error_line[link]:
            self._flush_errors(link)

    def _flush_errors(self, link: str) -> None:
        e = self._pending.pop(link)
        self._next_error_line[link] = self._monotonic() + ERROR_LINE_INTERVAL_S
        kinds = ", ".join(f"{k} {n}" for k, n in e.kinds.most_common())
        record: dict[str, Any] = {
            "t_ms": e.first_ms,
            "link": link,
            "dir": "in",
            "error": f"{e.count} more decode errors ({kinds})",
            "errors": e.count,
            "kinds": dict(e.kinds),
            "until_ms": e.last_ms,
        }
        if e.skipped_bytes:
            record["skipped_bytes"] = e.skipped_bytes
        self._write(self._line(record))

    def close(self) -> None:
        for link in list(self._pending):
            self._flush_errors(link)
        self._f.close()
