"""The plain DEVICE_INFO read to find a pump is a claim, not a proof (docs/protocol.md section
10): the programmer reads it again sealed once the session is up and keeps the pump's own
answer. A forged "protocol 1.0" DEVICE_INFO on the line therefore cannot make a forged plain
UNKNOWN_MESSAGE the answer to a 1.1 read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import programmer
import programmer._links
import protocol as p
from emulator import EmulatorServer, ServerOptions

from .helpers import only_frame

SPEED = 100_000


class Forger:
    """Wraps the programmer's link. Ahead of each genuine answer it puts on the pump's side of
    the pty: a plain DEVICE_INFO saying protocol 1.0 (for the plain GET_DEVICE_INFO), and a
    plain UNKNOWN_MESSAGE for every sealed GET_CATHETER_INFO (what a 1.0 pump would send)."""

    def __init__(self, inner: Any, pty: Any, genuine: p.DeviceInfo) -> None:
        self.inner, self.bytes_per_s, self.pty = inner, inner.bytes_per_s, pty
        self.fake = dataclasses.replace(genuine, protocol_minor=0)
        self.forged = 0

    async def send(self, data: bytes) -> None:
        frame = only_frame(data)
        if not frame.authenticated and frame.msg_id == p.GetDeviceInfo.MSG_ID:
            self.pty.send(
                p.encode_frame(self.fake, pump_id=self.fake.serial_number, seq=frame.seq,
                               from_pump=True)
            )  # fmt: skip
            self.forged += 1
        if frame.authenticated and frame.msg_id == p.GetCatheterInfo.MSG_ID:
            err = p.Error(
                code=p.ErrorCode.UNKNOWN_MESSAGE,
                request_msg_id=frame.msg_id,
                command_id=bytes(16),
                detail="forged",
            )
            self.pty.send(
                p.encode_frame(err, pump_id=self.fake.serial_number, seq=frame.seq,
                               from_pump=True)
            )  # fmt: skip
            self.forged += 1
        await self.inner.send(data)

    async def recv(self) -> p.Frame:
        frame: p.Frame = await self.inner.recv()
        return frame

    async def close(self) -> None:
        await self.inner.close()


async def test_a_forged_plain_device_info_is_replaced_by_the_sealed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=SPEED)) as server:
        key = server.key_files[p.Role.CLINICIAN]
        address = f"serial://{server.port_path}"
        async with programmer.connect(address, key=key, journal=tmp_path / "a") as honest:
            genuine = honest.device
            assert genuine is not None and genuine.protocol_minor == 1
            assert honest.device_claims_refuted == 0  # the plain and the sealed one agree

        real_open = programmer._links.open_link
        forgers: list[Forger] = []

        async def forged_open(addr: Any) -> Any:
            forgers.append(Forger(await real_open(addr), server.pty, genuine))
            return forgers[-1]

        monkeypatch.setattr("programmer._connect.open_link", forged_open)
        async with programmer.connect(address, key=key, journal=tmp_path / "b") as pump:
            assert pump.device is not None and pump.device.protocol_minor == 1
            assert pump.device_claims_refuted == 1
            catheter = await pump.catheter()  # the forged UNKNOWN_MESSAGE is not the answer
            assert catheter.catheter_volume_nl == server.device.pump.catheter_volume_nl
            assert pump.plain_errors_ignored == 1
        assert forgers and forgers[0].forged == 2
