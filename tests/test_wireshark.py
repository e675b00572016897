"""The generated Wireshark dissector, run by tshark: every message type decodes with the values
`protocol` decodes (golden vectors, a pty trace converted to pcap, a real MQTT capture on
loopback), no malformed marks, and a corrupted CRC is shown as bad; the trace converter refuses
what is not a trace."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from pathlib import Path

import pytest

import protocol as p
from emulator import EmulatorServer, ServerOptions, cli, pcap
from emulator.testing import Broker
from protocol import gen

from .e2e_client import MqttTransport, SerialTransport
from .e2e_helpers import HOST_MESSAGES, clinician, connected, every_message, mqtt_options
from .wireshark_helpers import (
    ERROR,
    LUA,
    WARN,
    assert_clean,
    check_frame,
    dissect,
    experts,
    frame_bytes,
    frames,
    values,
)

VECTORS = Path(__file__).resolve().parent / "vectors"
T0 = 1_795_315_613_000.0
BEACON_ID = p.TelemetryBeacon.MSG_ID.to_bytes(2, "little")


def _records(frames_: list[tuple[bytes, bool]], link: str = "pty") -> list[pcap.TraceRecord]:
    return [
        pcap.TraceRecord(T0 + i, link, "out" if from_pump else "in", raw)
        for i, (raw, from_pump) in enumerate(frames_)
    ]


def _write(path: Path, frames_: list[tuple[bytes, bool]]) -> Path:
    path.write_bytes(pcap.pcap_bytes(_records(frames_)))
    return path


def test_every_golden_vector_decodes_with_its_values(tmp_path: Path) -> None:
    vectors = json.loads((VECTORS / "messages.json").read_text(encoding="utf-8"))["messages"]
    sent = [(m["name"], v) for m in vectors for v in m["vectors"]]
    handshake = json.loads((VECTORS / "handshake.json").read_text(encoding="utf-8"))
    sealed = [bytes.fromhex(h) for h in handshake["frames"].values()]
    data = [(bytes.fromhex(v["frame"]), v["from_pump"]) for _, v in sent]
    data += [(raw, bool(raw[3] & 0x04)) for raw in sealed]
    packets = dissect(_write(tmp_path / "vectors.pcap", data))
    assert len(packets) == len(data)
    names = []
    for packet, (raw, _) in zip(packets, data, strict=True):
        assert_clean(packet)
        (proto,) = frames(packet)
        assert frame_bytes(proto) == raw
        _, message = check_frame(proto)
        names.append(message.NAME)
    for (name, vector), message_name in zip(sent, names, strict=False):
        assert message_name == name
        cls = p.MESSAGES_BY_NAME[name]
        assert cls.decode_payload(bytes.fromhex(vector["payload"])) == gen.from_json(
            cls, vector["fields"]
        )
    assert set(names) == {cls.NAME for cls in p.MESSAGES.values()}
    # the sealed handshake frames: session header shown, the session id the example's
    sealed_protos = [frames(pk)[0] for pk in packets[len(sent) :]]
    session_ids = {values(x).get("itp.session_id") for x in sealed_protos}
    assert session_ids == {None, f"0x{handshake['inputs']['session_id']:08x}"}


def test_a_corrupted_crc_is_shown_as_bad(tmp_path: Path) -> None:
    good = p.encode_frame(p.GetStatus(), pump_id=1234, seq=7, from_pump=False)
    bad_crc = good[:-1] + bytes([good[-1] ^ 0x01])
    flipped = bytearray(
        p.encode_frame(
            p.Suspend(command_id=bytes(16), expected_program_version=1),
            pump_id=1234,
            seq=8,
            from_pump=False,
        )
    )
    flipped[20] ^= 0x80  # a payload bit: the CRC no longer matches
    packets = dissect(
        _write(tmp_path / "crc.pcap", [(good, False), (bad_crc, False), (bytes(flipped), False)])
    )
    statuses = [values(frames(pk)[0])["itp.crc.status"] for pk in packets]
    assert statuses == ["Good", "Bad", "Bad"]
    assert_clean(packets[0])
    for packet in packets[1:]:
        (crc_expert,) = [x for x in experts(packet) if x[0] == "itp.crc.bad"]
        assert crc_expert[1] == ERROR and "Bad CRC" in crc_expert[2]
    filtered = subprocess.run(
        [
            *("tshark", "-n", "-X", f"lua_script:{LUA}", "-r", str(tmp_path / "crc.pcap")),
            *("-Y", "itp.crc.bad", "-T", "fields", "-e", "itp.seq"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert filtered.stdout.split() == ["7", "8"]


async def test_every_message_of_a_pty_trace_decodes(tmp_path: Path) -> None:
    trace = tmp_path / "pump.trace"
    options = ServerOptions(speed_milli=100_000, trace=trace)
    async with EmulatorServer(tmp_path / "s", options) as server:
        assert server.port_path
        c = clinician(server, SerialTransport(server.port_path))
        assert await every_message(server, c) == HOST_MESSAGES
        await c.t.close()
    out = tmp_path / "pump.pcap"
    assert cli.main(["trace-to-pcap", str(trace), "-o", str(out)]) == 0
    with trace.open(encoding="utf-8") as f:
        records, _ = pcap.read_trace(f)
    packets = dissect(out)
    assert len(packets) == len(records) > len(HOST_MESSAGES) * 2
    names: set[str] = set()
    for packet, record in zip(packets, records, strict=True):
        assert_clean(packet)
        (proto,) = frames(packet)
        assert frame_bytes(proto) == record.frame
        frame, message = check_frame(proto)
        assert frame.from_pump == (record.direction == "out")
        names.add(message.NAME)
    assert names >= HOST_MESSAGES
    assert {"CHALLENGE", "SESSION_READY", "STATUS", "COMMAND_ACK", "REFILL_RESULT"} <= names


async def test_every_message_of_a_real_mqtt_capture_decodes(tmp_path: Path, broker: Broker) -> None:
    capture = tmp_path / "mqtt.pcapng"
    dumpcap = await asyncio.create_subprocess_exec(
        "dumpcap",
        "-q",
        "-i",
        "lo",
        "-f",
        f"tcp port {broker.port}",
        "-w",
        str(capture),
        stderr=asyncio.subprocess.PIPE,
    )
    assert dumpcap.stderr is not None
    async with asyncio.timeout(20):
        while b"Capturing on" not in await dumpcap.stderr.readline():
            pass
        # dumpcap says "Capturing on" before the capture is live; it creates the file once
        # it is (a pump connecting in between would be missed)
        while not capture.exists() or not capture.stat().st_size:
            await asyncio.sleep(0.01)
    trace = tmp_path / "pump.trace"
    try:
        options = mqtt_options(broker, serial=4326, speed_milli=100_000, trace=trace)
        async with EmulatorServer(tmp_path / "s", options) as server:
            await connected(server)
            c = clinician(server, await MqttTransport(broker.host, broker.port, 4326).open())
            assert await every_message(server, c) == HOST_MESSAGES
            await c.t.close()
        with trace.open(encoding="utf-8") as f:
            traced = [r.frame for r in pcap.read_trace(f)[0] if r.link == "mqtt"]
        # what the pump answered went through the broker (the host got it); beacons are sent
        # on the pump's own, and the last one traced may have been cut off by the shutdown
        answered = [raw for raw in traced if raw[8:10] != BEACON_ID]
        async with asyncio.timeout(30):  # dumpcap writes the file out about every 0.75 s
            while answered[-1] not in capture.read_bytes():
                await asyncio.sleep(0.05)
    finally:
        dumpcap.terminate()
        await dumpcap.wait()
    packets = dissect(capture, "-d", f"tcp.port=={broker.port},mqtt")
    seen: list[bytes] = []
    names: set[str] = set()
    for packet in packets:
        assert_clean(packet, only_itp=True)
        for proto in frames(packet):
            topic = values(proto)["itp.topic"]
            frame, message = check_frame(proto)
            assert topic.startswith("itp/v1/4326/")
            assert topic.endswith("/rsp" if frame.from_pump else "/cmd") or topic.endswith(
                "/telemetry"
            )
            seen.append(frame.raw)
            names.add(message.NAME)
    assert answered and set(answered) <= set(seen)  # every frame the pump handled, as captured
    assert HOST_MESSAGES | {"TELEMETRY_BEACON", "STATUS", "COMMAND_ACK"} <= names


def test_trace_to_pcap_refuses_what_is_not_a_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = '{"trace": "itp-frames", "version": 1, "pump_serial": 1}\n'
    frame = p.encode_frame(p.GetStatus(), pump_id=1, seq=1, from_pump=False).hex()
    line = f'{{"t_ms": 1, "link": "pty", "dir": "in", "hex": "{frame}"}}\n'
    cases = {
        "frames before the header": line,
        "not JSON": header + "{nope\n",
        "bad hex": header + '{"t_ms": 1, "link": "pty", "dir": "in", "hex": "zz"}\n',
        "bad direction": header + f'{{"t_ms": 1, "link": "pty", "dir": "up", "hex": "{frame}"}}\n',
        "empty": "",
    }
    for label, text in cases.items():
        trace = tmp_path / "t.trace"
        trace.write_text(text, encoding="utf-8")
        out = tmp_path / "t.pcap"
        assert cli.main(["trace-to-pcap", str(trace), "-o", str(out)]) == 2, label
        assert not out.exists(), label
        err = capsys.readouterr().err
        assert err.startswith(f"trace-to-pcap: {trace}: "), (label, err)
        assert ("line 2" in err) == (label in ("not JSON", "bad hex", "bad direction")), err
    trace.write_text(
        header
        + f'{{"t_ms": 1.5, "link": "serial", "dir": "in", "hex": "{frame}"}}\n'
        + '{"t_ms": 2, "link": "pty", "dir": "in", "error": "BadCrc(...)"}\n',
        encoding="utf-8",
    )
    assert pcap.main([str(trace)]) == 0
    assert "1 frames, 1 error lines skipped" in capsys.readouterr().out
    data = trace.with_suffix(".pcap").read_bytes()
    assert data[20:24] == pcap.DLT_USER0.to_bytes(4, "little")
    assert data[24 + 16 :] == bytes((1, 0, 2, 0)) + bytes.fromhex(frame)


def test_the_checked_in_dissector_is_the_generated_one() -> None:
    assert gen.generated_files()[LUA] == LUA.read_text(encoding="utf-8")


def test_damaged_frames_are_flagged_never_break_the_dissector(tmp_path: Path) -> None:
    vectors = json.loads((VECTORS / "messages.json").read_text(encoding="utf-8"))["messages"]
    rng = random.Random(16)
    data: list[tuple[bytes, bool]] = []
    for m in vectors:
        raw = bytes.fromhex(m["vectors"][2]["frame"])
        for cut in (1, 2, 13, 15, len(raw) - 1):
            data.append((raw[:cut], False))  # truncated
        for _ in range(4):
            b = bytearray(raw)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)  # one bit flipped
            data.append((bytes(b), False))
        data.append((raw + b"\x00", False))  # a byte too many
    packets = dissect(_write(tmp_path / "damaged.pcap", data))
    assert len(packets) == len(data)
    for packet, (raw, _) in zip(packets, data, strict=True):
        # a damaged frame is a malformed packet, marked by the dissector's own expert items:
        # no Lua error, no exception (Wireshark's _ws.malformed.expert), the damage named
        found = experts(packet)
        assert all(name.startswith("itp.") for name, _, _ in found), (raw.hex(), found)
        assert any(severity >= WARN for _, severity, _ in found), raw.hex()
