"""`pump-emulator demo`: protocol v1 at work in memory, every frame printed in hex.

A host and a pump's session layer (fresh random keys, no model, no I/O) run a handshake and one
sealed command, then the pump refuses a replay of the captured frame and a forgery with a
fresh counter and a recomputed CRC. It shows what the session layer guarantees; `serve` runs a
whole pump.
"""

from __future__ import annotations

import argparse
import secrets

import protocol as p


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("demo", help="walk through a protocol v1 session in memory")
    d.add_argument("--pump-serial", type=int, default=1234, help="pump serial number (pump id)")


def _show(direction: str, data: bytes) -> None:
    (frame,) = p.FrameDecoder().feed(data)
    assert isinstance(frame, p.Frame)
    sealed = "sealed" if frame.authenticated else "plain"
    print(f"{direction} {p.MESSAGES[frame.msg_id].NAME} ({len(data)} bytes, {sealed})")
    print(f"    {data.hex()}")


def demo(pump_id: int) -> int:
    keys = {role: p.SecretKey(secrets.token_bytes(32)) for role in p.Role}
    pump = p.PumpSecurity(pump_id, keys, secrets.token_bytes)
    host = p.HostSecurity(pump_id, p.Role.CLINICIAN, keys[p.Role.CLINICIAN], secrets.token_bytes)
    to_pump, to_host = p.FrameDecoder(), p.FrameDecoder()
    now_ms = 0

    def pump_rx(data: bytes) -> p.Inbound:
        _show("host -> pump", data)
        (frame,) = to_pump.feed(data)
        assert isinstance(frame, p.Frame)
        return pump.receive(frame, now_ms)

    def host_rx(data: bytes) -> p.HostEvent:
        _show("pump -> host", data)
        (frame,) = to_host.feed(data)
        assert isinstance(frame, p.Frame)
        return host.receive(frame)

    print(f"pump {pump_id}, clinician key {keys[p.Role.CLINICIAN]} (fresh, random)\n")
    challenge = pump_rx(host.hello(seq=1))
    assert isinstance(challenge, p.Reply)
    confirm = host_rx(challenge.data)
    assert isinstance(confirm, p.Send)
    ready = pump_rx(confirm.data)
    assert isinstance(ready, p.Reply)
    host_rx(ready.data)
    print("\nsession established; set a continuous dose of 0.5 mg/day:")
    command = p.SetContinuousDose(
        command_id=secrets.token_bytes(16),
        expected_program_version=0,
        dose_ng_per_day=500_000,
        confirm_soft_limit=False,
    )
    sealed = host.seal(command, seq=3)
    request = pump_rx(sealed)
    assert isinstance(request, p.Request)
    print(f"    pump accepted: {request.message}")
    ack = p.CommandAck(command.command_id, duplicate=False, program_version=1, event_seq=1)
    host_rx(pump.reply(request, ack))
    print("\nan attacker replays the captured frame:")
    replay = pump_rx(sealed)
    assert isinstance(replay, p.Rejected)
    print(f"    refused: {replay.error!r} (no reply sent)")
    print("\nan attacker edits the dose, uses a fresh counter and recomputes the CRC:")
    forged = bytearray(sealed)
    forged[18:22] = (2).to_bytes(4, "little")
    forged[42] ^= 0x40
    body = bytes(forged[:-2])
    forged_frame = body + p.frame_crc(body, p.SetContinuousDose.SEED).to_bytes(2, "little")
    forgery = pump_rx(forged_frame)
    assert isinstance(forgery, p.Rejected)
    print(f"    refused: {forgery.error!r}")
    print("\nthe protocol is documented in docs/protocol.md; `pump-emulator serve` runs a pump.")
    return 0
