"""The fleet's fast paths give the same answers as the slow ones they replace."""

from __future__ import annotations

import asyncio

import firmware_model as fm
from emulator import _mqtt_wire as w
from emulator._fleet import _telemetry_head
from emulator._mqtt_conn import SUBSCRIBE_BATCH, WireClient
from emulator.testing import Broker
from firmware_model._battery import _first_reaching

DAY_MS = 86_400_000


def _pump() -> fm.Pump:
    return fm.Pump.create(fm.ProfileId.SYNCHROMED_II_20, serial=4242, now_ms=1_000_000)


def test_beacon_state_is_what_status_says() -> None:
    pump = _pump()
    for t in (1_000_000, 1_000_000 + DAY_MS, 1_000_000 + 400 * DAY_MS):
        pump.advance_to(t)
        st = pump.status()
        assert pump.beacon_state() == (st.clock_ms, st.delivering, st.active_alarms, st.battery)


def test_an_idle_pump_reaches_a_battery_level_when_the_bisection_says() -> None:
    pump = _pump()
    bat = pump._profile.battery
    assert bat is not None
    now = pump._s.now
    for need in (1, 7, 1_000_003, 5 * DAY_MS + 1):
        for bound in (now + need * 3, now + 9 * DAY_MS):

            def used(x: int) -> int:
                return bat.idle_bu_per_ms * (x - now) + bat.bu_per_nl * pump._program_volume(x)

            want = _first_reaching(used, need, now, bound) if used(bound) >= need else None
            assert pump._battery_reach(need, bound) == want


def test_a_precomputed_beacon_packet_is_the_publish_it_stands_for() -> None:
    frame = bytes(range(38))
    head = _telemetry_head(123456)
    packet = bytes((0x30, len(head) + len(frame))) + head + frame
    assert packet == w.publish("itp/v1/123456/telemetry", frame, 0, False, 0)
    m = w.parse_publish(packet[0], packet[2:])
    assert (m.topic, m.payload, m.qos, m.retain) == ("itp/v1/123456/telemetry", frame, 0, False)


async def test_subscribe_many_spans_packets_and_hears_only_its_topics(broker: Broker) -> None:
    got: list[str] = []
    async with WireClient(broker.host, broker.port, identifier="t-many", will_topic="t/w") as c:
        c.on_publish = lambda m: got.append(m.topic)
        topics = [f"t/many/{i}/cmd" for i in range(3 * SUBSCRIBE_BATCH + 7)]
        await c.subscribe_many(topics, 1, retain_as_published=True)
        async with WireClient(broker.host, broker.port, identifier="t-pub", will_topic="t/w") as p:
            for t in ("t/many/x/cmd", topics[0], topics[-1], f"t/many/{len(topics)}/cmd"):
                await p.publish(t, b"x", qos=1)
            await p.publish(topics[SUBSCRIBE_BATCH], b"last", qos=1)
        async with asyncio.timeout(5):
            while len(got) < 3:
                await asyncio.sleep(0.01)
    assert got == [topics[0], topics[-1], topics[SUBSCRIBE_BATCH]]
