"""Fast unauthenticated frames of one fixed-size message, encoded straight from field values.

`encode_frame(Msg(...), ...)` builds the message object (its `_validate` checks every field),
packs the payload, then the header, then the CRC over both: about 4 us for a telemetry beacon,
most of a fleet's per-beacon cost at 20,000 beacons a second. `FixedFrames(Msg)` does the same
work once per pump id instead of once per frame: `header(pump_id)` is the frame header and the
CRC register after it (the CRC runs over the frame in order, so it can be carried), and
`tail(crc, *values)` checks the field values, packs the payload with one `struct.Struct` and
appends the CRC: the frame is `header + tail`.

`tail` is generated from the message's declaration (its `FIELDS`, like the codec in
_codec.py) and applies the checks `_validate` applies, in the same order and with the same
`FieldValueError` text: for every field value the bytes equal `encode_frame`'s, or both refuse
it (tests/test_fixed_frames.py checks that with Hypothesis). Only messages whose fields are all
fixed-size and that have no cross-field `_check` qualify (TypeError otherwise).
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from typing import Any

from ._codec import _check_lines
from ._errors import FieldValueError
from ._fields import Kind
from ._frame import FLAG_FROM_PUMP, HEADER, MAGIC, PLAIN_OVERHEAD, PROTOCOL_MAJOR
from ._schema import Message, Record


def _tail_function(cls: type[Message]) -> Callable[..., bytes]:
    specs = cls.FIELDS
    ns: dict[str, Any] = {
        "FVE": FieldValueError,
        "NAME": cls.NAME,
        "int_": int,
        "bool_": bool,
        "bytes_": bytes,
        "bytearray_": bytearray,
        "isinstance_": isinstance,
        "len_": len,
        "pack": struct.Struct("<" + "".join(f.fmt for f in specs)).pack,
        "pack_crc": struct.Struct("<H").pack,
        "crc_hqx": binascii.crc_hqx,
    }
    for i, f in enumerate(specs):
        if f.kind is Kind.ENUM:
            assert f.enum_type is not None
            ns[f"E{i}"] = {m.value: m for m in f.enum_type}
        elif f.kind is Kind.FLAGS:
            assert f.enum_type is not None
            ns[f"F{i}"] = f.enum_type
            ns[f"M{i}"] = sum(m.value for m in f.enum_type)
    names = [f"x{i}" for i in range(len(specs))]
    src = [f"def tail(crc, {', '.join(names)}):" if names else "def tail(crc):"]
    for i, f in enumerate(specs):
        # the message constructor's own checks; a converted value need not be kept ("pass"):
        # struct packs the plain int, bool or bytes the same
        src += _check_lines(i, f, f"x{i}", "pass")
    src.append(f"    b = pack({', '.join(names)})")
    src.append("    return b + pack_crc(crc_hqx(b, crc))")
    exec(compile("\n".join(src), f"<fixed frames {cls.NAME}>", "exec"), ns)
    tail: Callable[..., bytes] = ns["tail"]
    return tail


class FixedFrames:
    """Unauthenticated frames of one fixed-size message type (a telemetry beacon).

    `header(pump_id, seq)` once per pump, then per frame `header + tail(crc, *values)`, the
    values in declaration order (`[f.name for f in cls.FIELDS]`). `encode` does both."""

    def __init__(self, cls: type[Message], *, from_pump: bool) -> None:
        if any(not f.fixed for f in cls.FIELDS):
            raise TypeError(f"{cls.NAME} has variable-size fields: use encode_frame")
        if cls._check is not Record._check:
            raise TypeError(f"{cls.NAME} has cross-field rules: use encode_frame")
        self.message_type = cls
        self.from_pump = from_pump
        self.frame_size = PLAIN_OVERHEAD + cls.MIN_SIZE  # bytes of every frame
        self.tail: Callable[..., bytes] = _tail_function(cls)

    def header(self, pump_id: int, seq: int = 0) -> tuple[bytes, int]:
        """The frame's first 14 bytes for this pump and seq, and the CRC register after them
        (the `crc` argument of `tail`)."""
        cls = self.message_type
        flags = FLAG_FROM_PUMP if self.from_pump else 0
        head = HEADER.pack(MAGIC, PROTOCOL_MAJOR, flags, cls.MIN_SIZE, seq, cls.MSG_ID, pump_id)
        return head, binascii.crc_hqx(head, cls.CRC_INIT)

    def encode(self, pump_id: int, *values: Any, seq: int = 0) -> bytes:
        """One whole frame: what `encode_frame(cls(*values), pump_id=..., seq=...)` returns."""
        head, crc = self.header(pump_id, seq)
        return head + self.tail(crc, *values)
