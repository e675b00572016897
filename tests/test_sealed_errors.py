"""Issue 16 items 1 and 2: errors inside a session are sealed, and the host's replay rules.

Sans-I/O: the pump seals every refusal it can attribute to a session (protocol.md section 10),
`HostSecurity` reports a plain ERROR in a session as `Unsealed` (never a `Response`), and the
host's replay window refuses a pump frame with an old counter. End to end: forged plain
ERRORs put on the pty and published on the broker, and a replayed sealed answer, change no
outcome of a programmer's command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import programmer
import protocol as p
from emulator import EmulatorServer, MqttSettings, ServerOptions
from emulator.testing import Broker
from programmer._links import MqttLink
from protocol._session import REPLAY_WINDOW

from .helpers import PUMP_ID, Pair, dose, only_frame, recrc

MG = 1_000_000
ML = 1_000_000
SPEED = 100_000
FORGED_CODES = (
    p.ErrorCode.HARD_LIMIT,  # a refusal: the command's fate, if believed
    p.ErrorCode.SESSION_EXPIRED,  # a re-handshake, if believed
    p.ErrorCode.WRONG_PUMP,  # giving up on the pump, if believed
    p.ErrorCode.AUTH_FAILED,
)


def plain_error(code: p.ErrorCode, msg_id: int, seq: int, pump_id: int = PUMP_ID) -> bytes:
    err = p.Error(code=code, request_msg_id=msg_id, command_id=bytes(16), detail="forged")
    return p.encode_frame(err, pump_id=pump_id, seq=seq, from_pump=True)


def sealed_error(pair: Pair, data: bytes | None, code: p.ErrorCode) -> None:
    """`data` is a refusal sealed in the host's session, which the host believes."""
    assert data is not None
    frame = only_frame(data)
    assert frame.authenticated
    event = pair.to_host(data)
    assert isinstance(event, p.Response) and isinstance(event.message, p.Error), event
    assert event.message.code is code


# --- the pump seals what it can attribute -------------------------------------------------------


def test_session_expired_is_sealed_in_the_ended_session() -> None:
    pair = Pair()
    pair.handshake()
    old_host = pair.host
    # The same host's new session supersedes the old one: its late frame is told, sealed in it.
    pair.handshake(pair.new_host(p.Role.CLINICIAN, host_id=old_host.host_id))
    result = pair.send(dose(1), old_host)
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.SessionExpired)
    assert "superseded" in result.error.detail
    sealed_error(pair, result.reply, p.ErrorCode.SESSION_EXPIRED)
    # Idle limit, found when the frame arrives: sealed too.
    pair2 = Pair()
    pair2.handshake()
    pair2.now_ms += p.SessionPolicy().idle_timeout_ms + 1
    result = pair2.send(dose(2))
    assert isinstance(result, p.Rejected) and isinstance(result.error, p.SessionExpired)
    sealed_error(pair2, result.reply, p.ErrorCode.SESSION_EXPIRED)


def test_a_forged_frame_naming_an_expired_session_gets_a_plain_auth_failed() -> None:
    pair = Pair()
    pair.handshake()
    pair.now_ms += p.SessionPolicy().idle_timeout_ms + 1
    data = bytearray(pair.host.seal(dose(1), seq=pair.next_seq()))
    data[-3] ^= 1  # the tag
    result = pair.pump.receive(only_frame(recrc(data)), pair.now_ms)
    assert isinstance(result, p.Rejected) and result.error.code is p.ErrorCode.AUTH_FAILED
    assert result.reply is not None and not only_frame(result.reply).authenticated


def test_wrong_direction_of_an_authentic_sealed_frame_is_sealed() -> None:
    pair = Pair()
    pair.handshake()
    channel = pair.host._channel
    assert channel is not None
    ended = p.SessionEnded(reason=p.SessionEndReason.HOST_REQUEST)  # a pump-to-host message
    data = channel.seal(ended, pump_id=PUMP_ID, seq=pair.next_seq(), from_pump=False)
    result = pair.to_pump(data)
    assert isinstance(result, p.Rejected) and result.error.code is p.ErrorCode.WRONG_DIRECTION
    sealed_error(pair, result.reply, p.ErrorCode.WRONG_DIRECTION)


def test_what_stays_plain() -> None:
    """The few errors no session can be named for (protocol.md section 10)."""
    pair = Pair()
    pair.handshake()
    # a plain frame carrying a message that needs a session
    result = pair.to_pump(p.encode_frame(dose(1), pump_id=PUMP_ID, seq=3, from_pump=False))
    assert isinstance(result, p.Rejected) and result.error.code is p.ErrorCode.NOT_AUTHENTICATED
    assert result.reply is not None and not only_frame(result.reply).authenticated
    # a sealed frame whose tag does not verify
    data = bytearray(pair.host.seal(dose(1), seq=pair.next_seq()))
    data[-3] ^= 1
    result = pair.pump.receive(only_frame(recrc(data)), pair.now_ms)
    assert isinstance(result, p.Rejected) and result.error.code is p.ErrorCode.AUTH_FAILED
    assert result.reply is not None and not only_frame(result.reply).authenticated
    # a CONFIRM nobody asked for: before any session
    confirm = p.Confirm(session_id=77, tag=bytes(16))
    result = pair.to_pump(p.encode_frame(confirm, pump_id=PUMP_ID, seq=9, from_pump=False))
    assert isinstance(result, p.Rejected) and result.error.code is p.ErrorCode.HANDSHAKE_FAILED
    assert result.reply is not None and not only_frame(result.reply).authenticated
    # in-session refusals were sealed already in 1.0 (here ROLE_FORBIDDEN)
    patient = pair.new_host(p.Role.PATIENT)
    pair.handshake(patient)
    result = pair.send(dose(5), patient)
    assert isinstance(result, p.Rejected) and result.error.code is p.ErrorCode.ROLE_FORBIDDEN
    assert result.reply is not None and only_frame(result.reply).authenticated


# --- the host never believes a plain error in a session -----------------------------------------


@pytest.mark.parametrize("code", [*FORGED_CODES, p.ErrorCode.NOT_AUTHENTICATED])
def test_a_plain_error_in_a_session_is_unsealed_never_a_response(code: p.ErrorCode) -> None:
    pair = Pair()
    session = pair.handshake()
    data = pair.host.seal(dose(1), seq=pair.next_seq())
    forged = plain_error(code, p.SetContinuousDose.MSG_ID, only_frame(data).seq)
    event = pair.to_host(forged)
    assert isinstance(event, p.Unsealed) and event.message.code is code
    assert pair.host.plain_errors == 1
    assert pair.host.established and pair.host.session == session  # nothing forgotten
    # The genuine answer still counts.
    request = pair.to_pump(data)
    assert isinstance(request, p.Request)
    ack = p.CommandAck(
        command_id=dose(1).command_id, program_version=1, event_seq=1, duplicate=False
    )
    answer = pair.pump.reply(request, ack)
    got = pair.to_host(answer)
    assert isinstance(got, p.Response) and isinstance(got.message, p.CommandAck)


def test_before_a_session_a_plain_error_is_the_answer() -> None:
    pair = Pair()
    hello = pair.host.hello(seq=pair.next_seq())
    locked = plain_error(p.ErrorCode.HANDSHAKE_LOCKED, p.Hello.MSG_ID, only_frame(hello).seq)
    event = pair.to_host(locked)
    assert isinstance(event, p.Response) and isinstance(event.message, p.Error)
    assert pair.host.plain_errors == 0


# --- the host's replay window --------------------------------------------------------------------


def _clock_answer(pair: Pair, when: int) -> bytes:
    """The pump's sealed answer to a GET_CLOCK of the host's."""
    request = pair.send(p.GetClock())
    assert isinstance(request, p.Request)
    return pair.pump.reply(request, p.Clock(pump_time_ms=when, speed_factor_milli=1000))


def test_the_host_refuses_a_replayed_pump_frame() -> None:
    pair = Pair()
    pair.handshake()
    first = _clock_answer(pair, 1_000)
    assert only_frame(first).counter == 2  # SESSION_READY was the pump's counter 1
    got = pair.to_host(first)
    assert isinstance(got, p.Response) and got.message == p.Clock(1_000, 1000)
    with pytest.raises(p.Replayed, match="already accepted"):
        pair.to_host(first)
    assert pair.host.established
    # A window, as on the pump (protocol.md section 5): a late but new counter counts once.
    late = _clock_answer(pair, 2_000)
    newer = _clock_answer(pair, 3_000)
    assert isinstance(pair.to_host(newer), p.Response)
    got = pair.to_host(late)
    assert isinstance(got, p.Response) and got.message == p.Clock(2_000, 1000)
    with pytest.raises(p.Replayed):
        pair.to_host(late)
    # Older than the window: refused even though never seen.
    stale = _clock_answer(pair, 4_000)
    for i in range(REPLAY_WINDOW):
        assert isinstance(pair.to_host(_clock_answer(pair, 5_000 + i)), p.Response)
    with pytest.raises(p.Replayed, match="older than the replay window"):
        pair.to_host(stale)
    # Nothing moved: the next genuine answer is taken.
    got = pair.to_host(_clock_answer(pair, 9_000))
    assert isinstance(got, p.Response) and got.message == p.Clock(9_000, 1000)


def test_a_repeated_confirm_is_answered_with_the_next_counters() -> None:
    """SESSION_READY carries counter 1 the first time only (protocol.md section 5)."""
    pair = Pair()
    challenge = pair.to_pump(pair.host.hello(seq=pair.next_seq()))
    assert isinstance(challenge, p.Reply)
    confirm = pair.to_host(challenge.data)
    assert isinstance(confirm, p.Send)
    readies = []
    for _ in range(3):
        ready = pair.to_pump(confirm.data)
        assert isinstance(ready, p.Reply) and ready.what.startswith("session_ready")
        readies.append(ready.data)
    assert [only_frame(r).counter for r in readies] == [1, 2, 3]
    assert pair.pump.locked_until() == 0 and len(pair.pump.sessions) == 1
    first = pair.to_host(readies[0])
    assert isinstance(first, p.Established)
    for again in readies[1:]:  # new counters: verified, and nothing new
        event = pair.to_host(again)
        assert isinstance(event, p.Established) and event.session == first.session
    with pytest.raises(p.Replayed):
        pair.to_host(readies[0])
    # After other traffic, a repeat takes the session's next counter, not 1.
    _clock_answer(pair, 1)
    late = pair.to_pump(confirm.data)
    assert isinstance(late, p.Reply) and only_frame(late.data).counter == 5


# --- end to end: forged plain errors on the pty and on MQTT -------------------------------------


class Forger:
    """Wraps the programmer's link: before each sealed request goes out, `inject` puts forged
    plain ERRORs answering it (its seq and message id) on the pump's side of the line."""

    def __init__(self, inner: Any, serial: int, inject: Callable[[bytes], Awaitable[None]]):
        self.inner, self.bytes_per_s = inner, inner.bytes_per_s
        self.serial, self.inject = serial, inject
        self.forged = 0

    async def send(self, data: bytes) -> None:
        frame = only_frame(data)
        if frame.authenticated and frame.msg_id != p.EndSession.MSG_ID:
            for code in FORGED_CODES:
                await self.inject(plain_error(code, frame.msg_id, frame.seq, self.serial))
                self.forged += 1
        await self.inner.send(data)

    async def recv(self) -> p.Frame:
        frame: p.Frame = await self.inner.recv()
        return frame

    async def close(self) -> None:
        await self.inner.close()


async def _workflow(pump: programmer.Pump, forger: Forger) -> None:
    """Commands and reads under forgery: each outcome is the pump's."""
    handshakes = pump.handshakes
    pump.link = forger
    refill = await pump.prepare_refill(
        withdrawn_nl=0, added_nl=20 * ML, drug=p.Drug.MORPHINE, conc_ng_per_ml=25 * MG
    )
    refilled = await refill.commit()
    ack = await (await pump.prepare_dose(3 * MG)).commit()
    assert isinstance(ack, p.CommandAck) and not ack.duplicate
    status = await pump.status()
    assert status.daily_dose_ng == 3 * MG and status.program_version == ack.program_version
    assert refilled is not None
    assert forger.forged >= 4 * len(FORGED_CODES)
    assert pump.plain_errors_ignored == forger.forged  # every one seen, none believed
    assert pump.handshakes == handshakes and pump.resends == 0  # no re-handshake, no retry
    assert pump.journal.pending(pump.serial) == []


async def test_forged_plain_errors_on_the_pty_change_no_outcome(tmp_path: Path) -> None:
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=SPEED)) as server:
        assert server.port_path and server.pty is not None
        pty = server.pty

        async def on_the_line(data: bytes) -> None:
            pty.send(data)  # the pump's end of the pty: ahead of the genuine answer

        async with programmer.connect(
            f"serial://{server.port_path}",
            key=server.key_files[p.Role.CLINICIAN],
            journal=tmp_path / "journal.sqlite",
        ) as pump:
            await _workflow(pump, Forger(pump.link, pump.serial, on_the_line))


async def test_forged_plain_errors_on_mqtt_change_no_outcome(
    tmp_path: Path, broker: Broker
) -> None:
    options = ServerOptions(speed_milli=SPEED, mqtt=MqttSettings.from_url(broker.url))
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.mqtt is not None
        await asyncio.wait_for(server.mqtt.connected.wait(), 10)
        serial = server.device.pump.serial
        async with (
            aiomqtt.Client(broker.host, broker.port, identifier="forger") as attacker,
            programmer.connect(
                f"mqtt://{broker.host}:{broker.port}/{serial}",
                key=server.key_files[p.Role.CLINICIAN],
                journal=tmp_path / "journal.sqlite",
            ) as pump,
        ):
            assert isinstance(pump.link, MqttLink)
            queue = pump.link._in  # the programmer's inbox: the forgery is in it first

            async def on_the_broker(data: bytes) -> None:
                before = queue.qsize()
                await attacker.publish(f"itp/v1/{serial}/rsp", data, qos=1)
                async with asyncio.timeout(10):  # the forgery is in before the request goes
                    while queue.qsize() <= before:
                        await asyncio.sleep(0.005)

            await _workflow(pump, Forger(pump.link, serial, on_the_broker))


async def test_a_replayed_sealed_answer_changes_no_outcome(tmp_path: Path) -> None:
    """An old sealed STATUS replayed to a later request with the same seq: the host's window
    refuses it, keeps waiting and takes the pump's fresh answer; no resend."""

    class Replayer:
        def __init__(self, inner: Any, pty: Any) -> None:
            self.inner, self.bytes_per_s, self.pty = inner, inner.bytes_per_s, pty
            self.seen: dict[int, bytes] = {}
            self.replayed = 0

        async def send(self, data: bytes) -> None:
            seq = only_frame(data).seq
            if seq in self.seen:
                self.pty.send(self.seen[seq])
                self.replayed += 1
            await self.inner.send(data)

        async def recv(self) -> p.Frame:
            frame: p.Frame = await self.inner.recv()
            if frame.authenticated and frame.msg_id == p.Status.MSG_ID:
                self.seen.setdefault(frame.seq, frame.raw)
            return frame

        async def close(self) -> None:
            await self.inner.close()

    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=SPEED)) as server:
        assert server.port_path and server.pty is not None
        async with programmer.connect(
            f"serial://{server.port_path}",
            key=server.key_files[p.Role.CLINICIAN],
            journal=tmp_path / "journal.sqlite",
        ) as pump:
            replayer = Replayer(pump.link, server.pty)
            pump.link = replayer
            seq = pump._seq
            before = await pump.status()
            refill = await pump.prepare_refill(
                withdrawn_nl=0, added_nl=20 * ML, drug=p.Drug.MORPHINE, conc_ng_per_ml=25 * MG
            )
            await refill.commit()
            pump._seq = seq  # the next request reuses the old status request's seq
            after = await pump.status()
            assert replayer.replayed == 1
            assert before.reservoir_volume_nl == 0 and after.reservoir_volume_nl == 20 * ML
            assert pump.frames_refused == 1 and pump.resends == 0
