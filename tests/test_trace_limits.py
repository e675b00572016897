"""`--trace` under line noise (issue 19 item 2): repeated decode errors are summarised (one line
a second per link at most, plus one before each frame record), the file is rotated to FILE.1
before it would pass `max_bytes`, and not one frame record is lost."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import protocol as p
from emulator import Runtime, Trace, open_device
from emulator._cli_serve import trace_max_bytes

MAX = 64 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _junk(rng: random.Random, n: int) -> bytes:
    """Line noise without the frame marker's first byte: it can never hide a real frame."""
    marker = p.encode_frame(p.GetDeviceInfo(), pump_id=1, seq=1, from_pump=False)[0]
    return bytes(b for b in rng.randbytes(n) if b != marker)


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _decode_errors(reads: list[bytes]) -> int:
    """What a decoder fed the same reads reports."""
    decoder = p.FrameDecoder()
    return sum(not isinstance(i, p.Frame) for read in reads for i in decoder.feed(read))


def test_a_junk_flood_costs_no_frame_and_the_file_stays_bounded(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "trace.jsonl"
    device = open_device(tmp_path / "pump")
    trace = Trace(path, device.pump.serial, 1000, max_bytes=MAX, monotonic=clock)
    rt = Runtime(device, trace=trace)
    rng = random.Random(19)
    sent, answers, reads = [], [], []
    # 1. 4 MB of noise alone, in 4 KiB reads over 4 seconds (what a loose cable does).
    for _ in range(1000):
        junk = _junk(rng, 4096)
        reads.append(junk)
        assert rt.feed("pty", junk) == []
        clock.now += 0.004
    lines_after_flood = len(_records(path))
    # 2. Real frames, each after noise, until the file has been rotated once.
    seq = 0
    after = 0
    while after < 20:  # until rotated once, then 20 frames more
        after += trace.rotations
        seq += 1
        junk, frame = (
            _junk(rng, 512),
            p.encode_frame(
                p.GetDeviceInfo(), pump_id=device.pump.serial, seq=seq % 250 + 1, from_pump=False
            ),
        )
        reads += [junk, frame]
        assert rt.feed("pty", junk) == []
        answers += rt.feed("pty", frame)
        sent.append(frame)
        clock.now += 0.01
    rt.close()

    assert trace.rotations == 1
    rotated = path.with_name("trace.jsonl.1")
    assert path.stat().st_size <= MAX and rotated.stat().st_size <= MAX
    assert [oct(f.stat().st_mode & 0o777) for f in (path, rotated)] == ["0o600"] * 2
    records = _records(rotated) + _records(path)
    assert records[0]["trace"] == "itp-frames" and records[0]["pump_serial"] == 1234
    frames_in = [
        bytes.fromhex(str(r["hex"])) for r in records if r.get("dir") == "in" and "hex" in r
    ]
    frames_out = [bytes.fromhex(str(r["hex"])) for r in records if r.get("dir") == "out"]
    assert frames_in == sent and frames_out == answers and len(answers) == len(sent)
    # Every decode error is accounted for: written alone or counted in a summary line.
    errors = [r for r in records if "error" in r]
    counted = sum(int(r.get("errors", 1)) for r in errors)  # type: ignore[call-overload]
    assert counted == _decode_errors(reads) == trace.errors_seen
    # The 4-second flood alone: about one line a second (the first error, then summaries).
    assert 2 <= lines_after_flood - 1 <= 6, lines_after_flood
    summaries = [r for r in errors if "errors" in r]
    assert summaries and all(r["link"] == "pty" and r["kinds"] for r in summaries)
    assert sum(int(r.get("skipped_bytes", 0)) for r in summaries) > 3_000_000  # type: ignore[call-overload]


def test_without_a_limit_nothing_is_rotated_and_errors_still_summarised(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "trace.jsonl"
    trace = Trace(path, 1234, 1000, max_bytes=0, monotonic=clock)
    for _ in range(10_000):
        trace.error("mqtt", p.GarbageSkipped(3))
    clock.now += 1.0
    trace.error("mqtt", p.GarbageSkipped(3))  # a second later: the summary is written
    trace.error("pty", p.GarbageSkipped(1))  # another link has its own window
    trace.close()
    records = _records(path)
    assert [r.get("errors", 1) for r in records[1:]] == [1, 10_000, 1]
    assert records[2]["kinds"] == {"GarbageSkipped": 10_000}
    assert records[3]["link"] == "pty" and trace.rotations == 0


@pytest.mark.parametrize("bad", ["-1", "1000", "x"])
def test_a_bad_trace_limit_is_refused(bad: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        trace_max_bytes(bad)
    assert trace_max_bytes("0") == 0 and trace_max_bytes("65536") == 65536
