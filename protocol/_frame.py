"""Frames: the byte layout around every message, the encoder and the hunting stream decoder.

Frame layout (little-endian)::

    offset size field
    0      2    magic        0xE7 0x1A (start marker)
    2      1    version      protocol major version (1)
    3      1    flags        bit0 AUTH, bit1 ENCRYPTED (reserved: rejected), bit2 FROM_PUMP
    4      2    length       payload length, 0..MAX_PAYLOAD
    6      2    seq          request sequence; a response echoes its request's seq
    8      2    msg_id       message id
    10     4    pump_id      target pump (host->pump) or source pump (pump->host)
    [AUTH] 14   4  session_id
    [AUTH] 18   4  counter   per-direction frame counter, starts at 1
    ..     len  payload
    [AUTH] ..   16 tag       HMAC-SHA256(direction key, frame[2:end of payload])[:16]
    ..     2    crc          CRC-16/CCITT-FALSE over seed(2, LE) || frame[0:before crc],
                             where seed is the message's schema seed

How the decoder hunts (after pymodbus' RTU framer): bytes are appended to a buffer; the decoder
looks for the magic, checks the fixed header (version, flags, a length possible for that
message id), waits until the whole candidate is in, and checks the CRC. Any failure discards
only the first byte of the candidate and hunts again from the next byte, so a good frame that
follows (or hides inside) a bad one is never lost. A candidate whose claimed length is still
incomplete is abandoned early when a complete, CRC-valid frame starts inside it: a lying length
field cannot hold later frames hostage until more bytes happen to arrive.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from typing import NamedTuple

from ._errors import (
    BadCrc,
    BadLength,
    DecodeError,
    GarbageSkipped,
    TruncatedFrame,
    UnknownFlags,
    UnknownMessage,
    UnsupportedVersion,
)
from ._schema import MAX_PAYLOAD, MESSAGES, Message

MAGIC = b"\xe7\x1a"
_MAGIC0 = MAGIC[0]
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1

FLAG_AUTH = 0x01
FLAG_ENCRYPTED = 0x02  # reserved for v2 (AEAD); v1 peers reject it
FLAG_FROM_PUMP = 0x04
KNOWN_FLAGS = FLAG_AUTH | FLAG_FROM_PUMP

BROADCAST_PUMP_ID = 0xFFFF_FFFF

HEADER = struct.Struct("<2sBBHHHI")
AUTH_HEADER = struct.Struct("<II")
HEADER_SIZE = HEADER.size  # 14
AUTH_HEADER_SIZE = AUTH_HEADER.size  # 8
TAG_SIZE = 16
CRC_SIZE = 2
PLAIN_OVERHEAD = HEADER_SIZE + CRC_SIZE  # 16
AUTH_OVERHEAD = HEADER_SIZE + AUTH_HEADER_SIZE + TAG_SIZE + CRC_SIZE  # 40
MAX_FRAME = AUTH_OVERHEAD + MAX_PAYLOAD

_CRC = struct.Struct("<H")
_new_frame = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path
_pack_header = HEADER.pack
_pack_auth = AUTH_HEADER.pack
_pack_sealed_header = struct.Struct("<2sBBHHHIII").pack  # HEADER then AUTH_HEADER, in one call
_pack_crc = _CRC.pack
_crc_hqx = binascii.crc_hqx


class Frame(NamedTuple):
    """A frame whose CRC verified. Its payload is not yet decoded (or authenticated)."""

    version: int
    flags: int
    seq: int
    msg_id: int
    pump_id: int
    session_id: int  # 0 when not authenticated
    counter: int  # 0 when not authenticated
    payload: bytes
    tag: bytes  # b"" when not authenticated
    raw: bytes  # the whole frame as received

    @property
    def authenticated(self) -> bool:
        return bool(self.flags & FLAG_AUTH)

    @property
    def from_pump(self) -> bool:
        return bool(self.flags & FLAG_FROM_PUMP)

    @property
    def message_type(self) -> type[Message]:
        return MESSAGES[self.msg_id]

    @property
    def mac_input(self) -> bytes:
        """The bytes the tag covers: version through the end of the payload."""
        return self.raw[2 : len(self.raw) - TAG_SIZE - CRC_SIZE]

    def decode(self) -> Message:
        """Decode the payload (schema, sizes and ranges). Raises MessageError subclasses."""
        return MESSAGES[self.msg_id]._decode(self.payload)  # type: ignore[no-any-return]


def crc16(data: bytes, value: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR)."""
    return _crc_hqx(data, value)


def frame_crc(frame_without_crc: bytes, seed: int) -> int:
    """The frame check value: CRC-16/CCITT-FALSE over seed (u16 LE) then the frame bytes."""
    return _crc_hqx(frame_without_crc, _crc_hqx(seed.to_bytes(2, "little"), 0xFFFF))


def encode_frame(
    message: Message,
    *,
    pump_id: int,
    seq: int,
    from_pump: bool,
) -> bytes:
    """Encode an unauthenticated frame. Authenticated frames are built by a session."""
    # No size check here: `@message` refuses any declaration that could exceed MAX_PAYLOAD.
    payload: bytes = message._encode()
    flags = FLAG_FROM_PUMP if from_pump else 0
    body = (
        _pack_header(MAGIC, PROTOCOL_MAJOR, flags, len(payload), seq, message.MSG_ID, pump_id)
        + payload
    )
    return body + _pack_crc(_crc_hqx(body, message.CRC_INIT))


def seal_frame(
    message: Message,
    *,
    pump_id: int,
    seq: int,
    from_pump: bool,
    session_id: int,
    counter: int,
    tag: Callable[[bytes], bytes],
) -> bytes:
    """Encode an authenticated frame; `tag(bytes)` is the session direction's HMAC-SHA256."""
    return _seal(
        message,
        FLAG_AUTH | (FLAG_FROM_PUMP if from_pump else 0),
        pump_id,
        seq,
        session_id,
        counter,
        tag,
    )


def _seal(
    message: Message,
    flags: int,
    pump_id: int,
    seq: int,
    session_id: int,
    counter: int,
    tag: Callable[[bytes], bytes],
) -> bytes:
    """`seal_frame` with positional arguments and the flags already made (every sealed
    frame's path: a keyword argument costs more than a positional one). The two headers are
    one struct, the same bytes as HEADER then AUTH_HEADER."""
    payload: bytes = message._encode()
    body = (
        _pack_sealed_header(
            MAGIC,
            PROTOCOL_MAJOR,
            flags,
            len(payload),
            seq,
            message.MSG_ID,
            pump_id,
            session_id,
            counter,
        )
        + payload
    )
    body += tag(body[2:])[:TAG_SIZE]
    return body + _pack_crc(_crc_hqx(body, message.CRC_INIT))


# Per message id: (smallest payload, largest payload, CRC register after the seed).
# Filled on first use, after every message of the catalogue has been declared.
_LIMITS: dict[int, tuple[int, int, int]] = {}


def _limits_table() -> dict[int, tuple[int, int, int]]:
    if len(_LIMITS) != len(MESSAGES):
        _LIMITS.clear()
        _LIMITS.update({m: (c.MIN_SIZE, c.MAX_SIZE, c.CRC_INIT) for m, c in MESSAGES.items()})
    return _LIMITS


def _header_error(
    version: int, flags: int, length: int, seq: int, msg_id: int, pump_id: int
) -> DecodeError:
    if version != PROTOCOL_MAJOR:
        return UnsupportedVersion(version, PROTOCOL_MAJOR)
    if flags & ~KNOWN_FLAGS:
        return UnknownFlags(flags)
    lim = _LIMITS.get(msg_id)
    if lim is None:
        return UnknownMessage(msg_id, seq, pump_id)
    return BadLength(msg_id, length, f"{lim[0]}..{lim[1]}")


class FrameDecoder:
    """Stream decoder: `feed(bytes)` returns the frames and decode errors found, in order.

    Accepts any chunking. Holds at most one incomplete candidate frame plus what arrived after
    it, so memory is bounded by MAX_FRAME plus the largest chunk fed.
    """

    __slots__ = ("_buf", "_limits", "bytes_skipped", "frames_ok")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._limits = _limits_table()
        self.frames_ok = 0
        self.bytes_skipped = 0

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | DecodeError]:
        # Common case: nothing pending, so work on `data` itself and copy only the leftover.
        buf: bytes | bytearray
        if self._buf:
            buf = self._buf
            buf += data
        else:
            buf = bytes(data)
        out: list[Frame | DecodeError] = []
        limits = self._limits
        unpack = HEADER.unpack_from
        crc = _crc_hqx
        n = len(buf)
        pos = skipped = ok = lost = 0
        while True:
            i = buf.find(MAGIC, pos)
            if i < 0:
                # Keep a trailing first magic byte: it may start the next frame.
                keep = n - 1 if n > pos and buf[n - 1] == _MAGIC0 else n
                skipped += keep - pos
                pos = keep
                break
            if i != pos:
                skipped += i - pos
                pos = i
            if n - i < HEADER_SIZE:
                break
            _, version, flags, length, seq, msg_id, pump_id = unpack(buf, i)
            lim = limits.get(msg_id)
            if (
                version != PROTOCOL_MAJOR
                or flags & ~KNOWN_FLAGS
                or lim is None
                or not lim[0] <= length <= lim[1]
            ):
                if skipped:
                    out.append(GarbageSkipped(skipped))
                    lost += skipped
                    skipped = 0
                out.append(_header_error(version, flags, length, seq, msg_id, pump_id))
                lost += 1
                pos = i + 1
                continue
            auth = flags & FLAG_AUTH
            end = i + length + (AUTH_OVERHEAD if auth else PLAIN_OVERHEAD)
            if end > n:
                hidden = self._frame_inside(buf, i, n)
                if hidden < 0:
                    break
                if skipped:
                    out.append(GarbageSkipped(skipped))
                    lost += skipped
                    skipped = 0
                out.append(TruncatedFrame(end - i, hidden - i))
                lost += hidden - i
                pos = hidden
                continue
            raw = buf if (i == 0 and end == n and buf.__class__ is bytes) else bytes(buf[i:end])
            if crc(raw[:-2], lim[2]) != raw[-2] | (raw[-1] << 8):
                if skipped:
                    out.append(GarbageSkipped(skipped))
                    lost += skipped
                    skipped = 0
                out.append(BadCrc(msg_id, crc(raw[:-2], lim[2]), raw[-2] | (raw[-1] << 8)))
                lost += 1
                pos = i + 1
                continue
            if skipped:
                out.append(GarbageSkipped(skipped))
                lost += skipped
                skipped = 0
            if auth:
                session_id, counter = AUTH_HEADER.unpack_from(raw, HEADER_SIZE)
                tag_at = 22 + length
                frame = (
                    version,
                    flags,
                    seq,
                    msg_id,
                    pump_id,
                    session_id,
                    counter,
                    raw[22:tag_at],
                    raw[tag_at:-2],
                    raw,
                )
            else:
                frame = (version, flags, seq, msg_id, pump_id, 0, 0, raw[14:-2], b"", raw)
            out.append(_new_frame(Frame, frame))
            ok += 1
            pos = end
        if skipped:
            out.append(GarbageSkipped(skipped))
            lost += skipped
        if buf is self._buf:
            if pos:
                del buf[:pos]
        elif pos < n:
            self._buf += buf[pos:]
        self.bytes_skipped += lost
        self.frames_ok += ok
        return out

    def _frame_inside(self, buf: bytes | bytearray, start: int, n: int) -> int:
        """Where to resume if the pending candidate at `start` must be abandoned, else -1.

        The candidate is abandoned when a complete, CRC-valid frame starts inside it. Hunting
        then resumes at the earliest candidate before that frame that is still undecidable
        (its own bytes are not all in), or at the frame itself: nested lying lengths are
        unwound one by one and can never hold a complete frame hostage.
        """
        limits = self._limits
        undecided = -1
        j = start + 1
        while True:
            j = buf.find(MAGIC, j)
            if j < 0 or n - j < HEADER_SIZE:
                return -1
            _, version, flags, length, _, msg_id, _ = HEADER.unpack_from(buf, j)
            lim = limits.get(msg_id)
            if (
                version == PROTOCOL_MAJOR
                and not flags & ~KNOWN_FLAGS
                and lim is not None
                and lim[0] <= length <= lim[1]
            ):
                end = j + length + (AUTH_OVERHEAD if flags & FLAG_AUTH else PLAIN_OVERHEAD)
                if end > n:
                    if undecided < 0:
                        undecided = j
                elif _crc_hqx(bytes(buf[j : end - 2]), lim[2]) == buf[end - 2] | (
                    buf[end - 1] << 8
                ):
                    return undecided if undecided >= 0 else j
            j += 1

    def reset(self) -> None:
        """Forget buffered bytes (e.g. after the link was re-opened)."""
        self._buf.clear()
