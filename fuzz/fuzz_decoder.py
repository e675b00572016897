#!/usr/bin/env python3
"""Fuzz target: the stream decoder (`FrameDecoder.feed`) and payload decoding (`Frame.decode`).

Input: byte 0 is the chunk size the rest is fed in (0: one piece); bytes 1.. are the stream.

Allowed outcomes: the decoder returns `Frame`s and documented `DecodeError` items, and
`Frame.decode()` returns the frame's message or raises a documented `ProtocolError` (a
`MessageError`, code MALFORMED). Anything else is a crash, as is a broken invariant:
- every frame handed out has the layout its header claims and a CRC valid for its message's seed;
- every byte fed is accounted for: in a frame, counted as skipped, or still buffered;
- the buffer never holds a whole frame's worth of bytes (memory is bounded).

Run: .venv/bin/python fuzz/fuzz_decoder.py fuzz/corpus/decoder -max_total_time=600 (see README.md).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    atheris: Any = importlib.import_module("atheris")
    _instrumented: Any = atheris.instrument_imports(include=["protocol"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    import protocol as p
    from fuzz._common import feed_chunked, instrument_codecs

_SEEDS = {cls.MSG_ID: cls.SEED for cls in p.MESSAGES.values()}
_PLAIN_OVERHEAD = 16
_AUTH_OVERHEAD = 40


def _check_frame(frame: p.Frame) -> None:
    raw = frame.raw
    assert raw[:2] == p.MAGIC, raw.hex()
    length = int.from_bytes(raw[4:6], "little")
    overhead = _AUTH_OVERHEAD if frame.authenticated else _PLAIN_OVERHEAD
    assert len(raw) == length + overhead == len(frame.payload) + overhead, raw.hex()
    assert len(frame.tag) == (16 if frame.authenticated else 0), raw.hex()
    crc = int.from_bytes(raw[-2:], "little")
    assert p.frame_crc(raw[:-2], _SEEDS[frame.msg_id]) == crc, raw.hex()
    try:
        message = frame.decode()
    except p.ProtocolError as exc:
        assert isinstance(exc.code, p.ErrorCode), exc
        return
    assert type(message) is frame.message_type, (raw.hex(), message)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    stream = data[1:]
    decoder = p.FrameDecoder()
    items = feed_chunked(decoder, stream, data[0])
    assert decoder.buffered < p.MAX_FRAME, decoder.buffered
    framed = 0
    for item in items:
        if isinstance(item, p.Frame):
            _check_frame(item)
            framed += len(item.raw)
        else:
            assert isinstance(item, p.DecodeError), repr(item)
            assert isinstance(item.code, p.ErrorCode), repr(item)
    assert framed + decoder.bytes_skipped + decoder.buffered == len(stream), (
        framed,
        decoder.bytes_skipped,
        decoder.buffered,
        len(stream),
    )
    assert decoder.frames_ok == sum(isinstance(x, p.Frame) for x in items)


def main() -> None:
    instrument_codecs(atheris.instrument_func)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
