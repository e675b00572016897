"""Everything the emulator and the programmer write holds patient data or a credential: every
file they create is 0600 and every directory 0700, whatever the umask (issue 19 item 1)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import protocol as p
from emulator import open_device
from programmer import Journal

from .emulator_helpers import wait_ready


def _umasked(umask: int) -> list[str]:
    """This Python, started under `umask` (a shell sets it, then execs)."""
    return ["/bin/sh", "-c", f'umask {umask:03o} && exec "$0" "$@"', sys.executable]


def _modes(root: Path, skip: set[Path]) -> dict[str, int]:
    """Every file and directory under `root` (not `root` itself), with its permission bits."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path not in skip:
                found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_every_file_the_emulator_and_programmer_create_is_private(
    tmp_path: Path, umask: int
) -> None:
    xdg = tmp_path / "xdg" / "state"  # nothing of it exists: the default paths are made
    out = tmp_path / "out"
    out.mkdir()
    ready, trace = out / "ready.json", out / "trace.jsonl"
    env = {**os.environ, "XDG_STATE_HOME": str(xdg)}
    env.pop("ITP_JOURNAL", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as errors:
        serve = subprocess.Popen(
            [*_umasked(umask), "-m", "emulator.cli", "serve", "--ready-file", str(ready),
             "--trace", str(trace), "--control", "0", "--speed", "1000"],
            stdout=subprocess.DEVNULL, stderr=errors, env=env,
        )  # fmt: skip
    try:
        info = wait_ready(serve, ready, log)
        assert info["control_token"]
        assert stat.S_IMODE(os.stat(info["port"]).st_mode) == 0o600  # the pty carries frames
        key = info["key_files"][p.Role.CLINICIAN.name.lower()]
        done = subprocess.run(
            [*_umasked(umask), "-m", "programmer.cli", "interrogate",
             "--connect", f"serial://{info['port']}", "--key", key],
            check=False, capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        # The programmer's journal is closed (SQLite removed its -wal and -shm): open it again
        # here, under the same umask, while the pump's memory is open too.
        old_umask = os.umask(umask)
        try:
            journal = Journal(xdg / "itp-programmer" / "journal.sqlite")
        finally:
            os.umask(old_umask)
        try:
            journal.begin(b"\x01" * 8, 1234, "SetDailyDose", b"")
            while_serving = _modes(tmp_path, {out, log})
        finally:
            journal.close()
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(30)
    assert serve.returncode == 0, log.read_text()
    after = _modes(tmp_path, {out, log})
    for modes in (while_serving, after):
        wrong = {
            name: oct(mode)
            for name, mode in modes.items()
            if mode != (0o700 if (tmp_path / name).is_dir() else 0o600)
        }
        assert not wrong, wrong
    expected = {
        "xdg", "xdg/state", "xdg/state/itp-emulator", "xdg/state/itp-emulator/pump-1234",
        "xdg/state/itp-emulator/pump-1234/pump.sqlite",
        "xdg/state/itp-emulator/pump-1234/pump.sqlite-wal",
        "xdg/state/itp-emulator/pump-1234/pump.sqlite-shm",
        "xdg/state/itp-emulator/pump-1234/clinician.key",
        "xdg/state/itp-emulator/pump-1234/patient.key",
        "xdg/state/itp-programmer", "xdg/state/itp-programmer/journal.sqlite",
        "xdg/state/itp-programmer/journal.sqlite-wal",
        "xdg/state/itp-programmer/journal.sqlite-shm",
        "out/ready.json", "out/trace.jsonl",
    }  # fmt: skip
    assert expected <= set(while_serving), sorted(expected - set(while_serving))


def test_existing_files_of_an_older_version_are_tightened(tmp_path: Path) -> None:
    """A state directory, database and journal written 0644/0755 (before this fix) are made
    private when opened again."""
    state = tmp_path / "pump"
    open_device(state).store.close()  # type: ignore[union-attr]
    journal = tmp_path / "journal.sqlite"
    Journal(journal).close()
    loose = [state, state / "pump.sqlite", journal]
    for path in loose:
        path.chmod(0o755 if path.is_dir() else 0o644)
    open_device(state).store.close()  # type: ignore[union-attr]
    Journal(journal).close()
    assert [oct(stat.S_IMODE(path.stat().st_mode)) for path in loose] == ["0o700"] + ["0o600"] * 2


@pytest.mark.parametrize("durable", [True, False])
def test_a_fleets_state_and_key_directories_are_private(tmp_path: Path, durable: bool) -> None:
    """`pump-emulator fleet --state-dir` / `--keys-dir`: each pump's memory and keys."""
    from emulator._fleet import Fleet
    from emulator._mqtt import MqttSettings

    where = tmp_path / "fleet" / "pumps"
    old_umask = os.umask(0)
    try:
        fleet = Fleet(
            2,
            MqttSettings.from_url("mqtt://127.0.0.1:1"),  # never connected: start() not called
            state_dir=where if durable else None,
            keys_dir=None if durable else where,
        )
    finally:
        os.umask(old_umask)
    try:
        modes = _modes(tmp_path, set())
    finally:
        for rt in fleet.runtimes.values():
            if rt.device.store is not None:
                rt.device.store.close()
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (tmp_path / name).is_dir() else 0o600)
    }
    assert not wrong, wrong
    assert "fleet/pumps/pump-100001/clinician.key" in modes
    assert ("fleet/pumps/pump-100000/pump.sqlite-wal" in modes) is durable
