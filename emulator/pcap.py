"""Trace files (`serve --trace`) to pcap, for Wireshark and the generated Lua dissector.

    pump-emulator trace-to-pcap TRACE -o OUT.pcap
    python -m emulator.pcap TRACE -o OUT.pcap      (the same)

A trace (docs/emulator.md section 7) is one JSON object per line: a header line, then one line
per frame in or out. The pcap has one packet per frame line, no stream reassembly needed:

* link type DLT_USER0 (147), microsecond timestamps from the line's `t_ms`;
* each packet is a 4-byte trace record header, then the frame exactly as it crossed the link:

      offset size
      0      1    record version, 1
      1      1    direction: 0 = to the pump (`"dir": "in"`), 1 = from the pump (`"out"`)
      2      1    link: 1 pty, 2 serial, 3 mqtt, 0 anything else
      3      1    reserved, 0

`error` lines (bytes that made no frame) carry no bytes and are counted, not written.
tools/wireshark/pump_telemetry.lua registers on DLT_USER0 and decodes these packets. A trace
that is not one (no header line, a line that is not JSON, a frame that is not hex) is refused
with its line number and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DLT_USER0", "TraceError", "TraceRecord", "main", "pcap_bytes", "read_trace"]

DLT_USER0 = 147
RECORD_VERSION = 1
LINKS = {"pty": 1, "serial": 2, "mqtt": 3}
DIRECTIONS = {"in": 0, "out": 1}
SNAPLEN = 65535

_GLOBAL = struct.Struct("<IHHiIII")
_PACKET = struct.Struct("<IIII")


class TraceError(ValueError):
    """The input is not an emulator trace; says which line and why."""


@dataclass(frozen=True)
class TraceRecord:
    t_ms: float
    link: str
    direction: str  # "in" (to the pump) or "out" (from the pump)
    frame: bytes

    def packet(self) -> bytes:
        header = bytes((RECORD_VERSION, DIRECTIONS[self.direction], LINKS.get(self.link, 0), 0))
        return header + self.frame


def read_trace(lines: Iterable[str]) -> tuple[list[TraceRecord], int]:
    """The frame records of a trace and the number of `error` lines; TraceError if it is none."""
    records: list[TraceRecord] = []
    errors = 0
    header = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TraceError(f"line {number}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise TraceError(f"line {number}: not a JSON object")
        if "trace" in obj:  # a run's header (a trace file may hold several runs)
            if obj.get("trace") != "itp-frames":
                raise TraceError(f"line {number}: not an itp-frames trace ({obj.get('trace')!r})")
            header = True
            continue
        if not header:
            raise TraceError(f"line {number}: no trace header line before the frames")
        if "error" in obj:
            errors += 1
            continue
        records.append(_record(number, obj))
    if not header:
        raise TraceError("empty: no trace header line")
    return records, errors


def _record(number: int, obj: dict[str, object]) -> TraceRecord:
    t, link, direction, hex_ = obj.get("t_ms"), obj.get("link"), obj.get("dir"), obj.get("hex")
    if not isinstance(t, int | float) or t < 0:
        raise TraceError(f"line {number}: t_ms must be a non-negative number")
    if direction not in DIRECTIONS:
        raise TraceError(f"line {number}: dir must be 'in' or 'out', not {direction!r}")
    if not isinstance(link, str):
        raise TraceError(f"line {number}: link must be a string")
    if not isinstance(hex_, str):
        raise TraceError(f"line {number}: a frame line needs 'hex'")
    try:
        frame = bytes.fromhex(hex_)
    except ValueError:
        raise TraceError(f"line {number}: 'hex' is not hexadecimal") from None
    if not 0 < len(frame) <= SNAPLEN - 4:
        raise TraceError(f"line {number}: frame of {len(frame)} bytes")
    assert isinstance(direction, str)
    return TraceRecord(float(t), link, direction, frame)


def pcap_bytes(records: Iterable[TraceRecord]) -> bytes:
    """A classic pcap file (little-endian, microseconds, DLT_USER0) of the records."""
    out = [_GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, DLT_USER0)]
    for r in records:
        data = r.packet()
        us = round(r.t_ms * 1000)
        out.append(_PACKET.pack(us // 1_000_000, us % 1_000_000, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def convert(trace: Path, output: Path) -> tuple[int, int]:
    """Write `output` from `trace`; returns (frames written, error lines skipped)."""
    with trace.open(encoding="utf-8") as f:
        records, errors = read_trace(f)
    data = pcap_bytes(records)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    return len(records), errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", type=Path, help="a file written by `serve --trace`")
    parser.add_argument(
        "-o", "--output", type=Path, help="the pcap to write (default: TRACE with .pcap)"
    )


def run(args: argparse.Namespace) -> int:
    output: Path = args.output or args.trace.with_suffix(".pcap")
    try:
        frames, errors = convert(args.trace, output)
    except (OSError, UnicodeDecodeError, TraceError) as e:
        print(f"trace-to-pcap: {args.trace}: {e}", file=sys.stderr)
        return 2
    skipped = f", {errors} error lines skipped (no bytes)" if errors else ""
    print(f"wrote {output}: {frames} frames{skipped}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.pcap", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
