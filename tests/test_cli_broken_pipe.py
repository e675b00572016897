"""A command whose reader leaves early (`pump-emulator scenario list | head -1`) ends quietly
with the shell's SIGPIPE status (141), not with a BrokenPipeError traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run_into_a_closed_pipe(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        return subprocess.run(
            [sys.executable, "-m", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ["emulator.cli", "scenario", "list"],
        ["programmer.cli", "decode", "e71a0100000001000001d2040000c292"],  # GET_DEVICE_INFO
    ],
    ids=["pump-emulator", "pump-programmer"],
)
def test_a_reader_that_leaves_ends_the_command_quietly(args: list[str]) -> None:
    done = _run_into_a_closed_pipe(args)
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert b"BrokenPipeError" not in done.stderr, done.stderr.decode()
    assert done.returncode == 141
