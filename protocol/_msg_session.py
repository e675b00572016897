"""Catalogue, session part (ids 0x0001-0x000F): the handshake messages (HELLO, CHALLENGE,
CONFIRM, SESSION_READY), ending a session, and ERROR, the refusal any request may get. The
session layer that sends and checks them is `_pump_session.py` / `_host_session.py`; the
derivation of their tags and keys is in `_keys.py`. Part of the catalogue assembled in
`_messages.py`.
"""

from __future__ import annotations

from ._enums import Role, SessionEndReason
from ._errors import ErrorCode
from ._msg_records import H2P, MAX_DETAIL_BYTES, P2H
from ._schema import Access, CommandKind, Message, blob, enum8, enum16, message, text, u16, u32


@message(
    0x0001,
    direction=H2P,
    access=Access.OPEN,
    kind=CommandKind.SESSION,
    responses=("CHALLENGE", "ERROR"),
)
class Hello(Message):
    """Opens a handshake. Sent unauthenticated to the pump's exact serial number."""

    host_id: int = u32("Identifier the host chooses for itself (logged by the pump).")
    role: Role = enum8(Role, "The role whose key the host holds.")
    nonce: bytes = blob(16, "nonce_H: 16 fresh random bytes from the host.")


@message(0x0002, direction=P2H, access=Access.OPEN, kind=CommandKind.SESSION)
class Challenge(Message):
    """The pump's half of the handshake: proves it holds the role key."""

    session_id: int = u32("Session id chosen by the pump (random, non-zero).", min=1)
    nonce: bytes = blob(16, "nonce_P: 16 fresh random bytes from the pump.")
    tag: bytes = blob(16, "tag_P = HMAC-SHA256(K_role, 'P' || transcript)[:16].")


@message(
    0x0003,
    direction=H2P,
    access=Access.OPEN,
    kind=CommandKind.SESSION,
    responses=("SESSION_READY", "ERROR"),
)
class Confirm(Message):
    """The host's proof that it holds the role key; completes the handshake."""

    session_id: int = u32("The session id from CHALLENGE.", min=1)
    tag: bytes = blob(16, "tag_H = HMAC-SHA256(K_role, 'H' || transcript)[:16].")


@message(0x0004, direction=P2H, access=Access.SESSION, kind=CommandKind.SESSION)
class SessionReady(Message):
    """First authenticated frame of a session (pump counter 1): the keys match."""

    role: Role = enum8(Role, "The session's role.")
    idle_timeout_ms: int = u32("The session ends after this long without a valid frame.", unit="ms")
    max_lifetime_ms: int = u32("The session ends this long after the handshake.", unit="ms")


@message(
    0x0005,
    direction=H2P,
    access=Access.SESSION,
    kind=CommandKind.SESSION,
    responses=("SESSION_ENDED",),
)
class EndSession(Message):
    """Ends the session; its keys are forgotten by both ends."""


@message(0x0006, direction=P2H, access=Access.SESSION, kind=CommandKind.SESSION)
class SessionEnded(Message):
    """The session is over (answer to END_SESSION)."""

    reason: SessionEndReason = enum8(SessionEndReason, "Why the session ended.")


@message(0x000F, direction=P2H, access=Access.OPEN, kind=CommandKind.RESPONSE)
class Error(Message):
    """The request was refused; nothing was changed. Authenticated when the request's session
    was valid, otherwise plain."""

    code: ErrorCode = enum16(ErrorCode, "What went wrong (see the error table).")
    request_msg_id: int = u16("Message id of the refused request (0 if unknown).")
    command_id: bytes = blob(16, "The refused command's id; zeros if it had none.")
    detail: str = text(MAX_DETAIL_BYTES, "What to do about it, for a person to read.")
