"""Authenticated sessions: worked example, HKDF, replay, forgery, tamper, roles, lockout, expiry."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from pathlib import Path

import pytest

import protocol as p
from protocol import gen

from .helpers import PUMP_ID, Pair, dose, only_frame, plain, recrc

VECTORS = Path(__file__).parent / "vectors"


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


# --- the documented worked example, checked independently ----------------------------------------


def test_worked_handshake_example_verifies_independently() -> None:
    hs = json.loads((VECTORS / "handshake.json").read_text(encoding="utf-8"))
    i = hs["inputs"]
    key = bytes.fromhex(i["K_clinician"])
    nh, np_ = bytes.fromhex(i["nonce_H"]), bytes.fromhex(i["nonce_P"])
    t = (
        i["host_id"].to_bytes(4, "little") + bytes((i["role"],)) + nh
        + i["pump_id"].to_bytes(4, "little") + i["session_id"].to_bytes(4, "little") + np_
    )  # fmt: skip
    assert t.hex() == hs["transcript"] and len(t) == 45
    assert _hmac(key, b"P" + t)[:16].hex() == hs["tag_P"]
    assert _hmac(key, b"H" + t)[:16].hex() == hs["tag_H"]
    # RFC 5869 by hand.
    prk = _hmac(nh + np_, key)
    info = b"itp1" + i["session_id"].to_bytes(4, "little") + bytes((i["role"],))
    t1 = _hmac(prk, info + b"\x01")
    t2 = _hmac(prk, t1 + info + b"\x02")
    assert (t1 + t2)[:32].hex() == hs["k_h2p"] and (t1 + t2)[32:].hex() == hs["k_p2h"]
    # The sealed command's tag is the HMAC of exactly the documented bytes.
    frame = only_frame(bytes.fromhex(hs["frames"]["set_continuous_dose"]))
    assert frame.mac_input.hex() == hs["set_continuous_dose_tag_input"]
    assert _hmac(bytes.fromhex(hs["k_h2p"]), frame.mac_input)[:16] == frame.tag
    # And our implementation reproduces every frame byte for byte.
    assert gen.handshake_vectors() == hs


def test_hkdf_rfc5869_test_case_1() -> None:
    okm = p.hkdf_sha256(
        bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42,
    )  # fmt: skip
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


# --- happy path ----------------------------------------------------------------------------------


def test_handshake_then_sealed_command_and_reply() -> None:
    pair = Pair()
    info = pair.handshake()
    assert info.role is p.Role.CLINICIAN and pair.pump.sessions == [info]
    req = pair.send(dose(1))
    assert isinstance(req, p.Request) and req.message == dose(1) and req.session == info
    ack = p.CommandAck(
        command_id=dose(1).command_id, duplicate=False, program_version=1, event_seq=5
    )
    event = pair.to_host(pair.pump.reply(req, ack))
    assert isinstance(event, p.Response) and event.message == ack


def test_open_messages_work_without_a_session_and_broadcast_only_for_device_info() -> None:
    pair = Pair()
    r = pair.to_pump(plain(p.GetDeviceInfo(), pump_id=p.BROADCAST_PUMP_ID))
    assert isinstance(r, p.Request) and r.session is None
    r = pair.to_pump(plain(p.GetStatus(), pump_id=p.BROADCAST_PUMP_ID))
    assert isinstance(r, p.Rejected) and isinstance(r.error, p.WrongPump)


# --- forgery, tamper, replay ---------------------------------------------------------------------


def _only_rejections(pair: Pair, frames: list[bytes]) -> list[p.Rejected]:
    out = []
    for data in frames:
        result = pair.to_pump(data)
        assert isinstance(result, p.Rejected), (data.hex(), result)
        out.append(result)
    return out


def test_crc_is_not_authentication_10k_forgeries_rejected() -> None:
    pair = Pair()
    pair.handshake()
    session = pair.pump.sessions[0].session_id
    rng = random.Random(5)
    forged = []
    for n in range(10_000):
        cmd = dose(n, ng=rng.randrange(10**7))
        if n % 3 == 0:  # no tag at all: a plain frame of a therapy command
            forged.append(plain(cmd))
        else:  # right session and a fresh counter, but a made-up tag; CRC recomputed
            head = p.encode_frame(cmd, pump_id=PUMP_ID, seq=n, from_pump=False)
            body = bytearray(head[:14])
            body[3] = 0x01
            body += session.to_bytes(4, "little") + (n + 1).to_bytes(4, "little")
            body += cmd.encode_payload() + rng.randbytes(16) + b"\0\0"
            forged.append(recrc(body))
    rejected = _only_rejections(pair, forged)
    assert {type(r.error) for r in rejected} == {p.NotAuthenticated, p.AuthFailed}
    assert all(r.security_event for r in rejected)
    # The replay window did not move: a genuine frame with counter 1 is still accepted.
    assert isinstance(pair.send(dose(99_999)), p.Request)


def test_flipping_any_bit_of_sealed_frames_is_rejected() -> None:
    pair = Pair()
    pair.handshake()
    originals = [pair.host.seal(dose(i), seq=i) for i in range(1, 101)]
    flips = 0
    for frame in originals:  # every bit of 100 frames, CRC recomputed (attacker)
        tampered = []
        for bit in range(len(frame[:-2]) * 8):
            b = bytearray(frame)
            b[bit // 8] ^= 1 << (bit % 8)
            tampered.append(recrc(b))
        for data in tampered:
            items = p.FrameDecoder().feed(data)
            for item in items:
                if isinstance(item, p.Frame):
                    assert isinstance(pair.pump.receive(item, 0), p.Rejected), bit
                    flips += 1
    assert flips > 100 * 400  # security.md 6.4: every bit of 100 frames (bar the CRC's)
    for frame in originals:  # untouched originals are all still accepted afterwards
        assert isinstance(pair.to_pump(frame), p.Request)


def test_replay_in_session_after_rehandshake_and_after_restart() -> None:
    pair = Pair()
    pair.handshake()
    captured = [pair.host.seal(dose(i), seq=i) for i in range(1, 1001)]
    for frame in captured:
        assert isinstance(pair.to_pump(frame), p.Request)
    # In session: every captured frame, replayed, is refused silently and flagged.
    rejected = _only_rejections(pair, captured)
    assert all(isinstance(r.error, p.Replayed) and r.reply is None for r in rejected)
    assert all(r.security_event for r in rejected)
    # After a new handshake (new keys, new session id): refused.
    pair.handshake()
    assert len(_only_rejections(pair, captured)) == 1000
    # After a pump restart (sessions live in RAM only): refused.
    pair.pump.end_all()
    rejected = _only_rejections(pair, captured)
    assert all(isinstance(r.error, p.AuthFailed) for r in rejected)


def test_replay_window_accepts_late_frames_once_and_refuses_stale_ones() -> None:
    pair = Pair()
    pair.handshake()
    frames = [pair.host.seal(dose(i), seq=i) for i in range(1, 101)]
    assert isinstance(pair.to_pump(frames[80]), p.Request)  # counter 81 arrives first
    assert isinstance(pair.to_pump(frames[40]), p.Request)  # 41: late, inside the window
    assert isinstance(pair.to_pump(frames[40]), p.Rejected)  # ... but only once
    assert isinstance(pair.to_pump(frames[10]), p.Rejected)  # 11: older than 81 - 64
    assert isinstance(pair.to_pump(frames[99]), p.Request)


def test_replay_window_unit() -> None:
    w = p.ReplayWindow()
    with pytest.raises(p.Replayed):
        w.check(0)
    for c in (5, 3, 70, 7):
        w.check(c)
        w.commit(c)
    for c in (5, 3, 70, 6):  # 6 < 70 - 64
        with pytest.raises(p.Replayed):
            w.check(c)
    w.check(69)
    w.check(1000)


def test_reflection_of_pump_frames_is_refused() -> None:
    pair = Pair()
    pair.handshake()
    req = pair.send(dose(1))
    assert isinstance(req, p.Request)
    reply = pair.pump.reply(req, p.CommandAck(dose(1).command_id, False, 1, 1))
    result = pair.to_pump(reply)
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.WrongDirection)
    with pytest.raises(p.WrongDirection):
        pair.to_host(pair.host.seal(dose(2), seq=9))


def test_host_refuses_plain_versions_of_sealed_pump_messages() -> None:
    pair = Pair()
    pair.handshake()
    forged = plain(p.CommandAck(bytes(16), False, 1, 1))
    with pytest.raises(p.NotAuthenticated):
        pair.to_host(forged)


def test_wrong_pump_is_refused_even_with_a_valid_session() -> None:
    pair = Pair()
    pair.handshake()
    other = p.HostSecurity(
        PUMP_ID + 1, p.Role.CLINICIAN, pair.keys[p.Role.CLINICIAN], pair.rng.randbytes
    )
    result = pair.to_pump(other.hello(seq=1))
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.WrongPump)
    assert result.reply is not None
    error = only_frame(result.reply)
    assert error.decode().code is p.ErrorCode.WRONG_PUMP  # type: ignore[attr-defined]


# --- roles ---------------------------------------------------------------------------------------


def test_patient_role_can_read_and_request_a_bolus_but_not_change_therapy() -> None:
    pair = Pair(role=p.Role.PATIENT)
    pair.handshake()
    for allowed in (p.GetStatus(), p.GetEvents(0, 4), p.RequestPatientBolus(bytes(16), 3)):
        assert isinstance(pair.send(allowed), p.Request)
    forbidden = [
        dose(1), p.GetProgram(), p.Suspend(bytes(16), 0), p.SetClock(bytes(16), 0),
        p.SetPatientBolus(bytes(16), 0, True, 1, 60_000, 60_000, 48, True),
        p.RecordRefill(bytes(16), 0, 0, 20_000_000, p.Drug.MORPHINE, 1,
                       p.ConcentrationUnit.MG_PER_ML, 0, False),
    ]  # fmt: skip
    for _ in range(100):
        for message in forbidden:
            result = pair.send(message)
            assert isinstance(result, p.Rejected) and isinstance(result.error, p.RoleForbidden)
            # The refusal travels sealed in the patient's session: the host can trust it.
            assert result.reply is not None
            event = pair.to_host(result.reply)
            assert isinstance(event, p.Response)
            assert event.message.code is p.ErrorCode.ROLE_FORBIDDEN  # type: ignore[attr-defined]


def test_patient_key_cannot_open_a_clinician_session() -> None:
    pair = Pair()
    impostor = pair.new_host(p.Role.CLINICIAN, key=pair.keys[p.Role.PATIENT])
    challenge = pair.to_pump(impostor.hello(seq=1))
    assert isinstance(challenge, p.Reply)
    with pytest.raises(p.HandshakeFailed, match="did not prove"):
        pair.to_host(challenge.data, impostor)


def test_therapy_without_session_is_refused() -> None:
    pair = Pair()
    for message in (dose(1), p.GetStatus(), p.RequestPatientBolus(bytes(16), 0)):
        result = pair.to_pump(plain(message))
        assert isinstance(result, p.Rejected) and isinstance(result.error, p.NotAuthenticated)


# --- handshake brute force, expiry ---------------------------------------------------------------


def _bad_confirm(pair: Pair, rng: random.Random) -> p.Inbound:
    challenge = pair.to_pump(pair.host.hello(seq=1))
    if isinstance(challenge, p.Rejected):
        return challenge
    assert isinstance(challenge, p.Reply)
    sid = only_frame(challenge.data).decode().session_id  # type: ignore[attr-defined]
    return pair.to_pump(plain(p.Confirm(session_id=sid, tag=rng.randbytes(16))))


def test_handshake_brute_force_is_locked_out_and_sessions_keep_working() -> None:
    pair = Pair()
    veteran = pair.new_host(p.Role.CLINICIAN)
    pair.handshake(veteran)
    rng = random.Random(8)
    results = [_bad_confirm(pair, rng) for _ in range(1000)]
    failures = [
        r for r in results if isinstance(r, p.Rejected) and isinstance(r.error, p.HandshakeFailed)
    ]
    locked = [
        r for r in results if isinstance(r, p.Rejected) and isinstance(r.error, p.HandshakeLocked)
    ]
    assert len(failures) == 5 and len(locked) == 995  # <= 5 tries per 60 s, then locked
    assert isinstance(pair.send(dose(1), veteran), p.Request)  # open sessions unaffected
    # Even the right key waits for the lockout to end ...
    r = pair.to_pump(pair.host.hello(seq=1))
    assert isinstance(r, p.Rejected) and isinstance(r.error, p.HandshakeLocked)
    pair.now_ms += 60_000
    pair.handshake()
    # ... and a second burst locks for twice as long, unless a success reset the doubling.
    for _ in range(5):
        _bad_confirm(pair, rng)
    assert pair.pump.locked_until() == pair.now_ms + 60_000


def test_lockout_doubles_and_is_capped() -> None:
    pair = Pair()
    rng = random.Random(9)
    durations = []
    for _ in range(8):
        for _ in range(5):
            _bad_confirm(pair, rng)
        durations.append(pair.pump.locked_until() - pair.now_ms)
        pair.now_ms = pair.pump.locked_until()
    assert durations == [60_000, 120_000, 240_000, 480_000, 960_000, 960_000, 960_000, 960_000]


def test_sessions_expire_when_idle_and_at_end_of_life() -> None:
    policy = p.SessionPolicy()
    pair = Pair()
    pair.handshake()
    pair.now_ms += policy.idle_timeout_ms  # exactly at the idle limit: still alive
    assert isinstance(pair.send(dose(1)), p.Request)
    pair.now_ms += policy.idle_timeout_ms + 1  # one millisecond past it: gone
    result = pair.send(dose(2))
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.SessionExpired)
    # Protocol 1.1 (issue 16): the refusal is sealed in the session it ended, so the host
    # can believe it (a plain SESSION_EXPIRED is anyone's forgery).
    assert result.reply is not None and only_frame(result.reply).authenticated
    told = pair.to_host(result.reply)
    assert isinstance(told, p.Response) and isinstance(told.message, p.Error)
    assert told.message.code is p.ErrorCode.SESSION_EXPIRED
    assert pair.pump.sessions == []
    # Lifetime: active every 9 minutes (never idle), yet over after 60 minutes.
    start = pair.now_ms
    pair.handshake()
    for _ in range(6):
        pair.now_ms += 9 * 60_000
        assert isinstance(pair.send(dose(3)), p.Request)
    pair.now_ms = start + policy.max_lifetime_ms + 1
    result = pair.send(dose(4))
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.SessionExpired)
    # expire() ends idle sessions without any frame arriving.
    pair.handshake()
    assert pair.pump.expire(pair.now_ms + policy.idle_timeout_ms) == []
    assert [s.role for s in pair.pump.expire(pair.now_ms + policy.idle_timeout_ms + 1)] == [
        p.Role.CLINICIAN
    ]


def test_end_session_forgets_keys_on_both_sides() -> None:
    pair = Pair()
    pair.handshake()
    reply = pair.send(p.EndSession())
    assert isinstance(reply, p.Reply) and reply.what == "session_ended"
    assert pair.pump.sessions == []
    assert isinstance(pair.to_host(reply.data), p.Response) and not pair.host.established


def test_least_recently_used_session_is_evicted() -> None:
    pair = Pair()
    hosts = [pair.new_host(p.Role.CLINICIAN) for _ in range(5)]
    for h in hosts:
        pair.now_ms += 1
        pair.handshake(h)
    assert len(pair.pump.sessions) == 4
    result = pair.send(dose(1), hosts[0])
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.SessionExpired)
    assert "evicted" in result.error.detail
    assert isinstance(pair.send(dose(1), hosts[4]), p.Request)


def test_a_new_session_supersedes_the_same_hosts_older_ones() -> None:
    """A restarted host (same host_id, same role) ends its earlier session: a frame the dead
    process left in flight is refused after its successor asked what became of it."""
    pair = Pair()
    first = pair.new_host(p.Role.CLINICIAN, host_id=77)
    pair.handshake(first)
    in_flight = first.seal(dose(1), seq=pair.next_seq())  # sealed, not yet delivered
    other_host = pair.new_host(p.Role.CLINICIAN)
    pair.handshake(other_host)
    patient = pair.new_host(p.Role.PATIENT, host_id=77)  # same host, another role
    pair.handshake(patient)
    pair.pump.drain_ended()
    successor = pair.new_host(p.Role.CLINICIAN, host_id=77)
    old = pair.pump.sessions[0]
    pair.handshake(successor)
    assert pair.pump.drain_ended() == [(old, p.SessionEndReason.SUPERSEDED)]
    late = pair.to_pump(in_flight)
    assert isinstance(late, p.Rejected) and isinstance(late.error, p.SessionExpired)
    assert "superseded" in late.error.detail and not late.security_event
    for h in (other_host, patient, successor):  # untouched
        assert isinstance(pair.send(p.GetStatus(), h), p.Request)


def test_a_late_frame_of_an_ended_session_is_told_to_handshake_a_forgery_is_not() -> None:
    """After the idle limit the pump forgets the session, but it remembers enough of the last
    few to tell their own host SESSION_EXPIRED (not an attack, nothing logged); a frame with
    that session id and a wrong tag is still AUTH_FAILED and counted."""
    pair = Pair()
    pair.handshake()
    pair.now_ms += pair.pump.policy.idle_timeout_ms + 1
    assert len(pair.pump.expire(pair.now_ms)) == 1
    data = pair.host.seal(dose(1), seq=pair.next_seq())
    late = pair.to_pump(data)
    assert isinstance(late, p.Rejected) and isinstance(late.error, p.SessionExpired)
    assert "idle timeout" in late.error.detail and not late.security_event
    forged = bytearray(data)
    forged[-3] ^= 1
    result = pair.to_pump(recrc(bytes(forged)))
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.AuthFailed)
    assert result.security_event


def test_a_duplicated_confirm_is_answered_again_and_never_counts_as_a_failure() -> None:
    """A network duplicate of the CONFIRM that opened a session (or the host's retry after a
    lost SESSION_READY) must not count towards the brute-force lockout: found by the
    deterministic simulation (seed 2300), where duplicates locked the rightful host out."""
    pair = Pair()
    challenge = pair.to_pump(pair.host.hello(seq=pair.next_seq()))
    assert isinstance(challenge, p.Reply)
    confirm = pair.to_host(challenge.data)
    assert isinstance(confirm, p.Send)
    for i in range(pair.pump.policy.lockout_threshold * 3):
        again = pair.to_pump(confirm.data)
        assert isinstance(again, p.Reply), again
        assert again.what == ("session_ready" if i == 0 else "session_ready_again")
        assert isinstance(pair.to_host(again.data), p.Established)
    assert pair.pump.locked_until() == 0 and len(pair.pump.sessions) == 1
    assert isinstance(pair.send(p.GetStatus()), p.Request)
    forged = bytearray(confirm.data)
    forged[-3] ^= 1  # a wrong tag for the open session is still a failure
    result = pair.to_pump(recrc(bytes(forged)))
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.HandshakeFailed)


def test_rekey_ends_every_session() -> None:
    pair = Pair()
    pair.handshake()
    new = {p.Role.CLINICIAN: p.SecretKey(bytes(32)), p.Role.PATIENT: p.SecretKey(bytes(range(32)))}
    assert len(pair.pump.rekey(new)) == 1
    result = pair.send(dose(1))
    assert isinstance(result, p.Rejected)


# --- key hygiene ---------------------------------------------------------------------------------


def test_keys_never_appear_in_repr_errors_or_replies() -> None:
    pair = Pair()
    key = pair.keys[p.Role.CLINICIAN]
    secret = key.to_hex()
    texts = [repr(key), str(key), repr(pair.keys), repr(pair.pump.sessions)]
    wrong = pair.new_host(p.Role.CLINICIAN, key=p.SecretKey(bytes(32)))
    challenge = pair.to_pump(wrong.hello(seq=1))
    assert isinstance(challenge, p.Reply)
    with pytest.raises(p.HandshakeFailed) as info:
        pair.to_host(challenge.data, wrong)
    texts.append(str(info.value))
    for blob in texts:
        assert secret not in blob and secret.upper() not in blob
        assert bytes.fromhex(secret).decode("latin-1") not in blob
    assert key.fingerprint in repr(key)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(key)
    with pytest.raises(ValueError, match="32 bytes"):
        p.SecretKey(b"short")


def test_key_files_are_parsed_and_private() -> None:
    key = p.key_from_file(" " + "ab" * 32 + "\n", 0o100600, "k")
    assert key == p.SecretKey(bytes([0xAB]) * 32)
    with pytest.raises(ValueError, match="accessible by others"):
        p.key_from_file("ab" * 32, 0o100644, "k")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        p.key_from_file("xyz", 0o100600, "k")
