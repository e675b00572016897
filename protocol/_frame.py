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
    ..     2    crc          CRC-16/CCITT-FALSE over frame[2:before crc], then over the
                             message's 2-byte schema seed (little-endian)

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
from ._schema import MESSAGES, Message

MAGIC = b"\xe7\x1a"
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 0
MAX_PAYLOAD = 1024

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


def frame_crc(body: bytes, seed_bytes: bytes) -> int:
    """The frame check value: CRC over body (frame[2:before crc]) continued over the seed."""
    return _crc_hqx(seed_bytes, _crc_hqx(body, 0xFFFF))


def encode_frame(
    message: Message,
    *,
    pump_id: int,
    seq: int,
    from_pump: bool,
) -> bytes:
    """Encode an unauthenticated frame. Authenticated frames are built by a session."""
    payload = message._encode()
    n = len(payload)
    if n > MAX_PAYLOAD:  # every declared message fits; kept as a guard for future ones
        raise ValueError(f"{message.NAME}: payload of {n} bytes exceeds {MAX_PAYLOAD}")
    flags = FLAG_FROM_PUMP if from_pump else 0
    head = HEADER.pack(MAGIC, PROTOCOL_MAJOR, flags, n, seq, message.MSG_ID, pump_id)
    body = head + payload
    return body + _CRC.pack(_crc_hqx(message.SEED_BYTES, _crc_hqx(body[2:], 0xFFFF)))


def seal_frame(
    message: Message,
    *,
    pump_id: int,
    seq: int,
    from_pump: bool,
    session_id: int,
    counter: int,
    mac: object,
) -> bytes:
    """Encode an authenticated frame; `mac` is a keyed hmac object (copied, never mutated)."""
    payload = message._encode()
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"{message.NAME}: payload of {n} bytes exceeds {MAX_PAYLOAD}")
    flags = FLAG_AUTH | (FLAG_FROM_PUMP if from_pump else 0)
    body = (
        HEADER.pack(MAGIC, PROTOCOL_MAJOR, flags, n, seq, message.MSG_ID, pump_id)
        + AUTH_HEADER.pack(session_id, counter)
        + payload
    )
    h = mac.copy()  # type: ignore[attr-defined]
    h.update(body[2:])
    body += h.digest()[:TAG_SIZE]
    return body + _CRC.pack(_crc_hqx(message.SEED_BYTES, _crc_hqx(body[2:], 0xFFFF)))


# Size limits per message id, for rejecting impossible length fields before waiting for them.
_LIMITS: dict[int, tuple[int, int, bytes]] = {}


def _limits(msg_id: int) -> tuple[int, int, bytes] | None:
    lim = _LIMITS.get(msg_id)
    if lim is None:
        cls = MESSAGES.get(msg_id)
        if cls is None:
            return None
        lim = _LIMITS[msg_id] = (cls.MIN_SIZE, cls.MAX_SIZE, cls.SEED_BYTES)
    return lim


class FrameDecoder:
    """Stream decoder: `feed(bytes)` returns the frames and decode errors found, in order.

    Accepts any chunking. Holds at most one incomplete candidate frame plus what arrived after
    it, so memory is bounded by MAX_FRAME plus the largest chunk fed.
    """

    __slots__ = ("_buf", "_pending_scan", "frames_ok", "bytes_skipped")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending_scan = 0  # where the look-ahead scan inside a pending candidate resumes
        self.frames_ok = 0
        self.bytes_skipped = 0

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | DecodeError]:
        buf = self._buf
        buf += data
        out: list[Frame | DecodeError] = []
        pos = 0
        n = len(buf)
        skipped = 0
        while True:
            i = buf.find(MAGIC, pos)
            if i < 0:
                # Keep a trailing first magic byte: it may start the next frame.
                keep = n - 1 if n > pos and buf[n - 1] == MAGIC[0] else n
                skipped += keep - pos
                pos = keep
                break
            if i > pos:
                skipped += i - pos
                pos = i
            if n - i < HEADER_SIZE:
                break
            _, version, flags, length, seq, msg_id, pump_id = HEADER.unpack_from(buf, i)
            err: DecodeError | None = None
            if version != PROTOCOL_MAJOR:
                err = UnsupportedVersion(version, PROTOCOL_MAJOR)
            elif flags & ~KNOWN_FLAGS:
                err = UnknownFlags(flags)
            else:
                lim = _limits(msg_id)
                if lim is None:
                    err = UnknownMessage(msg_id, seq, pump_id)
                elif not lim[0] <= length <= lim[1]:
                    err = BadLength(msg_id, length, f"{lim[0]}..{lim[1]}")
            if err is not None:
                if skipped:
                    out.append(GarbageSkipped(skipped))
                    self.bytes_skipped += skipped
                    skipped = 0
                out.append(err)
                self.bytes_skipped += 1
                pos = i + 1
                continue
            auth = flags & FLAG_AUTH
            total = length + (AUTH_OVERHEAD if auth else PLAIN_OVERHEAD)
            end = i + total
            if end > n:
                hidden = self._frame_inside(buf, i, n)
                if hidden < 0:
                    break
                if skipped:
                    out.append(GarbageSkipped(skipped))
                    self.bytes_skipped += skipped
                    skipped = 0
                out.append(TruncatedFrame(total, hidden - i))
                self.bytes_skipped += hidden - i
                pos = hidden
                continue
            raw = bytes(buf[i:end])
            found = raw[-2] | (raw[-1] << 8)
            want = _crc_hqx(lim[2], _crc_hqx(raw[2:-2], 0xFFFF))  # type: ignore[index]
            if want != found:
                if skipped:
                    out.append(GarbageSkipped(skipped))
                    self.bytes_skipped += skipped
                    skipped = 0
                out.append(BadCrc(msg_id, want, found))
                self.bytes_skipped += 1
                pos = i + 1
                continue
            if skipped:
                out.append(GarbageSkipped(skipped))
                self.bytes_skipped += skipped
                skipped = 0
            if auth:
                session_id, counter = AUTH_HEADER.unpack_from(raw, HEADER_SIZE)
                p0 = HEADER_SIZE + AUTH_HEADER_SIZE
                payload = raw[p0 : p0 + length]
                tag = raw[p0 + length : p0 + length + TAG_SIZE]
            else:
                session_id = counter = 0
                payload = raw[HEADER_SIZE : HEADER_SIZE + length]
                tag = b""
            out.append(
                Frame(version, flags, seq, msg_id, pump_id, session_id, counter, payload, tag, raw)
            )
            self.frames_ok += 1
            pos = end
            self._pending_scan = 0
        if skipped:
            out.append(GarbageSkipped(skipped))
            self.bytes_skipped += skipped
        if pos:
            del buf[:pos]
            self._pending_scan = max(0, self._pending_scan - pos)
        return out

    def _frame_inside(self, buf: bytearray, start: int, n: int) -> int:
        """Offset of a complete CRC-valid frame starting inside the pending candidate, or -1."""
        j = max(start + 1, self._pending_scan)
        while True:
            j = buf.find(MAGIC, j)
            if j < 0 or n - j < HEADER_SIZE:
                # Resume later from the first position not yet proven useless.
                self._pending_scan = n - 1 if j < 0 else j
                if self._pending_scan <= start:
                    self._pending_scan = start + 1
                return -1
            _, version, flags, length, _, msg_id, _ = HEADER.unpack_from(buf, j)
            lim = _limits(msg_id)
            if (
                version == PROTOCOL_MAJOR
                and not flags & ~KNOWN_FLAGS
                and lim is not None
                and lim[0] <= length <= lim[1]
            ):
                end = j + length + (AUTH_OVERHEAD if flags & FLAG_AUTH else PLAIN_OVERHEAD)
                if end > n:
                    # Not yet decidable: rescan from here when more bytes arrive.
                    self._pending_scan = j
                    return -1
                found = buf[end - 2] | (buf[end - 1] << 8)
                if _crc_hqx(lim[2], _crc_hqx(bytes(buf[j + 2 : end - 2]), 0xFFFF)) == found:
                    return j
            j += 1

    def reset(self) -> None:
        """Forget buffered bytes (e.g. after the link was re-opened)."""
        self._buf.clear()
        self._pending_scan = 0
