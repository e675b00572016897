"""Key hygiene after the whole suite (security.md 6.8): no role key, in any encoding, in any file
the suite left behind (emulator logs and traces, pump stores and their WAL, programmer journals,
scenario reports, broker logs, CLI output) nor in any test's exception text or captured output.

This test runs after every other one (marker `sweep_after_suite`, ordered by conftest.py). It
first makes its own artefacts, with every log at DEBUG and a refused command, so it also checks
something when run alone.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions

from .conftest import REPORT_TEXTS, SUMMARY

KEY_NAMES = ("clinician.key", "patient.key")


def encodings(key: bytes) -> set[bytes]:
    """The forms a key could leak in: raw, hex (both cases), base64 (standard and URL-safe,
    with and without padding)."""
    forms = {key, key.hex().encode(), key.hex().upper().encode()}
    for b64 in (base64.b64encode(key), base64.urlsafe_b64encode(key)):
        forms |= {b64, b64.rstrip(b"=")}
    return forms


async def make_artefacts(tmp_path: Path) -> None:
    options = ServerOptions(speed_milli=100_000, trace=tmp_path / "trace.jsonl")
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.port_path
        async with programmer.connect(
            f"serial://{server.port_path}",
            key=server.key_files[p.Role.CLINICIAN],
            journal=tmp_path / "journal.sqlite",
        ) as pump:
            refill = await pump.prepare_refill(
                withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE, conc_ng_per_ml=25_000_000
            )
            await refill.commit()
            with pytest.raises(programmer.Refused):
                await pump.cancel_bolus()  # nothing to cancel: an error text
        with pytest.raises(programmer.KeyMismatch) as wrong:
            async with programmer.connect(
                f"serial://{server.port_path}",
                key=server.key_files[p.Role.PATIENT],  # the patient key for the clinician role
                journal=tmp_path / "journal.sqlite",
            ):
                pass  # pragma: no cover
        logging.getLogger("test").error("refused: %s", wrong.value)


def _read_text(f: Path) -> str:
    try:
        return f.read_text()
    except FileNotFoundError:  # removed since the listing
        return ""


@pytest.mark.sweep_after_suite
async def test_no_key_bytes_in_any_artefact_of_the_suite(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_artefacts(tmp_path)
    root = tmp_path_factory.getbasetemp()
    files = [f for f in root.rglob("*") if f.is_file() and not f.is_symlink()]
    keys = {text.strip() for f in files if f.name in KEY_NAMES and (text := _read_text(f))}
    assert len(keys) >= 2  # at least this test's own pump
    needles = {form for k in keys for form in encodings(bytes.fromhex(k))}
    texts = [*REPORT_TEXTS, caplog.text]
    hits = []
    scanned = 0
    vanished = 0
    for f in files:
        if f.name in KEY_NAMES:
            continue
        try:
            data = f.read_bytes()
        except FileNotFoundError:  # removed since the listing (a journal's -wal, a pid file)
            vanished += 1
            continue
        scanned += len(data)
        hits += [f"{f.relative_to(root)}" for n in needles if n in data]
    for i, text in enumerate(texts):
        data = text.encode()
        scanned += len(data)
        hits += [f"report text {i}" for n in needles if n in data]
    SUMMARY.append(
        f"key hygiene: {len(keys)} keys x {len(needles) // max(len(keys), 1)} encodings, "
        f"{len(files) - vanished} files and {len(texts)} report texts ({scanned:,} bytes): "
        f"{len(hits)} hits"
    )
    assert hits == []


def test_the_sweep_finds_a_key_where_there_is_one(tmp_path: Path) -> None:
    """The sweep's matching is not vacuous: each encoding of a key is found in a file."""
    key = bytes(range(7, 39))
    for i, form in enumerate(sorted(encodings(key))):
        (tmp_path / f"log{i}.txt").write_bytes(b"... detail: " + form + b" ...")
    found = {f.name for f in tmp_path.iterdir() if any(n in f.read_bytes() for n in encodings(key))}
    assert len(found) == len(encodings(key)) >= 5
