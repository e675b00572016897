"""The small rules of docs/protocol.md section 20, each checked against the code: how the stream
decoder counts what it discards, the host's seq numbers (start, wrap, 0 reserved), the key file
format, and the signature notation a schema seed is computed from."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

import protocol as p

from .test_decoder import SENTINEL, feed_chunked, mutate

HEADER_ERRORS = (p.BadCrc, p.BadLength, p.UnknownMessage, p.UnsupportedVersion, p.UnknownFlags)


def test_the_decoder_counts_every_discarded_byte_as_documented() -> None:
    """bytes_skipped = garbage runs + 1 per refused candidate (its first byte) + the bytes
    dropped with each abandoned candidate; frames_ok = frames handed out."""
    rng = random.Random(6)
    seen: set[str] = set()
    for _ in range(3_000):
        stream = mutate(rng) + SENTINEL
        items, dec = feed_chunked(stream, rng)
        counted = 0
        for item in items:
            if isinstance(item, p.GarbageSkipped):
                assert item.count > 0
                counted += item.count
            elif isinstance(item, HEADER_ERRORS):
                counted += 1
            elif isinstance(item, p.TruncatedFrame):
                assert 0 < item.available < item.claimed
                counted += item.available
            seen.add(type(item).__name__)
        assert counted == dec.bytes_skipped
        assert dec.frames_ok == sum(isinstance(x, p.Frame) for x in items)
    assert {"GarbageSkipped", "BadCrc", "TruncatedFrame", "Frame"} <= seen, seen


def test_a_garbage_run_is_one_item_and_a_trailing_magic_byte_waits() -> None:
    good = p.encode_frame(p.GetStatus(), pump_id=1234, seq=1, from_pump=False)
    dec = p.FrameDecoder()
    items = dec.feed(b"noise" + good + b"\x00\x01\xe7")
    assert [type(x) for x in items] == [p.GarbageSkipped, p.Frame, p.GarbageSkipped]
    assert [x.count for x in items if isinstance(x, p.GarbageSkipped)] == [5, 2]
    assert dec.buffered == 1  # E7 may start the next frame
    assert dec.feed(b"\x00") == [] or dec.bytes_skipped >= 7
    items = dec.feed(b"")
    assert dec.bytes_skipped + len(good) + dec.buffered == 5 + len(good) + 4


def _host(rng: random.Random) -> p.HostSecurity:
    return p.HostSecurity(1234, p.Role.CLINICIAN, p.SecretKey(bytes(32)), rng.randbytes, host_id=7)


def test_confirm_after_a_hello_at_seq_65535_wraps_to_1_never_0() -> None:
    """seq 0 is the pump's own (beacons, UNSUPPORTED_VERSION): a host's seq runs 1 .. 65535 and
    wraps to 1, the CONFIRM included (it takes the HELLO's seq + 1)."""
    rng = random.Random(1)
    keys = {p.Role.CLINICIAN: p.SecretKey(bytes(32))}
    pump = p.PumpSecurity(1234, keys, rng.randbytes)
    for hello_seq, confirm_seq in ((1, 2), (65534, 65535), (65535, 1)):
        host = _host(rng)
        (hello,) = p.FrameDecoder().feed(host.hello(seq=hello_seq))
        assert isinstance(hello, p.Frame)
        challenge = pump.receive(hello, 0)
        assert isinstance(challenge, p.Reply)
        (frame,) = p.FrameDecoder().feed(challenge.data)
        assert isinstance(frame, p.Frame)
        send = host.receive(frame)
        assert isinstance(send, p.Send)
        (confirm,) = p.FrameDecoder().feed(send.data)
        assert isinstance(confirm, p.Frame) and confirm.seq == confirm_seq


def test_the_programmer_seq_runs_1_to_65535_and_skips_0() -> None:
    from programmer._pump import Pump

    client: Any = object.__new__(Pump)
    client._seq = 65_534
    assert [client._next_seq() for _ in range(3)] == [65_535, 1, 2]


@pytest.mark.parametrize(
    ("text", "mode", "ok"),
    [
        ("ab" * 32 + "\n", 0o100600, True),  # as the emulator writes it
        ("  " + "AB" * 32 + "\r\n", 0o100400, True),  # upper case, surrounding whitespace
        ("ab" * 32, 0o100640, False),  # readable by the group
        ("ab" * 32, 0o100604, False),  # readable by others
        ("ab" * 31, 0o100600, False),  # 62 digits
        ("ab" * 32 + "00", 0o100600, False),  # 66 digits
        ("ab" * 16 + " " + "ab" * 16, 0o100600, False),  # whitespace inside
        ("zz" * 32, 0o100600, False),
    ],
)
def test_the_key_file_format(text: str, mode: int, ok: bool) -> None:
    if ok:
        assert p.key_from_file(text, mode, "k") == p.SecretKey(b"\xab" * 32)
    else:
        with pytest.raises(ValueError, match="key file k"):
            p.key_from_file(text, mode, "k")


_TYPE = r"(?:u8|u16|u32|u64|i8|i16|i32|i64|bool|enum8|enum16|flags32|text8|bytes\d+)"


def _parse(signature: str) -> tuple[str, list[tuple[str, Any]]]:
    """The grammar of docs/protocol.md section 20: NAME (TYPE name)*, where an array's TYPE is
    array8<ITEM> and ITEM is the item record's own signature."""
    name, _, rest = signature.partition(" ")
    fields: list[tuple[str, Any]] = []
    while rest:
        if rest.startswith("array8<"):
            depth, i = 0, 0
            while True:
                depth += (rest[i] == "<") - (rest[i] == ">")
                if depth == 0 and rest[i] == ">":
                    break
                i += 1
            item = _parse(rest[len("array8<") : i])
            fname, _, rest = rest[i + 2 :].partition(" ")
            fields.append((fname, item))
            continue
        m = re.match(rf"({_TYPE}) ([a-z0-9_]+) ?", rest)
        assert m, rest
        fields.append((m.group(2), m.group(1)))
        rest = rest[m.end() :]
    return name, fields


@pytest.mark.parametrize("cls", list(p.MESSAGES.values()), ids=lambda c: c.NAME)
def test_every_signature_follows_the_documented_notation(cls: type[p.Message]) -> None:
    name, fields = _parse(cls.signature())
    assert name == cls.NAME
    assert [f for f, _ in fields] == [f.name for f in cls.FIELDS]
    assert p.crc16(cls.signature().encode("ascii")) == cls.SEED
