"""Write the seed corpus of each fuzz target: valid frames (tests/vectors), frames sealed in the
harnesses' fixed sessions, handshake frames, truncations, concatenations and replays.

    .venv/bin/python fuzz/make_seeds.py [OUT_DIR]      (default: fuzz/corpus; one folder per target)

Existing files are kept; seeds are named `seed-...`. libFuzzer's `-merge=1` later keeps only the
inputs that add coverage (README.md).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import protocol as p
from fuzz import fuzz_device
from fuzz._common import KEYS, PUMP_ID, handshake, pump_security
from fuzz.fuzz_session import NOW_MS
from protocol import gen

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"


def _vector_frames() -> Iterator[tuple[str, bytes]]:
    messages = json.loads((VECTORS / "messages.json").read_text())
    for m in messages["messages"]:
        for v in m["vectors"]:
            yield f"{m['name'].lower()}-{v['variant']}", bytes.fromhex(v["frame"])
    hs = json.loads((VECTORS / "handshake.json").read_text())
    for name, hexed in hs["frames"].items():
        yield f"handshake-{name}", bytes.fromhex(hexed)
    crc = json.loads((VECTORS / "crc.json").read_text())
    yield "crc-example", bytes.fromhex(crc["frame_example"]["frame"])


def _stream_cases() -> Iterator[tuple[str, bytes]]:
    cases = json.loads((VECTORS / "stream.json").read_text())["cases"]
    for i, case in enumerate(cases):
        yield f"stream-{i}", bytes.fromhex(case["stream"])


def _to_pump_examples(rng: random.Random) -> list[p.Message]:
    """One example of every host-to-pump message."""
    out = []
    for msg_id in sorted(p.MESSAGES):
        cls = p.MESSAGES[msg_id]
        if cls.DIRECTION is p.Direction.HOST_TO_PUMP:
            out.append(gen._example(cls, "sample", rng))
    return out


def _sealed(roles: tuple[p.Role, ...], messages: list[p.Message]) -> list[bytes]:
    """`messages` sealed by the last of `roles`, in the sessions the harnesses set up."""
    _, hosts = handshake(pump_security(), roles, NOW_MS)
    host = hosts[-1]
    return [host.seal(m, seq=i + 1) for i, m in enumerate(messages)]


def _device_commands(version: int) -> list[p.Message]:
    """Therapy commands the ready pump of fuzz_device accepts (and two it refuses)."""
    cid = bytes(range(100, 116))
    return [
        p.SetContinuousDose(cid, version, 12_000_000, True),
        p.StartClinicianBolus(
            command_id=cid,
            expected_program_version=version,
            dose_ng=100_000,
            duration_ms=600_000,
            then_stop=False,
            confirm_soft_limit=True,
        ),
        p.Suspend(command_id=cid, expected_program_version=version),
        p.SetClock(command_id=cid, pump_time_ms=12_345),
        p.SetContinuousDose(cid, version + 1, 12_000_000, True),  # version mismatch
        p.SetContinuousDose(cid, version, 4_000_000_000, False),  # beyond the limits
    ]


def _reads() -> list[p.Message]:
    return [
        p.GetStatus(),
        p.GetProgram(),
        p.GetDeviceInfo(),
        p.GetAlarms(),
        p.GetEvents(cursor=0, max_count=8),
        p.GetCommandStatus(command_id=bytes(range(1, 17))),
        p.GetDrug(),
        p.GetClock(),
    ]


def _mangled(name: str, frame: bytes) -> Iterator[tuple[str, bytes]]:
    yield f"{name}-cut-half", frame[: len(frame) // 2]
    yield f"{name}-cut-crc", frame[:-1]
    flipped = bytearray(frame)
    flipped[len(frame) // 2] ^= 0x10
    yield f"{name}-flip", bytes(flipped)


def decoder_seeds() -> Iterator[tuple[str, bytes]]:
    rng = random.Random(5)
    frames = list(_vector_frames())
    for name, frame in frames:
        yield name, b"\x00" + frame
    for name, stream in _stream_cases():
        yield name, b"\x00" + stream
        yield name + "-bytewise", b"\x01" + stream
        yield name + "-chunk7", b"\x07" + stream
    sealed = _sealed((p.Role.CLINICIAN,), _to_pump_examples(rng)[:6])
    for i, frame in enumerate(sealed):
        yield f"sealed-{i}", b"\x00" + frame
        for n, d in _mangled(f"sealed-{i}", frame):
            yield n, b"\x05" + d
    for name, frame in rng.sample(frames, 12):
        for n, d in _mangled(name, frame):
            yield n, b"\x00" + d + frames[0][1]
    yield "concat", b"\x03" + b"".join(f for _, f in rng.sample(frames, 6))
    yield "empty", b"\x00"


def session_seeds() -> Iterator[tuple[str, bytes]]:
    rng = random.Random(6)
    examples = _to_pump_examples(rng)
    ex, _ = handshake(pump_security(), (p.Role.CLINICIAN, p.Role.PATIENT), NOW_MS)
    clinician, patient = ex
    plain_open = p.encode_frame(p.GetDeviceInfo(), pump_id=PUMP_ID, seq=1, from_pump=False)
    yield "open", b"\x00" + plain_open
    yield "handshake", b"\x00" + clinician.hello + clinician.confirm
    yield "hello-only", b"\x00" + clinician.hello
    yield "pending-confirm", b"\x03" + patient.confirm
    yield "pending-confirm-late", b"\x0b" + patient.confirm
    yield "confirm-no-hello", b"\x00" + clinician.confirm
    yield "confirm-again", b"\x01" + clinician.confirm
    yield "hello-flood", b"\x10" + clinician.hello * 3 + patient.hello * 2
    yield "bad-confirms", b"\x10" + (clinician.confirm + patient.confirm) * 3
    for i, frame in enumerate(_sealed((p.Role.CLINICIAN,), examples)):
        yield f"clinician-{i}", b"\x01" + frame
    for i, frame in enumerate(_sealed((p.Role.CLINICIAN, p.Role.PATIENT), examples[:12])):
        yield f"patient-{i}", b"\x02" + frame
    status = _sealed((p.Role.CLINICIAN,), [p.GetStatus()] * 10)
    yield "replay", b"\x01" + status[0] + status[0]
    yield "out-of-order", b"\x01" + status[3] + status[1] + status[2]
    yield "counter-exhausted", b"\x11" + b"".join(status)
    yield "idle-expired", b"\x0d" + status[0]
    yield "end-session", b"\x01" + _sealed((p.Role.CLINICIAN,), [p.EndSession(), p.GetStatus()])[0]
    for name, frame in (("status", status[0]), ("patient", plain_open)):
        for n, d in _mangled(name, frame):
            yield n, b"\x01" + d
    yield (
        "foreign-pump",
        b"\x01" + p.encode_frame(p.GetDeviceInfo(), pump_id=PUMP_ID + 1, seq=1, from_pump=False),
    )
    assert KEYS  # the sessions above use the fixed keys of _common


def device_seeds() -> Iterator[tuple[str, bytes]]:
    rig = fuzz_device.rig()
    version = rig.program_version
    reads = _reads()
    for i, frame in enumerate(_sealed((p.Role.CLINICIAN,), reads)):
        yield f"read-{i}", frame
    for i, frame in enumerate(_sealed((p.Role.CLINICIAN,), _device_commands(version))):
        yield f"command-{i}", frame
        yield from _mangled(f"command-{i}", frame)
    ex, _ = handshake(pump_security(), (p.Role.CLINICIAN,), NOW_MS)
    yield "handshake", ex[0].hello + ex[0].confirm
    for name, frame in list(_vector_frames())[::3]:
        yield name, frame
    yield "unknown-message", bytes.fromhex("e71a010000000100ffffd2040000") + b"\0\0"
    yield "version-2", bytes.fromhex("e71a0200000001000201d2040000") + b"\0\0"


TARGETS = {"decoder": decoder_seeds, "session": session_seeds, "device": device_seeds}


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "fuzz" / "corpus"
    for target, seeds in TARGETS.items():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        count = 0
        for name, data in seeds():
            (folder / f"seed-{name}").write_bytes(data)
            count += 1
        print(f"{target}: {count} seeds in {folder}")


if __name__ == "__main__":
    main(sys.argv)
