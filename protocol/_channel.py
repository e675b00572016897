"""One session as one end holds it: the per-direction HMAC keys (keyed once: the padded key's
inner and outer SHA-256 states are computed when the session opens and copied per frame), the
send counter, the replay window and the session's age. `_Channel.verify` runs the receive checks
in the safe order (replay pre-check, constant-time tag check, then the window moves) and
`_Channel.seal` numbers and authenticates an outgoing frame. Shared by `PumpSecurity`
(`_pump_session.py`) and `HostSecurity` (`_host_session.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable
from typing import Final, Protocol

from ._enums import Role
from ._errors import AuthFailed, SessionExpired
from ._frame import CRC_SIZE, FLAG_AUTH, FLAG_FROM_PUMP, TAG_SIZE, Frame, _seal
from ._replay import ReplayWindow
from ._schema import Message

MAX_COUNTER: Final = 0xFFFF_FFFF


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    session_id: int
    role: Role


class Mac(Protocol):
    """A keyed HMAC state that is copied per frame (never mutated itself)."""

    def copy(self) -> Mac: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def keyed_mac(key: bytes) -> Mac:
    """HMAC-SHA256 keyed once, as an object that is copied per message (`copy`, `update`,
    `digest`): for callers that build a tag piece by piece. The hot path uses `hmac_sha256`."""
    wrapper = hmac.new(key, digestmod=hashlib.sha256)
    inner: Mac = getattr(wrapper, "_hmac", None) or wrapper
    return inner


Tagger = Callable[[bytes], bytes]  # message -> its 32-byte HMAC-SHA256 under one key

_BLOCK = 64  # SHA-256's block size: the HMAC key is padded to it
_IPAD = bytes(x ^ 0x36 for x in range(256))  # translate() tables: key byte XOR 0x36 / 0x5C
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes) -> Tagger:
    """HMAC-SHA256 (RFC 2104) under `key` as a function of the message. The SHA-256 states
    after the padded key XOR ipad and XOR opad are computed here, once; a message then costs
    two state copies and two short hashes: about 40% less than copying a keyed HMAC object,
    the same 32 bytes (`tests/test_hmac_states.py`)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(padded.translate(_IPAD)).copy
    outer = hashlib.sha256(padded.translate(_OPAD)).copy

    def tag(message: bytes) -> bytes:
        h = inner()
        h.update(message)
        o = outer()
        o.update(h.digest())
        return o.digest()

    return tag


_PUMP_SEALED = FLAG_AUTH | FLAG_FROM_PUMP


class _Channel:
    """One session's keys, counters and window, as held by one end."""

    __slots__ = (
        "confirm_tag",
        "created_ms",
        "host_id",
        "info",
        "last_ms",
        "recv_mac",
        "recv_tag",
        "role",
        "send_counter",
        "send_mac",
        "send_tag",
        "session_id",
        "window",
    )

    def __init__(
        self,
        session_id: int,
        role: Role,
        send_key: bytes,
        recv_key: bytes,
        now_ms: int,
        host_id: int = 0,
    ):
        self.session_id = session_id
        self.host_id = host_id
        self.confirm_tag = b""  # pump side: the CONFIRM tag that opened the session
        self.role = role
        self.send_mac = keyed_mac(send_key)  # for callers sealing raw frames (tests)
        self.recv_mac = keyed_mac(recv_key)
        self.send_tag = hmac_sha256(send_key)
        self.recv_tag = hmac_sha256(recv_key)
        self.info = SessionInfo(session_id, role)
        self.send_counter = 0
        self.window = ReplayWindow()
        self.created_ms = now_ms
        self.last_ms = now_ms

    def authentic(self, frame: Frame) -> bool:
        """The frame's tag verifies under this channel's receive key (constant time)."""
        raw = frame.raw  # the tag covers version .. end of payload (Frame.mac_input)
        mac = self.recv_tag(raw[2 : len(raw) - TAG_SIZE - CRC_SIZE])
        return hmac.compare_digest(mac[:TAG_SIZE], frame.tag)

    def verify(self, frame: Frame) -> None:
        """Replay pre-check, constant-time tag check, then (only then) move the window."""
        window = self.window
        counter = frame.counter
        if counter <= window.highest:  # beyond the highest is always new (and never 0)
            window.check(counter)
        if not self.authentic(frame):
            raise AuthFailed("authentication failed")
        window.commit(counter)

    def seal(self, message: Message, *, pump_id: int, seq: int, from_pump: bool) -> bytes:
        if self.send_counter >= MAX_COUNTER:
            raise SessionExpired("the session's frame counter is exhausted: run a new handshake")
        self.send_counter = counter = self.send_counter + 1
        flags = _PUMP_SEALED if from_pump else FLAG_AUTH
        return _seal(message, flags, pump_id, seq, self.session_id, counter, self.send_tag)

    def seal_request(self, message: Message, pump_id: int, seq: int) -> bytes:
        """`seal(message, pump_id=pump_id, seq=seq, from_pump=False)`, positionally: the host's
        every sealed request."""
        if self.send_counter >= MAX_COUNTER:
            raise SessionExpired("the session's frame counter is exhausted: run a new handshake")
        self.send_counter = counter = self.send_counter + 1
        return _seal(message, FLAG_AUTH, pump_id, seq, self.session_id, counter, self.send_tag)

    def seal_reply(self, message: Message, pump_id: int, seq: int) -> bytes:
        """`seal(message, pump_id=pump_id, seq=seq, from_pump=True)`, positionally: the pump's
        every sealed answer."""
        if self.send_counter >= MAX_COUNTER:
            raise SessionExpired("the session's frame counter is exhausted: run a new handshake")
        self.send_counter = counter = self.send_counter + 1
        return _seal(message, _PUMP_SEALED, pump_id, seq, self.session_id, counter, self.send_tag)
