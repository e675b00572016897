"""The pump's end of the session layer: `PumpSecurity`, a sans-I/O state machine that answers
handshakes (HELLO -> CHALLENGE, CONFIRM -> SESSION_READY), keeps up to `max_sessions` sessions
and their replay windows, ends them (idle, lifetime, counter, superseded, evicted, host request,
re-key), locks handshakes out after repeated failures, and authorizes each request by role.
`receive` runs steps 2-8 of the receive pipeline (security.md 2.4) and returns a `Request` to act
on, a `Reply` to send, or a `Rejected` whose documented error reply changes nothing. Its limits
are `SessionPolicy`; the handshake itself is described in `_session.py`.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
from collections.abc import Mapping
from typing import Final

from ._channel import MAX_COUNTER, SessionInfo, _Channel
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
from ._fast import frozen_maker
from ._frame import BROADCAST_PUMP_ID, FLAG_AUTH, FLAG_FROM_PUMP, Frame, encode_frame
from ._keys import NONCE_SIZE, RandBytes, SecretKey, handshake_tags, session_keys, transcript
from ._messages import (
    MAX_DETAIL_BYTES,
    Challenge,
    Confirm,
    EndSession,
    Error,
    Hello,
    SessionEnded,
    SessionReady,
)
from ._schema import MESSAGES, Access, Direction, Message

# Members named on every frame's path, as module globals: on Python 3.11 a lookup through an
# enum class (`Access.OPEN`) goes through `EnumType.__getattr__`'s slow hook (about 130 ns).
_HOST_TO_PUMP: Final = Direction.HOST_TO_PUMP
_OPEN: Final = Access.OPEN
_CLINICIAN_ONLY: Final = Access.CLINICIAN
_CLINICIAN: Final = Role.CLINICIAN

RETIRED_SESSIONS: Final = 16  # ended sessions remembered to answer their late frames


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


# --- results of PumpSecurity.receive --------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """A frame that passed every session check: the application (the pump) acts on it."""

    message: Message
    frame: Frame
    session: SessionInfo | None  # None for the few OPEN messages sent without a session


_make_request = frozen_maker(Request)  # Request(...), cheaper: one per frame


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

    @property
    def session_count(self) -> int:
        """How many sessions are open (without building their list)."""
        return len(self._sessions)

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
            # Frame's properties spelled out (from_pump, message_type, authenticated, decode):
            # this runs for every frame, and each property is a Python-level call.
            flags = frame.flags
            if flags & FLAG_FROM_PUMP:
                raise WrongDirection("a pump-to-host frame was sent to the pump")
            cls = MESSAGES[frame.msg_id]
            if cls.DIRECTION is not _HOST_TO_PUMP:
                raise WrongDirection(f"{cls.NAME} is sent by pumps, not to them")
            sealed = flags & FLAG_AUTH
            if frame.pump_id != self.pump_id and not (
                frame.pump_id == BROADCAST_PUMP_ID and cls.BROADCAST_OK and not sealed
            ):
                raise WrongPump(
                    f"frame addressed to pump {frame.pump_id}, this is pump {self.pump_id}"
                )
            if sealed:
                channel = self._verify(frame, now_ms)
            elif cls.ACCESS is not _OPEN:
                raise NotAuthenticated(f"{cls.NAME} needs an authenticated session")
            message = cls._decode(frame.payload)
            if isinstance(message, Hello):
                return self._hello(message, frame, now_ms)
            if isinstance(message, Confirm):
                return self._confirm(message, frame, now_ms)
            info = channel.info if channel else None
            if channel is not None:
                if cls.ACCESS is _CLINICIAN_ONLY and channel.role is not _CLINICIAN:
                    self._authorize(cls, channel.role)  # raises RoleForbidden
                if isinstance(message, EndSession):
                    self._end(channel, SessionEndReason.HOST_REQUEST)
                    data = channel.seal(
                        SessionEnded(reason=SessionEndReason.HOST_REQUEST),
                        pump_id=self.pump_id,
                        seq=frame.seq,
                        from_pump=True,
                    )
                    return Reply(data, "session_ended", info)
            return _make_request(message, frame, info)
        except ProtocolError as exc:
            sealer = (
                channel if channel is not None and channel.session_id in self._sessions else None
            )
            if (
                sealer is None
                and frame.authenticated
                and not isinstance(exc, Replayed | AuthFailed)
            ):
                sealer = self._attribute(frame)
            return Rejected(exc, frame, self._error_reply(exc, frame, sealer, message))

    def reply(self, request: Request, message: Message) -> bytes:
        """Encode the answer to `request`: sealed in its session, echoing its seq."""
        if request.session is not None:
            channel = self._sessions.get(request.session.session_id)
            if channel is None:
                raise SessionExpired("the request's session ended before the reply was sent")
            return channel.seal_reply(message, self.pump_id, request.frame.seq)
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

    def _attribute(self, frame: Frame) -> _Channel | None:
        """The session whose key the refused sealed `frame` verifies under: a live one, or one
        of the last RETIRED_SESSIONS ended ones (its late frames are told SESSION_EXPIRED in it).
        The refusal is then sealed in that session (protocol.md section 10): only the pump can
        produce it, so a host never has to believe a plain error about its session."""
        channel = self._sessions.get(frame.session_id)
        if channel is None:
            retired = self._retired.get(frame.session_id)
            channel = retired[0] if retired is not None else None
        return channel if channel is not None and channel.authentic(frame) else None

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
        pol = self.policy
        reason = (  # _expired, with its common answer (None) found without a call
            self._expired(channel, now_ms)
            if now_ms - channel.created_ms > pol.max_lifetime_ms
            or now_ms - channel.last_ms > pol.idle_timeout_ms
            or channel.send_counter >= pol.max_counter
            or channel.window.highest >= pol.max_counter
            else None
        )
        if reason is not None:
            self._end(channel, reason)
            if not channel.authentic(frame):
                raise AuthFailed("authentication failed")
            raise SessionExpired(
                f"the session ended ({reason.name.lower().replace('_', ' ')}): run a new handshake"
            )
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
        sealer: _Channel | None,
        message: Message | None,
    ) -> bytes | None:
        """The refusal, sealed in `sealer` (the session the frame is attributed to) or plain
        when no session can be named (protocol.md section 10 lists those cases)."""
        if exc.silent:
            return None
        err = _error_message(exc.code, exc.detail, frame, message)
        if sealer is not None:
            try:
                return sealer.seal(err, pump_id=self.pump_id, seq=frame.seq, from_pump=True)
            except SessionExpired:
                pass  # its counter is spent: nothing more can be sealed in it
        return encode_frame(err, pump_id=self.pump_id, seq=frame.seq, from_pump=True)


def _error_message(code: ErrorCode, detail: str, frame: Frame, message: Message | None) -> Error:
    cid = getattr(message, "command_id", None)
    raw = detail.encode("utf-8")[:MAX_DETAIL_BYTES].decode("utf-8", "ignore")
    return Error(
        code=code,
        request_msg_id=frame.msg_id,
        command_id=cid if isinstance(cid, bytes) else bytes(16),
        detail=raw,
    )
