"""What the harnesses share: fixed keys, fixed randomness, a deterministic handshake, and an
independent check of whether a frame is validly sealed.

Everything is deterministic so that the stored corpus means the same thing in every process:
the pump's role keys are the ones of tests/vectors/handshake.json, the pump's randomness (session
ids, nonces) restarts from the same seed for every input, and the hosts' nonces are fixed too.
A sealed frame stored in the corpus therefore verifies in the session a harness sets up.

The "validly sealed" check below recomputes the session keys and the tag with `hmac` directly,
from the handshake's nonces and the documented derivation (protocol/_session.py docstring), so
the oracle does not trust the code under test to tell it which frames were genuine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import random
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import protocol as p

PUMP_ID = 1234  # the serial of tests/vectors and of the emulator's default pump
KEY_BYTES = {
    p.Role.CLINICIAN: bytes(range(0x00, 0x20)),  # K_clinician of tests/vectors/handshake.json
    p.Role.PATIENT: bytes(range(0x80, 0xA0)),  # K_patient
}
KEYS = {role: p.SecretKey(key) for role, key in KEY_BYTES.items()}
PUMP_SEED = 0x1D1  # the pump's randomness restarts from this seed for every input
HOST_IDS = {p.Role.CLINICIAN: 0xBEEF, p.Role.PATIENT: 0xCAFE}
HOST_SEEDS = {p.Role.CLINICIAN: 11, p.Role.PATIENT: 22}
TAG_SIZE = 16
CRC_SIZE = 2
COMMAND_KINDS = (p.CommandKind.COMMAND, p.CommandKind.THERAPY)


def pump_randbytes() -> Callable[[int], bytes]:
    return random.Random(PUMP_SEED).randbytes


def pump_security(policy: p.SessionPolicy | None = None) -> p.PumpSecurity:
    """A fresh pump session layer with the fixed keys and randomness."""
    return p.PumpSecurity(PUMP_ID, KEYS, pump_randbytes(), policy)


def only_frame(data: bytes) -> p.Frame:
    items = p.FrameDecoder().feed(data)
    if len(items) != 1 or not isinstance(items[0], p.Frame):
        raise AssertionError(f"not exactly one frame: {items!r}")
    return items[0]


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out again here (the oracle must not reuse the code under test)."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm = block = b""
    counter = 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One completed handshake with the fixed pump: its frames and the keys it derived."""

    role: p.Role
    hello: bytes
    confirm: bytes
    hello_frame: p.Frame
    confirm_frame: p.Frame
    session_id: int
    k_h2p: bytes


def handshake(
    pump: p.PumpSecurity, roles: Sequence[p.Role], now_ms: int
) -> tuple[list[Exchange], list[p.HostSecurity]]:
    """Run the handshakes of `roles` (in order) against `pump` with the fixed host nonces.

    Returns the exchanges and the established hosts (which can seal further frames)."""
    exchanges, hosts = [], []
    for role in roles:
        host = p.HostSecurity(
            PUMP_ID,
            role,
            KEYS[role],
            random.Random(HOST_SEEDS[role]).randbytes,
            host_id=HOST_IDS[role],
        )
        hello = host.hello(seq=1)
        hello_frame = only_frame(hello)
        challenge = pump.receive(hello_frame, now_ms)
        if not isinstance(challenge, p.Reply):
            raise AssertionError(f"HELLO refused: {challenge!r}")
        challenge_frame = only_frame(challenge.data)
        send = host.receive(challenge_frame)
        if not isinstance(send, p.Send):
            raise AssertionError(f"CHALLENGE refused: {send!r}")
        confirm_frame = only_frame(send.data)
        ready = pump.receive(confirm_frame, now_ms)
        if not isinstance(ready, p.Reply) or ready.what != "session_ready":
            raise AssertionError(f"CONFIRM refused: {ready!r}")
        if not isinstance(host.receive(only_frame(ready.data)), p.Established):
            raise AssertionError("SESSION_READY refused by the host")
        hello_msg = hello_frame.decode()
        challenge_msg = challenge_frame.decode()
        assert isinstance(hello_msg, p.Hello) and isinstance(challenge_msg, p.Challenge)
        info = b"itp1" + struct.pack("<IB", challenge_msg.session_id, role)
        okm = hkdf_sha256(KEY_BYTES[role], hello_msg.nonce + challenge_msg.nonce, info, 64)
        exchanges.append(
            Exchange(
                role,
                hello,
                send.data,
                hello_frame,
                confirm_frame,
                challenge_msg.session_id,
                okm[:32],
            )
        )
        hosts.append(host)
    return exchanges, hosts


def establish(pump: p.PumpSecurity, exchanges: Iterable[Exchange], now_ms: int) -> None:
    """Replay recorded handshakes into a fresh `pump_security()`: the same sessions result."""
    for ex in exchanges:
        challenge = pump.receive(ex.hello_frame, now_ms)
        ready = pump.receive(ex.confirm_frame, now_ms)
        if not isinstance(challenge, p.Reply) or not isinstance(ready, p.Reply):
            raise AssertionError(f"recorded handshake refused: {challenge!r} {ready!r}")
        if ready.session is None or ready.session.session_id != ex.session_id:
            raise AssertionError("the recorded handshake gave another session: not deterministic")


def sealed_role(frame: p.Frame, exchanges: Iterable[Exchange]) -> p.Role | None:
    """The role whose session key validly sealed `frame` (any counter), or None.

    Recomputed from the raw bytes: tag = HMAC-SHA256(k_h2p, raw[2:end of payload])[:16]."""
    if not frame.authenticated:
        return None
    raw = frame.raw
    session_id = int.from_bytes(raw[14:18], "little")
    for ex in exchanges:
        if ex.session_id == session_id:
            mac_input = raw[2 : len(raw) - TAG_SIZE - CRC_SIZE]
            tag = hmac.new(ex.k_h2p, mac_input, hashlib.sha256).digest()[:TAG_SIZE]
            end = len(raw) - CRC_SIZE
            if hmac.compare_digest(tag, raw[end - TAG_SIZE : end]):
                return ex.role
    return None


def feed_chunked(decoder: p.FrameDecoder, data: bytes, step: int) -> list[p.Frame | p.DecodeError]:
    """Feed `data` in chunks of `step` bytes (0: in one piece)."""
    if step <= 0:
        return decoder.feed(data)
    out: list[p.Frame | p.DecodeError] = []
    for i in range(0, len(data), step):
        out += decoder.feed(data[i : i + step])
    return out


def instrument_codecs(instrument_func: Callable[[Any], Any]) -> int:
    """Hand the generated payload codecs to `atheris.instrument_func`.

    `atheris.instrument_imports()` instruments modules as they are imported, but the encoders
    and decoders of every message and record are generated at import time with `exec`
    (protocol/_codec.py `generate_codec`), so they carry no coverage feedback unless they are
    instrumented function by function. Returns the number of functions instrumented."""
    seen: set[type[Any]] = set()
    todo: list[type[Any]] = list(p.MESSAGES.values())
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(f.item for f in cls.FIELDS if f.item is not None)
    count = 0
    for cls in seen:
        for name in ("_decode", "_encode", "_validate", "_from_values"):
            fn = cls.__dict__.get(name)
            if fn is not None and hasattr(fn, "__code__"):
                instrument_func(fn)
                count += 1
    return count
