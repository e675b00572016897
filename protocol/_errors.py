"""Error codes of protocol v1 and the exception hierarchy that carries them.

Every rejection anywhere in the stack maps to one documented `ErrorCode`; docs/protocol.md's
error table is generated from `ERROR_INFO` below, so the code list and the docs cannot drift.
"""

from __future__ import annotations

import enum
from typing import ClassVar, NamedTuple


class ErrorCode(enum.IntEnum):
    """Wire value of the `code` field of an ERROR message (u16)."""

    MALFORMED = 1
    UNKNOWN_MESSAGE = 2
    UNSUPPORTED_VERSION = 3
    WRONG_PUMP = 4
    NOT_AUTHENTICATED = 5
    AUTH_FAILED = 6
    REPLAYED = 7
    ROLE_FORBIDDEN = 8
    SESSION_EXPIRED = 9
    HANDSHAKE_FAILED = 10
    HANDSHAKE_LOCKED = 11
    WRONG_DIRECTION = 12
    PROGRAM_VERSION_MISMATCH = 20
    IDEMPOTENCY_MISMATCH = 21
    HARD_LIMIT = 30
    SOFT_LIMIT_UNCONFIRMED = 31
    RATE_OUT_OF_RANGE = 32
    ALARM_ACTIVE = 33
    BOLUS_LOCKOUT = 34
    BOLUS_CAP_REACHED = 35
    BOLUS_DISABLED = 36
    INVALID_STATE = 37
    MODE_NOT_SUPPORTED = 38
    INSUFFICIENT_VOLUME = 39
    INVALID_VALUE = 40
    DRUG_NOT_ALLOWED = 41
    PUMP_STOPPED = 42
    BUSY = 43
    STORAGE_FAILURE = 50
    INTERNAL = 51


class ErrorInfo(NamedTuple):
    meaning: str
    action: str
    sent: str  # "reply", "silent" or "local" (never on the wire)


ERROR_INFO: dict[ErrorCode, ErrorInfo] = {
    ErrorCode.MALFORMED: ErrorInfo(
        "The payload does not match the message's declared layout: wrong size, a value outside "
        "its documented range, an unknown enum value or flag bit, invalid UTF-8.",
        "Fix the encoder; the detail names the field and its allowed range.",
        "reply",
    ),
    ErrorCode.UNKNOWN_MESSAGE: ErrorInfo(
        "The message id is not in this peer's catalogue (a newer or older peer).",
        "Read DEVICE_INFO for the pump's protocol version and use only its messages.",
        "reply",
    ),
    ErrorCode.UNSUPPORTED_VERSION: ErrorInfo(
        "The frame's protocol major version is not spoken by this peer.",
        "Speak the major version given in the detail.",
        "reply",
    ),
    ErrorCode.WRONG_PUMP: ErrorInfo(
        "The frame is addressed to another pump's serial number.",
        "Check the pump serial: programming the wrong patient's pump is refused.",
        "reply",
    ),
    ErrorCode.NOT_AUTHENTICATED: ErrorInfo(
        "The message needs an authenticated session and the frame carries none.",
        "Run the handshake (HELLO, CHALLENGE, CONFIRM) first.",
        "reply",
    ),
    ErrorCode.AUTH_FAILED: ErrorInfo(
        "Unknown session id or wrong authentication tag. Deliberately generic.",
        "Start a new handshake; if it keeps failing, the key is wrong.",
        "reply",
    ),
    ErrorCode.REPLAYED: ErrorInfo(
        "The frame's counter was already accepted or is older than the replay window.",
        "Never resend a sealed frame: reseal the command (same command id, new counter).",
        "silent",
    ),
    ErrorCode.ROLE_FORBIDDEN: ErrorInfo(
        "The session's role may not send this message (see the authorization matrix).",
        "Open a session with the clinician key for therapy changes.",
        "reply",
    ),
    ErrorCode.SESSION_EXPIRED: ErrorInfo(
        "The session ended: idle or lifetime limit, counter exhausted, ended by the host, "
        "evicted, superseded by the same host's new session (the detail says which).",
        "Run a new handshake and resend the command with the same command id.",
        "reply",
    ),
    ErrorCode.HANDSHAKE_FAILED: ErrorInfo(
        "The CONFIRM tag did not verify, or the handshake was unknown or timed out.",
        "Check the role key; each failure counts towards the handshake lockout.",
        "reply",
    ),
    ErrorCode.HANDSHAKE_LOCKED: ErrorInfo(
        "Too many failed handshakes: new handshakes are refused for a while. Delivery and "
        "existing sessions are not affected.",
        "Wait the number of milliseconds given in the detail, then check the key.",
        "reply",
    ),
    ErrorCode.WRONG_DIRECTION: ErrorInfo(
        "A pump-to-host message was sent to the pump, or the direction flag is wrong.",
        "Send only host-to-pump messages to the pump.",
        "reply",
    ),
    ErrorCode.PROGRAM_VERSION_MISMATCH: ErrorInfo(
        "expected_program_version differs from the pump's program version: someone else "
        "changed the program since you read it.",
        "Interrogate again, review the new settings, and prepare the change anew.",
        "reply",
    ),
    ErrorCode.IDEMPOTENCY_MISMATCH: ErrorInfo(
        "This command id was already used for a command with different content.",
        "Use a fresh command id for every new command; reuse it only for retries.",
        "reply",
    ),
    ErrorCode.HARD_LIMIT: ErrorInfo(
        "The dose is beyond the drug library's hard limit. It cannot be overridden.",
        "Choose a dose within the limit given in the detail.",
        "reply",
    ),
    ErrorCode.SOFT_LIMIT_UNCONFIRMED: ErrorInfo(
        "The dose is beyond the drug library's soft limit and confirm_soft_limit was 0.",
        "Show the warning to the clinician; resend with confirm_soft_limit=1 if confirmed.",
        "reply",
    ),
    ErrorCode.RATE_OUT_OF_RANGE: ErrorInfo(
        "The resulting flow rate is outside the pump's rate range.",
        "Change the dose or the concentration; the detail gives the range.",
        "reply",
    ),
    ErrorCode.ALARM_ACTIVE: ErrorInfo(
        "A bolus was refused because a critical alarm is active.",
        "Resolve the alarm first (see ALARM_LIST).",
        "reply",
    ),
    ErrorCode.BOLUS_LOCKOUT: ErrorInfo(
        "Patient bolus requested inside the lockout interval. Not queued.",
        "Wait until the lockout ends (detail gives the remaining milliseconds).",
        "reply",
    ),
    ErrorCode.BOLUS_CAP_REACHED: ErrorInfo(
        "The maximum number of patient boluses in the sliding 24 h window is reached.",
        "No further bolus until the oldest one leaves the window.",
        "reply",
    ),
    ErrorCode.BOLUS_DISABLED: ErrorInfo(
        "Patient-activated bolus is disabled or not supported by this pump.",
        "A clinician must enable it with SET_PATIENT_BOLUS.",
        "reply",
    ),
    ErrorCode.INVALID_STATE: ErrorInfo(
        "The command does not apply in the pump's current state (e.g. cancel with no bolus "
        "running, resume when not suspended).",
        "Read STATUS and act on the current state.",
        "reply",
    ),
    ErrorCode.MODE_NOT_SUPPORTED: ErrorInfo(
        "This pump model does not support the requested mode (e.g. a schedule on a "
        "constant-flow pump).",
        "Check supported_modes in DEVICE_INFO.",
        "reply",
    ),
    ErrorCode.INSUFFICIENT_VOLUME: ErrorInfo(
        "The reservoir does not hold enough drug for the request.",
        "Refill the pump.",
        "reply",
    ),
    ErrorCode.INVALID_VALUE: ErrorInfo(
        "A value is well-formed but not acceptable for this pump (e.g. a refill above the "
        "reservoir capacity).",
        "Read the detail; it names the value and the acceptable range.",
        "reply",
    ),
    ErrorCode.DRUG_NOT_ALLOWED: ErrorInfo(
        "The drug does not allow this operation (e.g. patient bolus of baclofen).",
        "Review the drug and the therapy.",
        "reply",
    ),
    ErrorCode.PUMP_STOPPED: ErrorInfo(
        "The pump has reached end of service or a latched fault and refuses therapy changes.",
        "Replace the pump; read ALARM_LIST for the cause.",
        "reply",
    ),
    ErrorCode.BUSY: ErrorInfo(
        "The pump is in its power-on self test.",
        "Retry shortly with the same command id.",
        "reply",
    ),
    ErrorCode.STORAGE_FAILURE: ErrorInfo(
        "The pump could not persist the change; nothing was applied.",
        "Retry with the same command id; report if it persists.",
        "reply",
    ),
    ErrorCode.INTERNAL: ErrorInfo(
        "An internal error; nothing was applied. This is a bug.",
        "Report it with the pump's event log.",
        "reply",
    ),
}


class ProtocolError(Exception):
    """Base of every error raised (or yielded) by `protocol`. Carries a documented code."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    #: True when the failure must be recorded as a security event (tamper, replay, brute force).
    security_event: ClassVar[bool] = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def silent(self) -> bool:
        """Whether the spec says the pump sends no reply for this failure."""
        return ERROR_INFO[self.code].sent == "silent"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}: {self.detail})"


# --- stream decoding (framing); these are yielded by FrameDecoder, not raised ----------------


class DecodeError(ProtocolError):
    """A framing-level problem found by the stream decoder; the decoder has resynchronised."""

    code = ErrorCode.MALFORMED


class GarbageSkipped(DecodeError):
    """Bytes before a start marker that could not belong to any frame were discarded."""

    def __init__(self, count: int) -> None:
        super().__init__(f"skipped {count} byte(s) that are not part of a frame")
        self.count = count


class BadCrc(DecodeError):
    """CRC mismatch: line noise, a truncated frame, or a peer with another schema."""

    def __init__(self, msg_id: int, expected: int, found: int) -> None:
        super().__init__(
            f"CRC mismatch for message id 0x{msg_id:04X}: computed 0x{expected:04X}, "
            f"frame carries 0x{found:04X} (noise, truncation, or a different schema seed)"
        )
        self.msg_id = msg_id


class BadLength(DecodeError):
    """The length field is impossible for the message id (a lying or corrupt length)."""

    def __init__(self, msg_id: int, length: int, allowed: str) -> None:
        super().__init__(
            f"payload length {length} impossible for message id 0x{msg_id:04X} ({allowed})"
        )
        self.msg_id = msg_id
        self.length = length


class TruncatedFrame(DecodeError):
    """A frame candidate was abandoned because a complete, valid frame started inside it.
    `claimed`: the candidate's size by its length field; `available`: the bytes dropped with it
    (from its magic up to where hunting resumes)."""

    def __init__(self, claimed: int, available: int) -> None:
        super().__init__(
            f"frame candidate claimed {claimed} bytes but a valid frame starts after "
            f"{available}: treated as lost bytes"
        )
        self.claimed = claimed
        self.available = available


class UnsupportedVersion(DecodeError):
    code = ErrorCode.UNSUPPORTED_VERSION

    def __init__(self, version: int, supported: int) -> None:
        super().__init__(f"protocol major version {version} not supported; speak {supported}")
        self.version = version


class UnknownFlags(DecodeError):
    """Unknown or reserved flag bits are set: fail closed (MAVLink incompat-flags rule)."""

    def __init__(self, flags: int) -> None:
        super().__init__(f"unknown or reserved flag bits set: 0x{flags:02X}")
        self.flags = flags


class UnknownMessage(DecodeError):
    code = ErrorCode.UNKNOWN_MESSAGE

    def __init__(self, msg_id: int, seq: int, pump_id: int) -> None:
        super().__init__(f"message id 0x{msg_id:04X} is not in the protocol v1 catalogue")
        self.msg_id = msg_id
        self.seq = seq
        self.pump_id = pump_id


# --- message (payload) decoding and construction ----------------------------------------------


class MessageError(ProtocolError):
    """A payload or a message value that violates the declared schema."""

    code = ErrorCode.MALFORMED


class FieldValueError(MessageError, ValueError):
    """A field value outside its declared type, size or range (raised on build and decode)."""

    def __init__(self, message: str, field: str, reason: str) -> None:
        super().__init__(f"{message}.{field}: {reason}")
        self.message_name = message
        self.field = field


class PayloadSizeError(MessageError):
    def __init__(self, message: str, size: int, allowed: str) -> None:
        super().__init__(f"{message}: payload of {size} bytes, expected {allowed}")


# --- session / authentication --------------------------------------------------------------------


class AuthError(ProtocolError):
    """A frame that failed a session check. Nothing was changed."""

    code = ErrorCode.AUTH_FAILED
    security_event = True


class WrongPump(AuthError):
    code = ErrorCode.WRONG_PUMP


class WrongDirection(AuthError):
    code = ErrorCode.WRONG_DIRECTION


class NotAuthenticated(AuthError):
    code = ErrorCode.NOT_AUTHENTICATED


class AuthFailed(AuthError):
    code = ErrorCode.AUTH_FAILED


class Replayed(AuthError):
    code = ErrorCode.REPLAYED


class RoleForbidden(AuthError):
    code = ErrorCode.ROLE_FORBIDDEN


class SessionExpired(AuthError):
    code = ErrorCode.SESSION_EXPIRED
    security_event = False


class HandshakeFailed(AuthError):
    code = ErrorCode.HANDSHAKE_FAILED


class HandshakeLocked(AuthError):
    code = ErrorCode.HANDSHAKE_LOCKED

    def __init__(self, remaining_ms: int) -> None:
        super().__init__(f"handshakes locked for another {remaining_ms} ms")
        self.remaining_ms = remaining_ms
