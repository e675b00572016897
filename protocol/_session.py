"""Authenticated sessions (security.md 2.4) as sans-I/O state machines for both ends.

Theory of operation
-------------------
Each pump holds one independent 32-byte key per role. A host proves it holds the role key,
and the pump proves the same, in a three-message handshake:

    HELLO     host -> pump   host_id, role, nonce_H                       (plain)
    CHALLENGE pump -> host   session_id, nonce_P, tag_P                   (plain)
    CONFIRM   host -> pump   session_id, tag_H                            (plain)
    SESSION_READY pump -> host  role, timeouts                            (first sealed frame)

    transcript = host_id(u32) || role(u8) || nonce_H || pump_id(u32) || session_id(u32) || nonce_P
    tag_P = HMAC-SHA256(K_role, "P" || transcript)[:16]
    tag_H = HMAC-SHA256(K_role, "H" || transcript)[:16]
    k_h2p || k_p2h = HKDF-SHA256(IKM=K_role, salt=nonce_H || nonce_P,
                                 info="itp1" || session_id(u32) || role(u8), L=64)

Every later frame carries session_id, a per-direction counter and a 16-byte tag. The receiver:
looks the session up, pre-checks the counter against a 64-frame replay window (RFC 4303),
verifies the tag in constant time, and only then moves the window. A forged frame therefore
never changes any state, not even the replay window.

Nothing here reads a clock or global randomness: time (`now_ms`, any monotonic millisecond
count) and randomness (`randbytes(n)`) are handed in, so every run can be replayed exactly.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from ._enums import Role, SessionEndReason
from ._errors import (
    AuthFailed,
    ErrorCode,
    HandshakeFailed,
    HandshakeLocked,
    NotAuthenticated,
    ProtocolError,
    Replayed,
    RoleForbidden,
    SessionExpired,
    WrongDirection,
    WrongPump,
)
from ._frame import BROADCAST_PUMP_ID, TAG_SIZE, Frame, encode_frame, seal_frame
from ._messages import (
    Challenge,
    Confirm,
    EndSession,
    Error,
    Hello,
    SessionEnded,
    SessionReady,
)
from ._schema import Access, Direction, Message

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 16
HKDF_INFO_PREFIX: Final = b"itp1"
REPLAY_WINDOW: Final = 64
MAX_COUNTER: Final = 0xFFFF_FFFF
RETIRED_SESSIONS: Final = 16  # ended sessions remembered to answer their late frames

RandBytes = Callable[[int], bytes]


class SecretKey:
    """A 32-byte role key. Never shown: repr and str give only a short fingerprint."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
            raise ValueError(f"a role key is exactly {KEY_SIZE} bytes")
        self._key = bytes(key)

    @classmethod
    def from_hex(cls, text: str) -> SecretKey:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("a role key is 64 hexadecimal digits") from None
        return cls(raw)

    def to_hex(self) -> str:
        """For writing the 0600 key file only. Never log the result."""
        return self._key.hex()

    @property
    def fingerprint(self) -> str:
        """8 hex digits identifying the key without revealing it (for 'wrong key?' messages)."""
        return hashlib.sha256(b"itp1 key fingerprint" + self._key).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"SecretKey(fingerprint={self.fingerprint})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> Any:
        raise TypeError("role keys are not picklable: store them with to_hex() in a 0600 file")


def key_from_file(text: str, mode: int, name: str) -> SecretKey:
    """Parse a role-key file: 64 hexadecimal characters (surrounding whitespace ignored). A
    file that group or others may access (`mode` from stat) is refused, as ssh does. Pure: the
    caller reads the file and its mode. Raises ValueError with a message naming `name`."""
    if mode & 0o077:
        raise ValueError(f"key file {name} is accessible by others: chmod 600 it")
    try:
        return SecretKey.from_hex(text.strip())
    except ValueError:
        raise ValueError(f"key file {name} must hold 64 hexadecimal characters") from None


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869) with SHA-256."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF length out of range")
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    okm, block, i = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes((i,)), "sha256")
        okm += block
        i += 1
    return okm[:length]


_TRANSCRIPT = struct.Struct("<IB16sII16s")


def transcript(
    host_id: int, role: Role, nonce_h: bytes, pump_id: int, session_id: int, nonce_p: bytes
) -> bytes:
    return _TRANSCRIPT.pack(host_id, role, nonce_h, pump_id, session_id, nonce_p)


def handshake_tags(key: SecretKey, transcript_bytes: bytes) -> tuple[bytes, bytes]:
    """(tag_P, tag_H) for a transcript."""
    k = key._key
    return (
        hmac.digest(k, b"P" + transcript_bytes, "sha256")[:TAG_SIZE],
        hmac.digest(k, b"H" + transcript_bytes, "sha256")[:TAG_SIZE],
    )


def session_keys(
    key: SecretKey, nonce_h: bytes, nonce_p: bytes, session_id: int, role: Role
) -> tuple[bytes, bytes]:
    """(k_h2p, k_p2h): one key per direction, so a frame cannot be reflected back."""
    info = HKDF_INFO_PREFIX + struct.pack("<IB", session_id, role)
    okm = hkdf_sha256(key._key, nonce_h + nonce_p, info, 64)
    return okm[:32], okm[32:]


class ReplayWindow:
    """RFC 4303 anti-replay window: highest accepted counter plus a 64-bit bitmap.

    `check` never changes anything; `commit` is called only after the frame's tag verified.
    """

    __slots__ = ("bitmap", "highest")

    def __init__(self) -> None:
        self.highest = 0
        self.bitmap = 0  # bit k set: counter (highest - k) was accepted

    def check(self, counter: int) -> None:
        if counter == 0:
            raise Replayed("counter 0 is never valid")
        if counter > self.highest:
            return
        offset = self.highest - counter
        if offset >= REPLAY_WINDOW:
            raise Replayed(f"counter {counter} is older than the replay window")
        if self.bitmap >> offset & 1:
            raise Replayed(f"counter {counter} was already accepted")

    def commit(self, counter: int) -> None:
        if counter > self.highest:
            shift = counter - self.highest
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << REPLAY_WINDOW) - 1)
            self.highest = counter
        else:
            self.bitmap |= 1 << (self.highest - counter)


@dataclasses.dataclass(frozen=True)
class SessionPolicy:
    """Limits of the pump's session manager (security.md 2.4)."""

    idle_timeout_ms: int = 10 * 60_000
    max_lifetime_ms: int = 60 * 60_000
    handshake_timeout_ms: int = 10_000
    max_sessions: int = 4
    max_pending_handshakes: int = 4
    lockout_threshold: int = 5  # failed handshakes ...
    lockout_window_ms: int = 60_000  # ... within this window lock new handshakes
    lockout_base_ms: int = 60_000  # first lockout; doubles on each repeat
    lockout_max_ms: int = 16 * 60_000
    max_counter: int = MAX_COUNTER


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
    """HMAC-SHA256 keyed once. The OpenSSL object underneath the stdlib wrapper, when there is
    one, copies and digests without a Python-level layer: about 0.5 us less per frame."""
    wrapper = hmac.new(key, digestmod=hashlib.sha256)
    inner: Mac = getattr(wrapper, "_hmac", None) or wrapper
    return inner


class _Channel:
    """One session's keys, counters and window, as held by one end."""

    __slots__ = (
        "confirm_tag",
        "created_ms",
        "host_id",
        "info",
        "last_ms",
        "recv_mac",
        "role",
        "send_counter",
        "send_mac",
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
        self.send_mac = keyed_mac(send_key)
        self.recv_mac = keyed_mac(recv_key)
        self.info = SessionInfo(session_id, role)
        self.send_counter = 0
        self.window = ReplayWindow()
        self.created_ms = now_ms
        self.last_ms = now_ms

    def authentic(self, frame: Frame) -> bool:
        """The frame's tag verifies under this channel's receive key (constant time)."""
        h = self.recv_mac.copy()
        h.update(frame.mac_input)
        return hmac.compare_digest(h.digest()[:TAG_SIZE], frame.tag)

    def verify(self, frame: Frame) -> None:
        """Replay pre-check, constant-time tag check, then (only then) move the window."""
        self.window.check(frame.counter)
        if not self.authentic(frame):
            raise AuthFailed("authentication failed")
        self.window.commit(frame.counter)

    def seal(self, message: Message, *, pump_id: int, seq: int, from_pump: bool) -> bytes:
        if self.send_counter >= MAX_COUNTER:
            raise SessionExpired("the session's frame counter is exhausted: run a new handshake")
        self.send_counter += 1
        return seal_frame(
            message,
            pump_id=pump_id,
            seq=seq,
            from_pump=from_pump,
            session_id=self.session_id,
            counter=self.send_counter,
            mac=self.send_mac,
        )


# --- results of PumpSecurity.receive --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    """A frame that passed every session check: the application (the pump) acts on it."""

    message: Message
    frame: Frame
    session: SessionInfo | None  # None for the few OPEN messages sent without a session


@dataclasses.dataclass(frozen=True)
class Reply:
    """The session layer handled the frame itself (handshake, end of session): send `data`."""

    data: bytes
    what: str  # "challenge", "session_ready", "session_ended"
    session: SessionInfo | None = None


@dataclasses.dataclass(frozen=True)
class Rejected:
    """The frame was refused and nothing changed. Send `reply` unless it is None (silent)."""

    error: ProtocolError
    frame: Frame
    reply: bytes | None

    @property
    def security_event(self) -> bool:
        return self.error.security_event


Inbound = Request | Reply | Rejected


@dataclasses.dataclass
class _Pending:
    host_id: int
    role: Role
    nonce_h: bytes
    nonce_p: bytes
    created_ms: int


class PumpSecurity:
    """The pump's side: handshakes, sessions, frame verification and authorization.

    `receive(frame, now_ms)` runs steps 2-8 of the receive pipeline (security.md 2.4) and returns
    a `Request` to act on, a `Reply` to send, or a `Rejected` with its documented error reply.
    """

    def __init__(
        self,
        pump_id: int,
        keys: Mapping[Role, SecretKey],
        randbytes: RandBytes,
        policy: SessionPolicy | None = None,
    ) -> None:
        if not 0 < pump_id < BROADCAST_PUMP_ID:
            raise ValueError("pump_id must be 1..0xFFFFFFFE")
        self.pump_id = pump_id
        self._keys = dict(keys)
        self._rand = randbytes
        self.policy = policy or SessionPolicy()
        self._sessions: dict[int, _Channel] = {}
        self._pending: collections.OrderedDict[int, _Pending] = collections.OrderedDict()
        self._failures: collections.deque[int] = collections.deque()
        self._locked_until = 0
        self._next_lockout_ms = self.policy.lockout_base_ms
        self._ended: list[tuple[SessionInfo, SessionEndReason]] = []
        # Recently ended sessions, kept so that their host's late frames are told
        # SESSION_EXPIRED ("run a new handshake") rather than AUTH_FAILED (and not logged as
        # an attack). Only frames whose tag verifies are told so.
        self._retired: collections.OrderedDict[int, tuple[_Channel, SessionEndReason]] = (
            collections.OrderedDict()
        )

    # -- public API ------------------------------------------------------------------------

    @property
    def sessions(self) -> list[SessionInfo]:
        return [SessionInfo(s.session_id, s.role) for s in self._sessions.values()]

    def locked_until(self) -> int:
        """now_ms value until which new handshakes are refused (0 = not locked)."""
        return self._locked_until

    def rekey(self, keys: Mapping[Role, SecretKey]) -> list[SessionInfo]:
        """Install new role keys; every session and pending handshake ends."""
        self._keys = dict(keys)
        return self.end_all(SessionEndReason.REKEY)

    def end_all(
        self, reason: SessionEndReason = SessionEndReason.PUMP_RESTART
    ) -> list[SessionInfo]:
        ended = self.sessions
        self._ended.extend((info, reason) for info in ended)
        self._sessions.clear()
        self._retired.clear()  # a restart forgets, and new keys make old sessions meaningless
        self._pending.clear()
        return ended

    def drain_ended(self) -> list[tuple[SessionInfo, SessionEndReason]]:
        """Every session that ended since the last call, and why (for the pump's event log)."""
        out, self._ended = self._ended, []
        return out

    def _end(self, channel: _Channel, reason: SessionEndReason) -> None:
        del self._sessions[channel.session_id]
        self._ended.append((channel.info, reason))
        self._retired[channel.session_id] = (channel, reason)
        while len(self._retired) > RETIRED_SESSIONS:
            self._retired.popitem(last=False)

    def expire(self, now_ms: int) -> list[SessionInfo]:
        """End idle and over-age sessions and stale handshakes; returns the sessions ended."""
        ended = []
        for s in list(self._sessions.values()):
            reason = self._expired(s, now_ms)
            if reason is not None:
                self._end(s, reason)
                ended.append(s.info)
        for sid, p in list(self._pending.items()):
            if now_ms - p.created_ms > self.policy.handshake_timeout_ms:
                del self._pending[sid]
        return ended

    def receive(self, frame: Frame, now_ms: int) -> Inbound:
        channel: _Channel | None = None
        message: Message | None = None
        try:
            if frame.from_pump:
                raise WrongDirection("a pump-to-host frame was sent to the pump")
            cls = frame.message_type
            if cls.DIRECTION is not Direction.HOST_TO_PUMP:
                raise WrongDirection(f"{cls.NAME} is sent by pumps, not to them")
            if frame.pump_id != self.pump_id and not (
                frame.pump_id == BROADCAST_PUMP_ID and cls.BROADCAST_OK and not frame.authenticated
            ):
                raise WrongPump(
                    f"frame addressed to pump {frame.pump_id}, this is pump {self.pump_id}"
                )
            if frame.authenticated:
                channel = self._verify(frame, now_ms)
            elif cls.ACCESS is not Access.OPEN:
                raise NotAuthenticated(f"{cls.NAME} needs an authenticated session")
            message = frame.decode()
            if isinstance(message, Hello):
                return self._hello(message, frame, now_ms)
            if isinstance(message, Confirm):
                return self._confirm(message, frame, now_ms)
            info = channel.info if channel else None
            if channel is not None:
                self._authorize(cls, channel.role)
                if isinstance(message, EndSession):
                    self._end(channel, SessionEndReason.HOST_REQUEST)
                    data = channel.seal(
                        SessionEnded(reason=SessionEndReason.HOST_REQUEST),
                        pump_id=self.pump_id,
                        seq=frame.seq,
                        from_pump=True,
                    )
                    return Reply(data, "session_ended", info)
            return Request(message, frame, info)
        except ProtocolError as exc:
            return Rejected(exc, frame, self._error_reply(exc, frame, channel, message))

    def reply(self, request: Request, message: Message) -> bytes:
        """Encode the answer to `request`: sealed in its session, echoing its seq."""
        if request.session is not None:
            channel = self._sessions.get(request.session.session_id)
            if channel is None:
                raise SessionExpired("the request's session ended before the reply was sent")
            return channel.seal(
                message, pump_id=self.pump_id, seq=request.frame.seq, from_pump=True
            )
        return encode_frame(message, pump_id=self.pump_id, seq=request.frame.seq, from_pump=True)

    def error(self, request: Request, code: ErrorCode, detail: str) -> bytes:
        """An ERROR answer to `request` (for refusals decided by the pump model)."""
        return self.reply(request, _error_message(code, detail, request.frame, request.message))

    # -- internals -------------------------------------------------------------------------

    def _expired(self, s: _Channel, now_ms: int) -> SessionEndReason | None:
        p = self.policy
        if now_ms - s.created_ms > p.max_lifetime_ms:
            return SessionEndReason.LIFETIME
        if now_ms - s.last_ms > p.idle_timeout_ms:
            return SessionEndReason.IDLE_TIMEOUT
        if s.send_counter >= p.max_counter or s.window.highest >= p.max_counter:
            return SessionEndReason.COUNTER_EXHAUSTED
        return None

    def _verify(self, frame: Frame, now_ms: int) -> _Channel:
        channel = self._sessions.get(frame.session_id)
        if channel is None:
            retired = self._retired.get(frame.session_id)
            if retired is not None and retired[0].authentic(frame):
                raise SessionExpired(
                    f"the session ended ({retired[1].name.lower().replace('_', ' ')}): "
                    "run a new handshake"
                )
            raise AuthFailed("unknown session")
        reason = self._expired(channel, now_ms)
        if reason is not None:
            self._end(channel, reason)
            raise SessionExpired("the session expired: run a new handshake")
        channel.verify(frame)
        channel.last_ms = now_ms
        return channel

    @staticmethod
    def _authorize(msg_type: type[Message], role: Role) -> None:
        if msg_type.ACCESS is Access.CLINICIAN and role is not Role.CLINICIAN:
            raise RoleForbidden(f"{msg_type.NAME} needs a clinician session")

    def _check_lockout(self, now_ms: int) -> None:
        if now_ms < self._locked_until:
            raise HandshakeLocked(self._locked_until - now_ms)

    def _fail(self, now_ms: int, reason: str) -> HandshakeFailed:
        p = self.policy
        self._failures.append(now_ms)
        while self._failures and now_ms - self._failures[0] >= p.lockout_window_ms:
            self._failures.popleft()
        if len(self._failures) >= p.lockout_threshold:
            self._locked_until = now_ms + self._next_lockout_ms
            self._next_lockout_ms = min(self._next_lockout_ms * 2, p.lockout_max_ms)
            self._failures.clear()
            self._pending.clear()
        return HandshakeFailed(reason)

    def _hello(self, hello: Hello, frame: Frame, now_ms: int) -> Inbound:
        self._check_lockout(now_ms)
        self.expire(now_ms)
        key = self._keys.get(hello.role)
        if key is None:
            raise self._fail(now_ms, f"this pump has no {hello.role.name.lower()} key")
        session_id = 0
        while session_id == 0 or session_id in self._sessions or session_id in self._pending:
            session_id = int.from_bytes(self._rand(4), "little")
        nonce_p = self._rand(NONCE_SIZE)
        while len(self._pending) >= self.policy.max_pending_handshakes:
            self._pending.popitem(last=False)
        self._pending[session_id] = _Pending(
            hello.host_id, hello.role, hello.nonce, nonce_p, now_ms
        )
        t = transcript(hello.host_id, hello.role, hello.nonce, self.pump_id, session_id, nonce_p)
        tag_p, _ = handshake_tags(key, t)
        data = encode_frame(
            Challenge(session_id=session_id, nonce=nonce_p, tag=tag_p),
            pump_id=self.pump_id,
            seq=frame.seq,
            from_pump=True,
        )
        return Reply(data, "challenge")

    def _confirm(self, confirm: Confirm, frame: Frame, now_ms: int) -> Inbound:
        self._check_lockout(now_ms)
        pending = self._pending.pop(confirm.session_id, None)
        if pending is None:
            opened = self._sessions.get(confirm.session_id)
            if opened is not None and hmac.compare_digest(opened.confirm_tag, confirm.tag):
                # The CONFIRM that opened this session, again: a network duplicate or the host's
                # retry after a lost SESSION_READY. Not a failed handshake: answer it again.
                return Reply(self._ready(opened, frame), "session_ready_again", opened.info)
        if pending is None or now_ms - pending.created_ms > self.policy.handshake_timeout_ms:
            raise self._fail(now_ms, "no such handshake in progress (or it timed out)")
        key = self._keys.get(pending.role)
        if key is None:  # re-keyed meanwhile
            raise self._fail(now_ms, "the role key changed during the handshake")
        t = transcript(
            pending.host_id,
            pending.role,
            pending.nonce_h,
            self.pump_id,
            confirm.session_id,
            pending.nonce_p,
        )
        _, tag_h = handshake_tags(key, t)
        if not hmac.compare_digest(tag_h, confirm.tag):
            raise self._fail(now_ms, "handshake tag did not verify")
        self._next_lockout_ms = self.policy.lockout_base_ms
        k_h2p, k_p2h = session_keys(
            key, pending.nonce_h, pending.nonce_p, confirm.session_id, pending.role
        )
        channel = _Channel(confirm.session_id, pending.role, k_p2h, k_h2p, now_ms, pending.host_id)
        # The host's older sessions end: nothing a dead host process left in flight can be
        # applied after its successor asked GET_COMMAND_STATUS (protocol.md sections 5 and 8).
        for s in list(self._sessions.values()):
            if s.host_id == pending.host_id and s.role is pending.role:
                self._end(s, SessionEndReason.SUPERSEDED)
        while len(self._sessions) >= self.policy.max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.last_ms)
            self._end(oldest, SessionEndReason.EVICTED)
        channel.confirm_tag = confirm.tag
        self._sessions[confirm.session_id] = channel
        return Reply(self._ready(channel, frame), "session_ready", channel.info)

    def _ready(self, channel: _Channel, frame: Frame) -> bytes:
        ready = SessionReady(
            role=channel.role,
            idle_timeout_ms=self.policy.idle_timeout_ms,
            max_lifetime_ms=self.policy.max_lifetime_ms,
        )
        return channel.seal(ready, pump_id=self.pump_id, seq=frame.seq, from_pump=True)

    def _error_reply(
        self,
        exc: ProtocolError,
        frame: Frame,
        channel: _Channel | None,
        message: Message | None,
    ) -> bytes | None:
        if exc.silent:
            return None
        err = _error_message(exc.code, exc.detail, frame, message)
        if channel is not None and channel.session_id in self._sessions:
            return channel.seal(err, pump_id=self.pump_id, seq=frame.seq, from_pump=True)
        return encode_frame(err, pump_id=self.pump_id, seq=frame.seq, from_pump=True)


def _error_message(code: ErrorCode, detail: str, frame: Frame, message: Message | None) -> Error:
    cid = getattr(message, "command_id", None)
    raw = detail.encode("utf-8")[:200].decode("utf-8", "ignore")
    return Error(
        code=code,
        request_msg_id=frame.msg_id,
        command_id=cid if isinstance(cid, bytes) else bytes(16),
        detail=raw,
    )


# --- host side ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Send:
    """The host must send `data` (the CONFIRM of a handshake)."""

    data: bytes


@dataclasses.dataclass(frozen=True)
class Established:
    """The handshake completed: sealed commands may be sent."""

    session: SessionInfo
    ready: SessionReady


@dataclasses.dataclass(frozen=True)
class Response:
    """A message from the pump that passed every check."""

    message: Message
    frame: Frame


HostEvent = Send | Established | Response


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
        if message.DIRECTION is not Direction.HOST_TO_PUMP:
            raise WrongDirection(f"{message.NAME} is a pump-to-host message")
        return self._channel.seal(message, pump_id=self.pump_id, seq=seq, from_pump=False)

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
        if not frame.from_pump:
            raise WrongDirection("a host-to-pump frame was received by the host")
        if frame.pump_id != self.pump_id:
            raise WrongPump(f"frame from pump {frame.pump_id}, expected {self.pump_id}")
        cls = frame.message_type
        if cls.DIRECTION is not Direction.PUMP_TO_HOST:
            raise WrongDirection(f"{cls.NAME} is sent to pumps, not by them")
        if not frame.authenticated:
            if cls.ACCESS is not Access.OPEN:
                raise NotAuthenticated(f"a plain {cls.NAME} is a forgery: pumps seal it")
            message = frame.decode()
            if isinstance(message, Challenge):
                return self._challenge(message)
            return Response(message, frame)
        channel = self._channel
        if channel is None and self._pending is not None and self._pending[0] == frame.session_id:
            channel = self._pending[1]
        if channel is None or channel.session_id != frame.session_id:
            raise AuthFailed("frame from an unknown session")
        channel.verify(frame)
        message = frame.decode()
        if isinstance(message, SessionReady):
            if self._channel is None:
                self._channel, self._pending = channel, None
            return Established(channel.info, message)
        if self._channel is None:
            raise AuthFailed("session not yet established")
        if isinstance(message, SessionEnded):
            self._channel = None
        return Response(message, frame)

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
        seq = (self._hello_seq + 1) & 0xFFFF
        return Send(encode_frame(confirm, pump_id=self.pump_id, seq=seq, from_pump=False))
