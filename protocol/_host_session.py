"""The host's end of one pump session: `HostSecurity` runs the handshake (hello, then the
CONFIRM it computes from the pump's CHALLENGE after checking the pump proved the role key), seals
commands in the session, encodes the few OPEN messages plainly, and verifies every frame the
pump sends (`Send`, `Established`, `Response` or `Unsealed`; anything else raises a
`ProtocolError` and changes nothing). Sans-I/O: the caller moves the bytes (programmer/ does,
over pty or MQTT).

Host rules (protocol.md sections 5 and 10): every sealed pump frame passes this end's replay
window (the pump's: 64 frames, RFC 4303) before it counts; a plain `ERROR` that arrives while a
session is established is `Unsealed`, never a `Response`: anyone on the line or the broker can
forge one, so it is never the outcome of a sealed request (counted in `plain_errors`).
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import Final

from ._channel import SessionInfo, _Channel
from ._enums import Role
from ._errors import AuthFailed, HandshakeFailed, NotAuthenticated, WrongDirection, WrongPump
from ._fast import frozen_maker
from ._frame import FLAG_AUTH, FLAG_FROM_PUMP, Frame, encode_frame
from ._keys import NONCE_SIZE, RandBytes, SecretKey, handshake_tags, session_keys, transcript
from ._messages import Challenge, Confirm, Error, Hello, SessionEnded, SessionReady
from ._schema import MESSAGES, Access, Direction, Message

# Named on every frame's path, as module globals: on Python 3.11 a lookup through an enum class
# goes through `EnumType.__getattr__`'s slow hook (about 130 ns).
_HOST_TO_PUMP: Final = Direction.HOST_TO_PUMP
_PUMP_TO_HOST: Final = Direction.PUMP_TO_HOST


@dataclasses.dataclass(frozen=True)
class Send:
    """The host must send `data` (the CONFIRM of a handshake)."""

    data: bytes


@dataclasses.dataclass(frozen=True)
class Established:
    """The handshake completed: sealed commands may be sent."""

    session: SessionInfo
    ready: SessionReady


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    """A message from the pump that passed every check."""

    message: Message
    frame: Frame


_make_response = frozen_maker(Response)  # Response(...), cheaper: one per frame


@dataclasses.dataclass(frozen=True)
class Unsealed:
    """A plain ERROR received while a session is established: not an outcome of any sealed
    request (the pump seals every answer it can attribute to the session). A caller may take
    it as a hint only: a session-lost code (the pump restarted and forgot the session) after
    its request timed out without a sealed answer, or UNKNOWN_MESSAGE from an older pump."""

    message: Error
    frame: Frame


HostEvent = Send | Established | Response | Unsealed


class HostSecurity:
    """The host's side of one pump session: handshake, sealing, verifying the pump's frames.

    Raises `ProtocolError` subclasses for frames that fail a check; such frames change nothing.
    """

    def __init__(
        self,
        pump_id: int,
        role: Role,
        key: SecretKey,
        randbytes: RandBytes,
        host_id: int = 0,
    ) -> None:
        self.pump_id = pump_id
        self.role = role
        self._key = key
        self._rand = randbytes
        self.host_id = host_id
        self._hello: Hello | None = None
        self._hello_seq = 0
        self._pending: tuple[int, _Channel] | None = None
        self._channel: _Channel | None = None
        self.plain_errors = 0  # plain ERROR frames received (and not believed) in a session

    @property
    def established(self) -> bool:
        return self._channel is not None

    @property
    def session(self) -> SessionInfo | None:
        ch = self._channel
        return SessionInfo(ch.session_id, ch.role) if ch else None

    def hello(self, *, seq: int) -> bytes:
        """Start (or restart) the handshake; any current session is forgotten."""
        self._channel = None
        self._pending = None
        self._hello = Hello(host_id=self.host_id, role=self.role, nonce=self._rand(NONCE_SIZE))
        self._hello_seq = seq
        return encode_frame(self._hello, pump_id=self.pump_id, seq=seq, from_pump=False)

    def seal(self, message: Message, *, seq: int) -> bytes:
        if self._channel is None:
            raise NotAuthenticated("no session: run the handshake first")
        if message.DIRECTION is not _HOST_TO_PUMP:
            raise WrongDirection(f"{message.NAME} is a pump-to-host message")
        return self._channel.seal_request(message, self.pump_id, seq)

    def plain(self, message: Message, *, seq: int) -> bytes:
        """Encode an OPEN message without a session (GET_DEVICE_INFO)."""
        if message.ACCESS is not Access.OPEN or message.DIRECTION is not Direction.HOST_TO_PUMP:
            raise NotAuthenticated(f"{message.NAME} must be sent in a session")
        return encode_frame(message, pump_id=self.pump_id, seq=seq, from_pump=False)

    def forget(self) -> None:
        """Drop the session (e.g. after SESSION_EXPIRED); the next step is `hello()`."""
        self._channel = None
        self._pending = None

    def receive(self, frame: Frame) -> HostEvent:
        # Frame's properties spelled out (from_pump, message_type, authenticated, decode):
        # this runs for every frame, and each property is a Python-level call.
        flags = frame.flags
        if not flags & FLAG_FROM_PUMP:
            raise WrongDirection("a host-to-pump frame was received by the host")
        if frame.pump_id != self.pump_id:
            raise WrongPump(f"frame from pump {frame.pump_id}, expected {self.pump_id}")
        cls = MESSAGES[frame.msg_id]
        if cls.DIRECTION is not _PUMP_TO_HOST:
            raise WrongDirection(f"{cls.NAME} is sent to pumps, not by them")
        if not flags & FLAG_AUTH:
            if cls.ACCESS is not Access.OPEN:
                raise NotAuthenticated(f"a plain {cls.NAME} is a forgery: pumps seal it")
            message = cls._decode(frame.payload)
            if isinstance(message, Challenge):
                return self._challenge(message)
            if isinstance(message, Error) and self._channel is not None:
                self.plain_errors += 1
                return Unsealed(message, frame)
            return _make_response(message, frame)
        channel = self._channel
        if channel is None and self._pending is not None and self._pending[0] == frame.session_id:
            channel = self._pending[1]
        if channel is None or channel.session_id != frame.session_id:
            raise AuthFailed("frame from an unknown session")
        channel.verify(frame)
        message = cls._decode(frame.payload)
        if isinstance(message, SessionReady):
            if self._channel is None:
                self._channel, self._pending = channel, None
            return Established(channel.info, message)
        if self._channel is None:
            raise AuthFailed("session not yet established")
        if isinstance(message, SessionEnded):
            self._channel = None
        return _make_response(message, frame)

    def _challenge(self, challenge: Challenge) -> HostEvent:
        hello = self._hello
        if hello is None:
            raise HandshakeFailed("unexpected CHALLENGE: no handshake in progress")
        t = transcript(
            hello.host_id,
            hello.role,
            hello.nonce,
            self.pump_id,
            challenge.session_id,
            challenge.nonce,
        )
        tag_p, tag_h = handshake_tags(self._key, t)
        if not hmac.compare_digest(tag_p, challenge.tag):
            raise HandshakeFailed(
                f"the pump did not prove the {self.role.name.lower()} key "
                f"(key {self._key.fingerprint}): wrong key, wrong pump, or an impostor"
            )
        self._hello = None
        k_h2p, k_p2h = session_keys(
            self._key, hello.nonce, challenge.nonce, challenge.session_id, hello.role
        )
        self._pending = (
            challenge.session_id,
            _Channel(challenge.session_id, hello.role, k_h2p, k_p2h, 0),
        )
        confirm = Confirm(session_id=challenge.session_id, tag=tag_h)
        seq = self._hello_seq % 0xFFFF + 1  # 1 .. 65535: seq 0 is the pump's own
        return Send(encode_frame(confirm, pump_id=self.pump_id, seq=seq, from_pump=False))
