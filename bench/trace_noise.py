"""How much `--trace` writes for line noise (issue 19 item 2).

Feeds N MB of noise in 4 KiB reads, then 100 real frames, to an emulated pump with a trace on
the real clock; twice: random bytes, and random bytes with a frame marker every 32 bytes (the
worst case: each one starts a frame candidate that fails). Prints the trace's lines and bytes
beside the same run's baseline, one line per decode error (what the trace wrote before errors
were summarised). Run: .venv/bin/python bench/trace_noise.py [--mb 12]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import protocol as p
from emulator import Runtime, Trace, open_device

ERROR_LINE = len(
    json.dumps({"t_ms": 1.0e12, "link": "pty", "dir": "in", "error": "BadCrc(MALFORMED: ...)"})
)


def noise(rng: random.Random, markers: bool) -> bytes:
    block = bytearray(rng.randbytes(4096))
    if markers:
        for i in range(0, len(block), 32):
            block[i : i + 2] = b"\xe7\x1a"
    return bytes(block)


def run(mb: int, markers: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        device = open_device(d / "pump")
        trace = Trace(d / "trace.jsonl", device.pump.serial, 1000)
        rt = Runtime(device, trace=trace)
        rng = random.Random(1)
        t0 = time.monotonic()
        for _ in range(mb * 256):
            rt.feed("pty", noise(rng, markers))
        for i in range(100):
            frame = p.encode_frame(p.GetDeviceInfo(), pump_id=1234, seq=i + 1, from_pump=False)
            rt.feed("pty", frame)
        rt.close()
        elapsed = time.monotonic() - t0
        path = d / "trace.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines()]
        size = path.stat().st_size
    frames_in = sum(1 for r in records if r.get("dir") == "in" and "hex" in r)
    others = sum(1 for r in records if "error" not in r)
    baseline = trace.errors_seen + others
    kind = "marker-rich noise" if markers else "random noise"
    print(f"{mb} MB of {kind} + 100 frames, {elapsed:.1f} s, {trace.errors_seen} decode errors")
    print(f"  trace:    {len(records)} lines, {size:,} bytes, {frames_in} of 100 frames in")
    print(f"  baseline: {baseline} lines (one per error), ~{(baseline - others) * ERROR_LINE:,} B")
    print(f"  ratio:    {baseline / len(records):.0f}x fewer lines")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=12, help="megabytes of noise (default 12)")
    args = ap.parse_args()
    for markers in (False, True):
        run(args.mb, markers)


if __name__ == "__main__":
    main()
