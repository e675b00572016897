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

Where it lives: `_keys.py` (role keys, HKDF, transcript, tags, session keys), `_replay.py` (the
replay window), `_channel.py` (one session's keys, counters and window, as held by one end),
`_pump_session.py` (`PumpSecurity`, the pump's session manager and receive pipeline) and
`_host_session.py` (`HostSecurity`, the host's end). This module gathers their names.
"""

from __future__ import annotations

from ._channel import MAX_COUNTER, Mac, SessionInfo, Tagger, _Channel, hmac_sha256, keyed_mac
from ._host_session import Established, HostEvent, HostSecurity, Response, Send, Unsealed
from ._keys import (
    HKDF_INFO_PREFIX,
    KEY_SIZE,
    NONCE_SIZE,
    RandBytes,
    SecretKey,
    handshake_tags,
    hkdf_sha256,
    key_from_file,
    session_keys,
    transcript,
)
from ._pump_session import (
    RETIRED_SESSIONS,
    Inbound,
    PumpSecurity,
    Rejected,
    Reply,
    Request,
    SessionPolicy,
)
from ._replay import REPLAY_WINDOW, ReplayWindow

__all__ = [
    "HKDF_INFO_PREFIX",
    "KEY_SIZE",
    "MAX_COUNTER",
    "NONCE_SIZE",
    "REPLAY_WINDOW",
    "RETIRED_SESSIONS",
    "Established",
    "HostEvent",
    "HostSecurity",
    "Inbound",
    "Mac",
    "PumpSecurity",
    "RandBytes",
    "Rejected",
    "ReplayWindow",
    "Reply",
    "Request",
    "Response",
    "SecretKey",
    "Send",
    "SessionInfo",
    "SessionPolicy",
    "Tagger",
    "Unsealed",
    "_Channel",
    "handshake_tags",
    "hkdf_sha256",
    "hmac_sha256",
    "key_from_file",
    "keyed_mac",
    "session_keys",
    "transcript",
]
