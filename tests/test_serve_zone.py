"""`pump-emulator serve --zone NAME`: a new pump's clinic zone with the zone's offset at its
start; an unknown zone is refused before anything starts (exit 2, no state directory); a stored
pump keeps the clinic clock of its memory, another zone is refused and changes nothing, the
same zone is accepted (docs/emulator.md section 1)."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest

import firmware_model as fm
import protocol as p
from emulator import open_device
from emulator._store import StoreError

from .emulator_helpers import T0, wait_ready

HOUR = 3_600_000


def offset_at(zone: str, at_ms: int) -> int:
    at = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC)
    off = at.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset()
    assert off is not None
    return off // datetime.timedelta(milliseconds=1)


def serve(state: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(state), *args],
        check=False, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_a_new_pump_served_in_a_zone(tmp_path: Path) -> None:
    ready, log = tmp_path / "ready.json", tmp_path / "log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(tmp_path / "s"),
             "--no-serial", "--zone", "America/St_Johns", "--ready-file", str(ready)],
            stdout=subprocess.PIPE, stderr=err,
        )  # fmt: skip
    try:
        info = wait_ready(proc, ready, log)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, log.read_text()
    assert info["zone"] == "America/St_Johns"
    # a half-hour zone, west of UTC: -03:30 in winter, -02:30 in summer
    pump = fm.restore(_stored_snapshot(tmp_path / "s"))
    assert (pump.status().zone, pump.status().utc_offset_ms) == (
        "America/St_Johns",
        info["utc_offset_ms"],
    )
    assert info["utc_offset_ms"] == offset_at("America/St_Johns", pump.events()[0].time_ms)
    assert f"clinic clock:  America/St_Johns ({p.offset_hhmm(info['utc_offset_ms'])})" in (
        out.decode()
    )
    (change,) = p.zone_changes((e.seq, int(e.kind), e.a, e.b) for e in pump.events()).values()
    assert (change.old_zone, change.new_zone) == ("UTC", "America/St_Johns")
    # its memory wins over another --zone: refused (exit 2), the store untouched
    before = _digest(tmp_path / "s")
    done = serve(tmp_path / "s", "--no-serial", "--zone", "Asia/Tokyo")
    assert done.returncode == 2 and "holds a pump set to America/St_Johns" in done.stderr
    assert _digest(tmp_path / "s") == before


def _stored_snapshot(state: Path) -> dict[str, object]:
    from emulator._store import Store

    store = Store(state / "pump.sqlite")
    try:
        saved = store.load()
        assert saved is not None
        return dict(saved.snapshot)
    finally:
        store.close()


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Paris/..", "", "/etc/localtime"])
def test_an_unknown_zone_is_refused_before_anything_starts(tmp_path: Path, zone: str) -> None:
    state = tmp_path / "s"
    done = serve(state, "--no-serial", "--zone", zone)
    assert done.returncode == 2
    assert "--zone" in done.stderr and "time zone" in done.stderr, done.stderr
    assert not state.exists()  # nothing was created: no memory, no keys
    assert done.stdout == ""


def test_zone_and_scenario_are_refused_together(tmp_path: Path) -> None:
    done = serve(tmp_path / "s", "--no-serial", "--zone", "Europe/Paris", "--scenario", "x")
    assert done.returncode == 2 and "a scenario sets its pump's clock" in done.stderr
    assert not (tmp_path / "s").exists()


def _open(state: Path, zone: str | None, wall: int = T0) -> fm.Pump:
    dev = open_device(state, zone=zone, wall=lambda: wall, monotonic_ns=lambda: 10**12)
    assert dev.store is not None
    dev.store.close()
    return dev.pump


def _digest(state: Path) -> str:
    return hashlib.sha256((state / "pump.sqlite").read_bytes()).hexdigest()


def test_a_stored_pump_keeps_the_clinic_clock_of_its_memory(tmp_path: Path) -> None:
    state = tmp_path / "s"
    pump = _open(state, "Europe/Paris")  # 1 January: CET
    assert (pump.status().zone, pump.status().utc_offset_ms) == ("Europe/Paris", HOUR)
    before = _digest(state)
    with pytest.raises(StoreError, match=r"holds a pump set to Europe/Paris \(\+01:00\), not Asia"):
        _open(state, "Asia/Tokyo")
    assert _digest(state) == before  # refused before anything was written
    # the same zone on a later start: accepted, and the pump keeps its offset even though
    # Paris has moved to summer time since (the pump never follows DST by itself)
    july = T0 + 182 * 24 * HOUR
    again = _open(state, "Europe/Paris", wall=july)
    assert (again.status().zone, again.status().utc_offset_ms) == ("Europe/Paris", HOUR)
    assert offset_at("Europe/Paris", july) == 2 * HOUR
    kinds = [e.kind for e in again.events()]
    assert kinds.count(fm.EventKind.ZONE_SET) == 1  # only the first start's
    # without --zone a stored pump also keeps its own
    assert _open(state, None, wall=july).status().zone == "Europe/Paris"


def test_a_stored_pump_synced_by_a_programmer_wins(tmp_path: Path) -> None:
    state = tmp_path / "s"
    dev = open_device(state, wall=lambda: T0, monotonic_ns=lambda: 10**12)
    dev.clock.jump_to(dev.clock.now() + 3_000)
    dev.advance()
    dev.pump.set_clock(dev.pump.clock_ms, utc_offset_ms=-5 * HOUR, zone="America/New_York")
    assert dev.flush() is None and dev.store is not None
    dev.store.close()
    with pytest.raises(StoreError, match="America/New_York"):
        _open(state, "UTC")
    assert _open(state, "America/New_York").status().utc_offset_ms == -5 * HOUR
