"""MQTT 5 packets the pump's own broker connection needs, encoded and decoded by hand.

Only what `_mqtt_conn.WireClient` sends and accepts: CONNECT (clean start, last will,
username/password), CONNACK, SUBSCRIBE with options (QoS, retain as published), SUBACK,
PUBLISH at QoS 0 or 1 with the retain flag, PUBACK, PINGREQ/PINGRESP and DISCONNECT
(OASIS MQTT 5.0, sections 2 and 3). Properties are written empty and read only for what
matters here (the server's Receive Maximum and Server Keep Alive); every other property is
skipped by its declared type. A packet that does not parse raises `ProtocolViolation`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 0x82, 0x90, 0xC0, 0xD0, 0xE0

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # normal disconnection: the broker drops the last will

# property id -> how its value is encoded (MQTT 5.0 section 2.2.2.2)
_BYTE, _U16, _U32, _VARINT, _STR, _PAIR = range(6)
_PROPERTY_TYPES = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STR, 0x08: _STR, 0x09: _STR, 0x0B: _VARINT,
    0x11: _U32, 0x12: _STR, 0x13: _U16, 0x15: _STR, 0x16: _STR, 0x17: _BYTE,
    0x18: _U32, 0x19: _BYTE, 0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _U16,
    0x22: _U16, 0x23: _U16, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _U32,
    0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip
RECEIVE_MAXIMUM, SERVER_KEEP_ALIVE = 0x21, 0x13


class ProtocolViolation(ValueError):
    """The broker sent bytes that are not a well-formed MQTT 5 packet."""


def varint(n: int) -> bytes:
    """MQTT's variable byte integer (remaining lengths, property lengths)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when `buf` ends inside it."""
    value = shift = 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        b = buf[pos + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos + i + 1
        shift += 7
    raise ProtocolViolation("a variable byte integer longer than 4 bytes")


def _str(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def connect(
    client_id: str,
    keepalive_s: int,
    *,
    will_topic: str,
    will_payload: bytes,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT: MQTT 5, clean start, no session kept (expiry 0, the default), a retained
    QoS 1 last will."""
    flags = 0x02 | 0x04 | (1 << 3) | 0x20  # clean start, will, will QoS 1, will retain
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = _str("MQTT") + bytes((5, flags)) + struct.pack(">H", keepalive_s) + b"\x00"
    body += _str(client_id) + b"\x00" + _str(will_topic) + _str(will_payload)
    if username is not None:
        body += _str(username)
    if password is not None:
        body += _str(password)
    return _packet(CONNECT, body)


def subscribe(
    mid: int, topic: str, qos: int, *, retain_as_published: bool, no_local: bool = False
) -> bytes:
    """SUBSCRIBE to one topic; options (MQTT 5, 3.8.3.1): QoS in bits 0-1, No Local bit 2
    (not our own publishes), Retain As Published bit 3."""
    options = qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0)
    return _packet(SUBSCRIBE, struct.pack(">H", mid) + b"\x00" + _str(topic) + bytes((options,)))


def subscribe_many(mid: int, topics: list[str], qos: int, *, retain_as_published: bool) -> bytes:
    """SUBSCRIBE to several topic filters in one packet (MQTT 5 allows many), same options."""
    options = bytes((qos | (0x08 if retain_as_published else 0),))
    filters = b"".join(_str(t) + options for t in topics)
    return _packet(SUBSCRIBE, struct.pack(">H", mid) + b"\x00" + filters)


def publish(topic: str, payload: bytes, qos: int, retain: bool, mid: int) -> bytes:
    head = _str(topic) + (struct.pack(">H", mid) if qos else b"") + b"\x00"
    return _packet(PUBLISH | (qos << 1) | (1 if retain else 0), head + payload)


def puback(mid: int) -> bytes:
    return b"\x40\x02" + struct.pack(">H", mid)  # reason code omitted: success


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int  # 0 at QoS 0


def properties(body: bytes, pos: int) -> tuple[dict[int, int], int]:
    """The integer-valued properties at `pos` (others skipped) and the position after them."""
    got = read_varint(body, pos)
    if got is None:
        raise ProtocolViolation("truncated properties")
    length, pos = got
    end = pos + length
    if end > len(body):
        raise ProtocolViolation("properties run past the packet")
    out: dict[int, int] = {}
    while pos < end:
        pid = body[pos]
        kind = _PROPERTY_TYPES.get(pid)
        pos += 1
        if kind is _BYTE:
            out[pid], pos = body[pos], pos + 1
        elif kind is _U16:
            out[pid], pos = int.from_bytes(body[pos : pos + 2], "big"), pos + 2
        elif kind is _U32:
            out[pid], pos = int.from_bytes(body[pos : pos + 4], "big"), pos + 4
        elif kind is _VARINT:
            v = read_varint(body, pos)
            if v is None:
                raise ProtocolViolation("truncated property")
            out[pid], pos = v
        elif kind is _STR:
            pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
        elif kind is _PAIR:
            pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
            pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
        else:
            raise ProtocolViolation(f"unknown property 0x{pid:02x}")
    if pos != end:
        raise ProtocolViolation("properties run past their length")
    return out, end


def parse_publish(first: int, body: bytes) -> Publish:
    qos = (first >> 1) & 3
    if qos == 3:
        raise ProtocolViolation("PUBLISH with QoS 3")
    if len(body) < 2:
        raise ProtocolViolation("truncated PUBLISH")
    n = int.from_bytes(body[:2], "big")
    pos = 2 + n
    try:
        topic = body[2:pos].decode()
    except UnicodeDecodeError:
        raise ProtocolViolation("PUBLISH topic is not UTF-8") from None
    mid = 0
    if qos:
        mid, pos = int.from_bytes(body[pos : pos + 2], "big"), pos + 2
    _, pos = properties(body, pos)
    return Publish(topic, body[pos:], qos, bool(first & 1), mid)


def parse_connack(body: bytes) -> tuple[int, dict[int, int]]:
    """(reason code, integer properties)."""
    if len(body) < 3:
        raise ProtocolViolation("truncated CONNACK")
    props, _ = properties(body, 2)
    return body[1], props


def parse_ack(body: bytes) -> tuple[int, int]:
    """PUBACK: (packet id, reason code; 0 when omitted)."""
    if len(body) < 2:
        raise ProtocolViolation("truncated PUBACK")
    return int.from_bytes(body[:2], "big"), body[2] if len(body) > 2 else 0


def parse_suback(body: bytes) -> tuple[int, bytes]:
    """(packet id, one reason code per topic filter)."""
    if len(body) < 3:
        raise ProtocolViolation("truncated SUBACK")
    _, pos = properties(body, 2)
    return int.from_bytes(body[:2], "big"), body[pos:]
