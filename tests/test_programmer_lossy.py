"""Exactly once over a bad link: a test double between the real programmer and the real
emulator drops, duplicates, corrupts and reorders frames in both directions."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions

MG = 1_000_000


class HostCrash(Exception):
    """The programmer's process dies here (mid-command)."""


@dataclass
class LossyLink:
    """Wraps a real link. Shares are per frame, in each direction. `crash`: share of sends at
    which the host process dies, half the time just after the frame went out."""

    inner: Any  # the real link
    rng: random.Random
    drop: float = 0.2
    duplicate: float = 0.1
    corrupt: float = 0.05
    reorder: float = 0.05
    crash: float = 0.0
    held: list[p.Frame] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    crashed: bool = False

    @property
    def bytes_per_s(self) -> float | None:
        rate: float | None = self.inner.bytes_per_s
        return rate

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def send(self, data: bytes) -> None:
        if self.crashed:
            raise HostCrash  # a dead process sends nothing (not even END_SESSION)
        if self.rng.random() < self.crash:
            self.crashed = True
            self._count("host crashed")
            if self.rng.random() < 0.5:
                await self.inner.send(data)
            raise HostCrash
        r = self.rng.random()
        if r < self.drop:
            self._count("dropped out")
            return
        if r < self.drop + self.corrupt:
            self._count("corrupted out")
            b = bytearray(data)
            b[self.rng.randrange(len(b))] ^= 1 << self.rng.randrange(8)
            data = bytes(b)
        await self.inner.send(data)
        if self.rng.random() < self.duplicate:
            self._count("duplicated out")
            await self.inner.send(data)

    async def recv(self) -> p.Frame:
        while True:
            if self.held and self.rng.random() < 0.5:
                return self.held.pop(0)
            frame: p.Frame = await self.inner.recv()
            r = self.rng.random()
            if r < self.drop:
                self._count("dropped in")
                continue
            if r < self.drop + self.reorder:
                self._count("reordered in")
                self.held.append(frame)
                continue
            if self.rng.random() < self.duplicate:
                self._count("duplicated in")
                self.held.append(frame)
            return frame

    async def close(self) -> None:
        await self.inner.close()


def next_command(rng: random.Random, i: int, version: int) -> tuple[p.Message, fm.EventKind]:
    cid = uuid.UUID(int=rng.getrandbits(128)).bytes
    if i % 2:
        return p.SetContinuousDose(
            command_id=cid,
            expected_program_version=version,
            dose_ng_per_day=rng.randrange(1, 10) * MG,
            confirm_soft_limit=False,
        ), fm.EventKind.PROGRAM_CHANGED
    return p.StartClinicianBolus(
        command_id=cid,
        expected_program_version=version,
        dose_ng=50_000,
        duration_ms=60_000,
        then_stop=False,
        confirm_soft_limit=True,
    ), fm.EventKind.BOLUS_STARTED


async def lossy_run(tmp_path: Path, commands: int, seed: int, crash: float = 0.01) -> None:
    """`commands` commands through a bad link; the host process dies at a share `crash` of its
    sends and restarts (same journal): the outcome of the command it died in is what the new
    run's journal resolution says (`pump.recovered`), never a re-send."""
    rng = random.Random(seed)
    outcomes: dict[bytes, str] = {}
    kinds: dict[bytes, fm.EventKind] = {}
    counts: dict[str, int] = {}
    restarts = 0
    journal = tmp_path / "journal.sqlite"
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=100_000)) as server:
        assert server.port_path
        address = f"serial://{server.port_path}"
        key = server.key_files[p.Role.CLINICIAN]
        while len(outcomes) < commands:
            try:
                async with programmer.connect(
                    address, key=key, journal=journal, timeout_s=0.02, retries=12
                ) as pump:
                    for cid, _, outcome in pump.recovered:
                        assert outcomes[cid] == "in flight"
                        outcomes[cid] = outcome
                    if not outcomes:
                        refill = await pump.prepare_refill(
                            withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE,
                            conc_ng_per_ml=25 * MG,
                        )  # fmt: skip
                        await refill.commit()
                        await (await pump.prepare_dose(3 * MG)).commit()
                    lossy = LossyLink(pump.link, rng, crash=crash)
                    pump.link = lossy  # type: ignore[assignment]
                    try:
                        version = (await pump.status()).program_version
                        while len(outcomes) < commands:
                            msg, kind = next_command(rng, len(outcomes), version)
                            cid = msg.command_id  # type: ignore[attr-defined]
                            kinds[cid], outcomes[cid] = kind, "in flight"
                            try:
                                answer = await pump.send_command(msg)
                                outcomes[cid] = "applied"
                                version = answer.program_version
                            except programmer.Refused as exc:
                                outcomes[cid] = f"refused {exc.code.name}"
                            except programmer.Unreachable:
                                outcomes[cid] = "unknown"
                                version = (await pump.status()).program_version
                        # resolve what the link hid: never by re-sending, by asking
                        for cid, outcome in list(outcomes.items()):
                            if outcome == "unknown":
                                status = await pump.command_status(cid)
                                outcomes[cid] = status.state.name.lower()
                    finally:
                        for k, v in lossy.counts.items():
                            counts[k] = counts.get(k, 0) + v
                    pump.link = lossy.inner
                    truth = {cid: (await pump.command_status(cid)).state for cid in outcomes}
            except HostCrash:
                restarts += 1
        log = server.device.pump.events()
    applied_effects: dict[bytes, int] = {}
    for e in log:
        if e.command_id in kinds and e.kind is kinds[e.command_id]:
            applied_effects[e.command_id] = applied_effects.get(e.command_id, 0) + 1
    assert sum(counts.values()) > commands // 2  # the link really was bad
    assert restarts == counts.get("host crashed", 0) and (crash == 0 or restarts > 0)
    print(f"{commands} commands, {restarts} host restarts, link faults {counts}")
    for cid, outcome in outcomes.items():
        assert outcome not in ("unknown", "in flight"), "every outcome known at the end"
        state = truth[cid]
        if outcome == "applied":
            assert state is p.CommandState.APPLIED
            assert applied_effects.get(cid) == 1, "applied exactly once"
        else:
            assert applied_effects.get(cid, 0) == 0, f"a command {outcome} was applied"
    assert all(n == 1 for n in applied_effects.values())
    jrn = programmer.Journal(journal)
    assert jrn.pending(1234) == []
    jrn.close()


async def test_exactly_once_over_a_lossy_link(tmp_path: Path) -> None:
    await lossy_run(tmp_path, commands=1_000, seed=7)


@pytest.mark.slow
async def test_exactly_once_over_a_lossy_link_large(tmp_path: Path) -> None:
    for seed in range(10):
        await lossy_run(tmp_path / str(seed), commands=1_000, seed=seed)


async def test_noise_in_a_message_id_is_not_the_commands_fate(tmp_path: Path) -> None:
    """A bit error in a command's msg_id draws UNKNOWN_MESSAGE (decided from the header alone);
    the programmer must not take it for the command's refusal."""

    class NoisyOnce:
        def __init__(self, inner: Any) -> None:
            self.inner, self.bytes_per_s, self.hit = inner, inner.bytes_per_s, False

        async def send(self, data: bytes) -> None:
            if not self.hit and data[8:10] == p.SetContinuousDose.MSG_ID.to_bytes(2, "little"):
                self.hit = True
                data = data[:8] + (0x7777).to_bytes(2, "little") + data[10:]
            await self.inner.send(data)

        async def recv(self) -> p.Frame:
            frame: p.Frame = await self.inner.recv()
            return frame

        async def close(self) -> None:
            await self.inner.close()

    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=100_000)) as server:
        assert server.port_path
        async with programmer.connect(
            f"serial://{server.port_path}",
            key=server.key_files[p.Role.CLINICIAN],
            journal=tmp_path / "journal.sqlite",
            timeout_s=0.2,
        ) as pump:
            refill = await pump.prepare_refill(
                withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE, conc_ng_per_ml=25 * MG
            )
            await refill.commit()
            noisy = NoisyOnce(pump.link)
            pump.link = noisy
            ack = await (await pump.prepare_dose(3 * MG)).commit()
            assert noisy.hit and isinstance(ack, p.CommandAck)
            assert (await pump.status()).daily_dose_ng == 3 * MG
