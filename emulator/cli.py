"""`pump-emulator`: the emulator's command line.

`serve` (a pump on a virtual serial port and MQTT) lands with the emulator issue (#4). Until
then `demo` shows protocol v1 at work: a handshake, a sealed command, and the pump refusing a
replay and a forgery, with every frame printed in hex.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from importlib import metadata

import protocol as p


def _version() -> str:
    try:
        return metadata.version("intrathecal-pump-emulator")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


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
    print("\nthe protocol is documented in docs/protocol.md; `serve` arrives with issue #4.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pump-emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="walk through a protocol v1 session in memory")
    d.add_argument("--pump-serial", type=int, default=1234, help="pump serial number (pump id)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if not 0 < args.pump_serial < p.BROADCAST_PUMP_ID:
            parser.error("--pump-serial must be 1..4294967294")
        return demo(args.pump_serial)
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":
    sys.exit(main())
