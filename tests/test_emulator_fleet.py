"""A fleet: many pumps in one process on one MQTT connection, each its own pump."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt

import programmer
import protocol as p
from emulator import MqttSettings
from emulator._control import ControlPlane
from emulator._fleet import Fleet
from emulator.testing import Broker

MG = 1_000_000


async def test_a_fleet_serves_each_pump_on_one_connection(tmp_path: Path, broker: Broker) -> None:
    fleet = Fleet(
        20,
        MqttSettings.from_url(broker.url),
        first_serial=7000,
        speed_milli=100_000,
        beacon_interval_s=0.2,
        keys_dir=tmp_path / "keys",
        name="t1",
    )
    await fleet.start()
    try:
        await asyncio.wait_for(fleet.connected.wait(), 10)
        for serial in (7000, 7019):
            key = tmp_path / "keys" / f"pump-{serial}" / "clinician.key"
            async with programmer.connect(
                f"mqtt://{broker.host}:{broker.port}/{serial}", key=key, journal=tmp_path / "j"
            ) as pump:
                assert pump.serial == serial
                refill = await pump.prepare_refill(
                    withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE,
                    conc_ng_per_ml=25 * MG,
                )  # fmt: skip
                await refill.commit()
        # each pump has its own state: only the two programmed ones hold drug
        filled = [s for s, rt in fleet.runtimes.items() if rt.device.pump.status().reservoir_nl]
        assert filled == [7000, 7019]
        # beacons of many pumps arrive, each from its own topic
        seen: set[int] = set()
        async with aiomqtt.Client(broker.host, broker.port) as watcher:
            await watcher.subscribe("itp/v1/+/telemetry")
            async with asyncio.timeout(5):
                async for m in watcher.messages:
                    assert isinstance(m.payload, bytes)
                    frame = p.FrameDecoder().feed(m.payload)[0]
                    assert isinstance(frame, p.Frame)
                    assert str(m.topic) == f"itp/v1/{frame.pump_id}/telemetry"
                    seen.add(frame.pump_id)
                    if len(seen) == 20:
                        break
        assert seen == set(range(7000, 7020))
        # one control plane addresses every pump by serial
        cp = ControlPlane(fleet.runtimes, token="t")
        status, pumps = await cp.handle("GET", "/v1/pumps", {"authorization": "Bearer t"}, b"")
        assert status == 200 and len(pumps) == 20
        status, state = await cp.handle("GET", "/v1/pumps/7019", {"authorization": "Bearer t"}, b"")
        assert status == 200 and state["status"]["reservoir_nl"] > 0
        assert fleet.stats()["beacons_sent"] >= 20
    finally:
        await fleet.close()


async def test_a_clean_stop_leaves_every_pump_and_the_fleet_offline(
    tmp_path: Path, broker: Broker
) -> None:
    fleet = Fleet(300, MqttSettings.from_url(broker.url), first_serial=7100, name="t-stop")
    await fleet.start()
    await asyncio.wait_for(fleet.connected.wait(), 10)
    await fleet.close()
    want = {f"itp/v1/{s}/status" for s in range(7100, 7400)} | {"itp/v1/fleet/t-stop/status"}
    got: dict[str, bytes] = {}
    async with aiomqtt.Client(broker.host, broker.port) as watcher:
        await watcher.subscribe("itp/v1/+/status")
        await watcher.subscribe("itp/v1/fleet/t-stop/status")
        async with asyncio.timeout(10):
            async for m in watcher.messages:
                if m.retain and str(m.topic) in want:
                    assert isinstance(m.payload, bytes)
                    got[str(m.topic)] = m.payload
                    if len(got) == len(want):
                        break
    assert set(got.values()) == {b"offline"}
