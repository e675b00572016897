#!/usr/bin/env python3
"""Fuzz target: the pump's session layer (`PumpSecurity.receive`): handshake, verification,
replay window, authorization, session end.

Input: byte 0 chooses the set-up, bytes 1.. are a stream whose frames (decoded by
`FrameDecoder`) go to a fresh `PumpSecurity` with the fixed keys and randomness of _common.py.
  bits 0-1: handshakes replayed first: 0 none, 1 clinician, 2 clinician and patient,
            3 clinician and only the patient's HELLO (a handshake left pending)
  bits 2-3: the time the fuzzed frames arrive: 0 at once, 1 five seconds later, 2 after the
            handshake timeout, 3 after the session idle timeout
  bit 4:    a tight policy (few sessions, few pending handshakes, quick lockout, a frame
            counter that runs out after 8 frames) so that the limits are reachable
The seed corpus holds sealed frames of the fixed sessions, so the fuzzer mutates real ones.

Oracle, per frame: `receive` returns Request, Reply or Rejected and raises nothing; a rejection
carries a documented code, is silent exactly when the spec says so, and is sealed only inside a
session the frame really belongs to; an authenticated frame is accepted only if it is validly
sealed (checked independently with `hmac`), with the role the message needs; a frame that is
not validly sealed and completes no recorded handshake changes no session (ids, roles, replay
windows, counters, activity times), except that sessions past their time limits may end.

Run: .venv/bin/python fuzz/fuzz_session.py fuzz/corpus/session -max_total_time=600 (see README.md).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Any, NamedTuple

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    atheris: Any = importlib.import_module("atheris")
    _instrumented: Any = atheris.instrument_imports(include=["protocol"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    import protocol as p
    from fuzz._common import (
        PUMP_ID,
        Exchange,
        establish,
        handshake,
        instrument_codecs,
        only_frame,
        pump_security,
        sealed_role,
    )

NOW_MS = 10_000_000
DEFAULT = p.SessionPolicy()
TIGHT = p.SessionPolicy(
    max_sessions=2,
    max_pending_handshakes=1,
    lockout_threshold=2,
    lockout_base_ms=1_000,
    lockout_max_ms=4_000,
    max_counter=8,
)
DELAYS_MS = (0, 5_000, DEFAULT.handshake_timeout_ms + 1, DEFAULT.idle_timeout_ms + 1)

# The recorded handshakes: clinician first, then patient (the pump's randomness is consumed in
# this order, so each mode replays a prefix of it and gets the same session ids).
EXCHANGES, _ = handshake(pump_security(), (p.Role.CLINICIAN, p.Role.PATIENT), NOW_MS)
KNOWN = {ex.session_id: ex for ex in EXCHANGES}


class Channel(NamedTuple):
    """What the pump keeps about one session (everything a forged frame must not touch)."""

    role: p.Role
    host_id: int
    highest: int
    bitmap: int
    send_counter: int
    last_ms: int
    created_ms: int


Fingerprint = dict[int, Channel]


def fingerprint(pump: p.PumpSecurity) -> Fingerprint:
    return {
        sid: Channel(
            ch.role,
            ch.host_id,
            ch.window.highest,
            ch.window.bitmap,
            ch.send_counter,
            ch.last_ms,
            ch.created_ms,
        )
        for sid, ch in pump._sessions.items()
    }


def _expired(ch: Channel, policy: p.SessionPolicy, now_ms: int) -> bool:
    return (
        now_ms - ch.created_ms > policy.max_lifetime_ms
        or now_ms - ch.last_ms > policy.idle_timeout_ms
        or ch.send_counter >= policy.max_counter
        or ch.highest >= policy.max_counter
    )


def _unchanged_but_expired(
    before: Fingerprint, after: Fingerprint, policy: p.SessionPolicy, now_ms: int
) -> None:
    for sid, fp in after.items():
        assert before.get(sid) == fp, ("session changed", sid, before.get(sid), fp)
    for sid in before.keys() - after.keys():
        assert _expired(before[sid], policy, now_ms), ("session ended", sid, before[sid])


def _known(pump: p.PumpSecurity, session_id: int) -> bool:
    """The pump can still seal in this session: live, or one of its remembered ended ones."""
    return session_id in pump._sessions or session_id in pump._retired


def _check_reply(data: bytes, sealed: bool) -> None:
    reply = only_frame(data)
    assert reply.from_pump and reply.pump_id == PUMP_ID, reply
    assert reply.authenticated == sealed, (reply, sealed)


def _one_frame(pump: p.PumpSecurity, frame: p.Frame, now_ms: int, live: list[Exchange]) -> None:
    before = fingerprint(pump)
    role = sealed_role(frame, live)
    result = pump.receive(frame, now_ms)
    after = fingerprint(pump)
    if isinstance(result, p.Rejected):
        err = result.error
        assert isinstance(err, p.ProtocolError) and isinstance(err.code, p.ErrorCode), err
        assert (result.reply is None) == err.silent, result
        if result.reply is not None:
            # Sealed exactly when the frame verifies under the key of a session the pump still
            # knows, live or recently ended (protocol 1.1: protocol.md section 10).
            _check_reply(result.reply, sealed=role is not None and _known(pump, frame.session_id))
        if role is None:
            _unchanged_but_expired(before, after, pump.policy, now_ms)
        return
    if isinstance(result, p.Request):
        msg_type = type(result.message)
        assert msg_type is frame.message_type, result
        if frame.authenticated:
            assert role is not None, ("a frame not validly sealed was accepted", frame.raw.hex())
            assert result.session is not None and result.session.role is role, result
            if msg_type.ACCESS is p.Access.CLINICIAN:
                assert role is p.Role.CLINICIAN, ("role not enforced", frame.raw.hex())
        else:
            assert msg_type.ACCESS is p.Access.OPEN, ("needs a session", frame.raw.hex())
            assert result.session is None
            _unchanged_but_expired(before, after, pump.policy, now_ms)
        return
    assert isinstance(result, p.Reply), result
    if result.what == "challenge":
        # A HELLO, plain or inside a session it is validly sealed in.
        assert frame.message_type is p.Hello and (role or not frame.authenticated), frame
        if role is None:
            _unchanged_but_expired(before, after, pump.policy, now_ms)
        _check_reply(result.data, sealed=False)
    elif result.what == "session_ready":
        # Only a recorded CONFIRM can complete a handshake: its tag cannot be forged.
        assert frame.message_type is p.Confirm and (role or not frame.authenticated), frame
        assert result.session is not None, result
        ex = KNOWN.get(result.session.session_id)
        assert ex is not None and ex.role is result.session.role, ("forged handshake", result)
        assert frame.payload == ex.confirm_frame.payload, ("forged CONFIRM", frame.raw.hex())
        if ex not in live:
            live.append(ex)
        _check_reply(result.data, sealed=True)
    elif result.what == "session_ready_again":
        # The CONFIRM that opened a live session, again (a duplicate or a retry after a lost
        # SESSION_READY): answered with SESSION_READY sealed anew, which uses one pump-to-host
        # counter value of that session and changes nothing else.
        assert frame.message_type is p.Confirm and (role or not frame.authenticated), frame
        assert result.session is not None, result
        sid = result.session.session_id
        ex = KNOWN.get(sid)
        assert ex is not None and ex.role is result.session.role, ("forged handshake", result)
        assert frame.payload == ex.confirm_frame.payload, ("forged CONFIRM", frame.raw.hex())
        assert sid in before and sid in after, result
        assert after[sid] == before[sid]._replace(send_counter=before[sid].send_counter + 1)
        if role is None:
            _unchanged_but_expired(
                {k: v for k, v in before.items() if k != sid},
                {k: v for k, v in after.items() if k != sid},
                pump.policy,
                now_ms,
            )
        _check_reply(result.data, sealed=True)
    else:
        assert result.what == "session_ended", result
        assert role is not None and frame.message_type is p.EndSession, frame
        assert frame.session_id not in after
        _check_reply(result.data, sealed=True)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode = data[0]
    policy = TIGHT if mode & 0x10 else DEFAULT
    pump = pump_security(policy)
    setup = mode & 0x03
    live = list(EXCHANGES[: (0, 1, 2, 1)[setup]])
    establish(pump, live, NOW_MS)
    if setup == 3:
        challenge = pump.receive(EXCHANGES[1].hello_frame, NOW_MS)
        assert isinstance(challenge, p.Reply), challenge
    now_ms = NOW_MS + DELAYS_MS[(mode >> 2) & 0x03]
    for item in p.FrameDecoder().feed(data[1:]):
        if isinstance(item, p.Frame):
            _one_frame(pump, item, now_ms, live)
    pump.drain_ended()


def main() -> None:
    instrument_codecs(atheris.instrument_func)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
