"""The stored fuzz corpora (fuzz/corpus/<target>/) replayed through the harnesses' own
`test_one_input` (reliability.md claim 1, security.md section 6 row 2): every input the
coverage-guided runs kept must still pass the oracle. Needs no atheris.

Also checks that the corpora are there (so the replay cannot pass vacuously), that the
harnesses' independent key derivation matches the published vectors, and that each oracle does
fail when the property it guards is broken on purpose."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import protocol as p
from emulator._device import PumpDevice
from fuzz import _common, fuzz_decoder, fuzz_device, fuzz_session

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
TARGETS: dict[str, Callable[[bytes], None]] = {
    "decoder": fuzz_decoder.test_one_input,
    "session": fuzz_session.test_one_input,
    "device": fuzz_device.test_one_input,
}
MAX_CORPUS_BYTES = 2_000_000


def _files(target: str) -> list[Path]:
    folder = CORPUS / target
    return sorted(f for f in folder.iterdir() if f.is_file()) if folder.is_dir() else []


CASES = [(t, f) for t in TARGETS for f in _files(t)]


@pytest.mark.parametrize("target", list(TARGETS))
def test_each_corpus_is_stored_and_small(target: str) -> None:
    files = _files(target)
    assert len(files) >= 20, f"fuzz/corpus/{target} holds {len(files)} inputs"
    assert any(f.stat().st_size > 16 for f in files)
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    assert total < MAX_CORPUS_BYTES, total


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{f.name}" for t, f in CASES])
def test_corpus_input_passes_the_oracle(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


def test_the_oracle_derives_the_published_session_keys() -> None:
    """_common re-derives keys and tags itself; check that against tests/vectors."""
    hs = json.loads((ROOT / "tests" / "vectors" / "handshake.json").read_text())
    inp = hs["inputs"]
    okm = _common.hkdf_sha256(
        bytes.fromhex(inp["K_clinician"]),
        bytes.fromhex(hs["hkdf_salt"]),
        bytes.fromhex(hs["hkdf_info"]),
        64,
    )
    assert okm.hex() == hs["k_h2p"] + hs["k_p2h"]
    assert _common.KEY_BYTES[p.Role.CLINICIAN].hex() == inp["K_clinician"]
    ex = _common.Exchange(
        p.Role.CLINICIAN,
        b"",
        b"",
        _common.only_frame(bytes.fromhex(hs["frames"]["hello"])),
        _common.only_frame(bytes.fromhex(hs["frames"]["confirm"])),
        inp["session_id"],
        okm[:32],
    )
    sealed = bytes.fromhex(hs["frames"]["set_continuous_dose"])
    assert _common.sealed_role(_common.only_frame(sealed), [ex]) is p.Role.CLINICIAN
    forged = bytearray(sealed)
    forged[30] ^= 1  # a payload bit; the CRC is recomputed as an attacker would
    forged[-2:] = p.frame_crc(bytes(forged[:-2]), p.SetContinuousDose.SEED).to_bytes(2, "little")
    assert _common.sealed_role(_common.only_frame(bytes(forged)), [ex]) is None


def _clinician_status() -> bytes:
    """A GET_STATUS sealed in the harnesses' clinician session with one bit of its seq field
    flipped and the CRC recomputed: a forgery only a broken tag check would accept."""
    _, (host,) = _common.handshake(_common.pump_security(), (p.Role.CLINICIAN,), 0)
    frame = bytearray(host.seal(p.GetStatus(), seq=1))
    frame[6] ^= 1  # the seq field, covered by the tag
    frame[-2:] = p.frame_crc(bytes(frame[:-2]), p.GetStatus.SEED).to_bytes(2, "little")
    return bytes(frame)


def test_the_decoder_oracle_fails_on_an_undocumented_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = p.encode_frame(p.GetStatus(), pump_id=_common.PUMP_ID, seq=1, from_pump=False)
    fuzz_decoder.test_one_input(b"\x00" + frame)

    def broken(self: p.Frame) -> p.Message:
        raise ValueError("not a documented error")

    monkeypatch.setattr(p.Frame, "decode", broken)
    with pytest.raises(ValueError, match="not a documented error"):
        fuzz_decoder.test_one_input(b"\x00" + frame)


def test_the_session_oracle_fails_when_a_forgery_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forged = b"\x01" + _clinician_status()
    fuzz_session.test_one_input(forged)  # rejected: AUTH_FAILED, nothing changes
    monkeypatch.setattr(p._session._Channel, "verify", lambda self, frame: None)
    with pytest.raises(AssertionError, match="not validly sealed was accepted"):
        fuzz_session.test_one_input(forged)


def test_the_device_oracle_fails_when_an_input_changes_the_therapy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = fuzz_device.rig()
    info = p.encode_frame(p.GetDeviceInfo(), pump_id=_common.PUMP_ID, seq=1, from_pump=False)
    fuzz_device.test_one_input(info)
    original = PumpDevice._read

    def tampering(self: PumpDevice, msg: p.Message) -> p.Message:
        self.pump._s.dose_ng_per_day += 1  # a read that changes the therapy
        return original(self, msg)

    monkeypatch.setattr(PumpDevice, "_read", tampering)
    try:
        with pytest.raises(AssertionError, match="state changed without a valid command"):
            fuzz_device.test_one_input(info)
    finally:
        rig.reset()
    monkeypatch.undo()
    fuzz_device.test_one_input(info)


def test_the_device_oracle_exempts_only_validly_sealed_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A validly sealed command is applied, exempt from the state check, and the device is
    reopened from its pristine copy; the same command with its tag broken changes nothing."""
    rig = fuzz_device.rig()
    _, (host,) = _common.handshake(_common.pump_security(), (p.Role.CLINICIAN,), 0)
    dose = p.SetContinuousDose(bytes(range(50, 66)), rig.program_version, 12_000_000, True)
    command = host.seal(dose, seq=1)
    applied: list[int] = []
    reset = rig.reset

    def counting_reset() -> None:
        applied.append(rig.device.stats.commands_applied)
        reset()

    monkeypatch.setattr(rig, "reset", counting_reset)
    fuzz_device.test_one_input(command)
    assert applied == [1]
    frame = bytearray(command)
    frame[-3] ^= 1  # the last tag byte
    frame[-2:] = p.frame_crc(bytes(frame[:-2]), p.SetContinuousDose.SEED).to_bytes(2, "little")
    fuzz_device.test_one_input(bytes(frame))
    assert applied == [1]
