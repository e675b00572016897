"""Scale-out actually run (issue 18 item 5): two Mosquittos joined by Mosquitto's own bridge, a
fleet process on each, every programmer on the *other* broker than its pump's."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt

import programmer
import protocol as p

from .bridged import FleetProcess, retained, start_pair, wait_bridged

MG = 1_000_000
DOSES = (5_000_000, 6_000_000, 7_000_000)


async def program(address: str, key: Path, journal: Path) -> list[tuple[bytes, int, int]]:
    """Refill, then three doses, each acknowledged: [(command id, dose, program version)]."""
    acked = []
    async with programmer.connect(address, key=key, journal=journal) as pump:
        refill = await pump.prepare_refill(
            withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE, conc_ng_per_ml=25 * MG
        )
        await refill.commit()
        for dose in DOSES:
            version = (await pump.status()).program_version
            cid = uuid.uuid4().bytes
            ack = await pump.send_command(
                p.SetContinuousDose(
                    command_id=cid,
                    expected_program_version=version,
                    dose_ng_per_day=dose,
                    confirm_soft_limit=False,
                )
            )
            assert isinstance(ack, p.CommandAck)
            acked.append((cid, dose, ack.program_version))
    return acked


async def test_fleets_on_bridged_brokers_serve_programmers_across_the_bridge(
    tmp_path: Path,
) -> None:
    a, b = start_pair(tmp_path)
    fa = FleetProcess(a, tmp_path, "fa", 9100, 2, beacon_interval_s=0.5)
    fb = FleetProcess(b, tmp_path, "fb", 9200, 2, beacon_interval_s=0.5)
    try:
        await wait_bridged(a, b)
        fa.start()
        fb.start()
        # retained status crosses the bridge both ways
        await retained(b, "itp/v1/fleet/fa/status", b"online")
        await retained(a, "itp/v1/fleet/fb/status", b"online")
        await retained(b, "itp/v1/9101/status", b"online")
        await retained(a, "itp/v1/9200/status", b"online")
        # each programmer on the other broker: commands and answers cross the bridge
        acked_a, acked_b = await asyncio.gather(
            program(f"{b.url}/9100", fa.key(9100), tmp_path / "ja"),
            program(f"{a.url}/9200", fb.key(9200), tmp_path / "jb"),
        )
        # beacons cross too
        async with aiomqtt.Client(b.host, b.port) as watcher:
            await watcher.subscribe("itp/v1/9101/telemetry")
            async with asyncio.timeout(10):
                async for m in watcher.messages:
                    assert isinstance(m.payload, bytes)
                    frame = p.FrameDecoder().feed(m.payload)[0]
                    assert isinstance(frame, p.Frame) and frame.pump_id == 9101
                    break

        # kill fleet a without a clean stop: its last will reaches broker b, retained
        fa.kill()
        await retained(b, "itp/v1/fleet/fa/status", b"offline")
        fa.start()  # the same state directory: the pumps' memories
        await retained(b, "itp/v1/fleet/fa/status", b"online")

        async with programmer.connect(
            f"{b.url}/9100", key=fa.key(9100), journal=tmp_path / "ja"
        ) as pump:
            st = await pump.status()
            last_cid, last_dose, last_version = acked_a[-1]
            assert st.daily_dose_ng == last_dose and st.program_version == last_version
            # every acknowledged command is on record, exactly once: repeating one (same id)
            # gets the original answer and changes nothing
            for cid, _, version in acked_a:
                cs = await pump.command_status(cid)
                assert cs.program_version == version, cs
            again = await pump.send_command(
                p.SetContinuousDose(
                    command_id=last_cid,
                    expected_program_version=last_version - 1,
                    dose_ng_per_day=last_dose,
                    confirm_soft_limit=False,
                )
            )
            assert isinstance(again, p.CommandAck) and again.program_version == last_version
            assert (await pump.status()).program_version == last_version
        # the fleet on broker b was never disturbed
        async with programmer.connect(
            f"{a.url}/9200", key=fb.key(9200), journal=tmp_path / "jb"
        ) as pump:
            st = await pump.status()
            assert (st.daily_dose_ng, st.program_version) == acked_b[-1][1:]
    finally:
        fa.stop()
        fb.stop()
        b.stop()
        a.stop()
