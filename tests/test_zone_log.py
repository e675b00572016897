"""The clinic clock's changes in the event log: a sync that changes the UTC offset or the zone
writes ZONE_SET (old, new offset) and the ZONE_NAME records of the new and the old zone name;
the same sync again writes only its CLOCK_SET; bad input writes only the refusal; a retried
command writes nothing; the records survive snapshots and the wire, and read back as one
sentence (docs/firmware_model.md section 19, docs/protocol.md section 19)."""

from __future__ import annotations

import json
import string
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_model as fm
import protocol as p
from emulator._console_records import describe, records

from .emulator_helpers import Rig

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
ZONE_CHARS = string.ascii_letters + string.digits + "/_+-"

zones = st.text(ZONE_CHARS, min_size=1, max_size=64)
offsets = st.integers(-18 * 60, 18 * 60).map(lambda m: m * 60_000)


def ready_pump() -> fm.Pump:
    pump = fm.Pump.create(serial=1234, now_ms=T0)
    pump.advance_to(T0 + 2_001)  # past the self test
    return pump


def rows(pump: fm.Pump) -> list[tuple[int, int, int, int]]:
    return [(e.seq, int(e.kind), e.a, e.b) for e in pump.events()]


def written_since(pump: fm.Pump, seq: int) -> list[fm.Event]:
    return [e for e in pump.events() if e.seq > seq]


@settings(max_examples=200, deadline=None)
@given(first=st.tuples(offsets, zones), second=st.tuples(offsets, zones))
def test_a_sync_logs_exactly_what_changed(first: tuple[int, str], second: tuple[int, str]) -> None:
    pump = ready_pump()
    for off, zone in (first, second):
        before = pump.status()
        seq = pump.event_seq
        applied = pump.set_clock(pump.clock_ms, utc_offset_ms=off, zone=zone)
        new = written_since(pump, seq)
        assert new[0].kind is fm.EventKind.CLOCK_SET and applied.event_seq == new[0].seq
        assert {e.command_id for e in new} == {fm.NO_COMMAND}
        change = p.zone_changes(rows(pump)).get(new[0].seq + 1)
        if (off, zone) == (before.utc_offset_ms, before.zone):
            assert len(new) == 1 and change is None  # nothing else changed: nothing else logged
            continue
        assert change is not None
        assert (change.old_offset_ms, change.new_offset_ms) == (before.utc_offset_ms, off)
        assert (change.old_zone, change.new_zone) == (before.zone, zone)
        names = -(-len(zone) // 8) + -(-len(before.zone) // 8)  # 8 bytes of a name a record
        kinds = [fm.EventKind.ZONE_SET] + [fm.EventKind.ZONE_NAME] * names
        assert [e.kind for e in new[1:]] == kinds
        assert change.name_seqs == tuple(e.seq for e in new[2:])
        assert (pump.status().utc_offset_ms, pump.status().zone) == (off, zone)


@given(zone=zones, which=st.sampled_from([1, 2]))
def test_the_model_and_the_protocol_cut_a_name_alike(zone: str, which: int) -> None:
    from firmware_model._clock import zone_name_parts

    assert zone_name_parts(which, zone) == p.zone_name_parts(which, zone)
    assert all(0 <= b < 1 << 63 for _, b in p.zone_name_parts(which, zone))  # an i64 on the wire


def test_the_worked_example_reads_as_one_sentence() -> None:
    pump = ready_pump()
    pump.set_clock(pump.clock_ms, utc_offset_ms=-5 * HOUR, zone="America/New_York")
    new = [(e.kind.name, e.a, e.b) for e in pump.events()[-4:]]
    assert new == [
        ("ZONE_SET", 0, -5 * HOUR),
        ("ZONE_NAME", 120, int.from_bytes(b"America/", "big")),
        ("ZONE_NAME", 121, int.from_bytes(b"New_York", "big")),
        ("ZONE_NAME", 210, 0x5554430000000000),  # "UTC", zero-padded
    ]
    (change,) = p.zone_changes(rows(pump)).values()
    assert change.text() == "clock set: -05:00 America/New_York (was +00:00 UTC)"
    # the console reads the batch the same way; one record alone still reads as a sentence
    texts = [r["text"] for r in records(pump.events())]
    assert "clock set: -05:00 America/New_York (was +00:00 UTC)" in texts
    assert describe(pump.events()[-4]) == "clock set: -05:00 (was +00:00)"
    assert describe(pump.events()[-1]) == "old zone name, part 1 of 1: 'UTC'"


def test_the_1_0_set_clock_and_bad_input_log_no_zone_record() -> None:
    pump = ready_pump()
    seq = pump.event_seq
    pump.set_clock(pump.clock_ms + 60_000)  # SET_CLOCK: the pump keeps its offset and zone
    assert [e.kind for e in written_since(pump, seq)] == [fm.EventKind.CLOCK_SET]
    for off, zone in ((30_000, "Europe/Paris"), (HOUR, "Europe Paris"), (19 * HOUR, "Asia/X")):
        seq, clock = pump.event_seq, pump.clock_ms
        with pytest.raises(fm.Rejected) as exc:
            pump.set_clock(clock + 5, utc_offset_ms=off, zone=zone)
        assert exc.value.reason is fm.Reason.INVALID_VALUE
        assert [e.kind for e in written_since(pump, seq)] == [fm.EventKind.COMMAND_REJECTED]
        assert (pump.clock_ms, pump.status().zone, pump.status().utc_offset_ms) == (clock, "UTC", 0)


def test_a_new_pump_in_a_zone_logs_it_after_power_on() -> None:
    pump = fm.Pump.create(serial=1234, now_ms=T0, utc_offset_ms=HOUR, zone="Europe/Paris")
    kinds = [e.kind for e in pump.events()]
    assert kinds[:2] == [fm.EventKind.POWER_ON, fm.EventKind.ZONE_SET]
    (change,) = p.zone_changes(rows(pump)).values()
    assert change.text() == "clock set: +01:00 Europe/Paris (was +00:00 UTC)"
    plain = fm.Pump.create(serial=1234, now_ms=T0)
    assert [e.kind for e in plain.events()] == [fm.EventKind.POWER_ON]  # UTC: nothing changed
    with pytest.raises(ValueError, match="zone must be"):
        fm.Pump.create(serial=1234, now_ms=T0, utc_offset_ms=HOUR, zone="")


def test_a_chain_cut_by_the_log_or_a_page_says_so() -> None:
    pump = ready_pump()
    pump.set_clock(pump.clock_ms, utc_offset_ms=-5 * HOUR, zone="America/New_York")
    every = rows(pump)
    head = every[-4][0]
    page = [r for r in every if r[0] <= head + 1]  # the page ends inside the new zone's name
    (cut,) = p.zone_changes(page).values()
    assert (cut.new_zone, cut.old_zone) == (None, None)
    assert cut.text() == (
        "clock set: -05:00 (zone name not in the log) (was +00:00 (zone name not in the log))"
    )
    assert p.zone_changes(every[-3:]) == {}  # its ZONE_SET trimmed: the names alone are no change


def test_snapshots_keep_the_records_and_old_snapshots_still_load() -> None:
    pump = ready_pump()
    pump.set_clock(pump.clock_ms, utc_offset_ms=-5 * HOUR, zone="America/New_York")
    twin = fm.restore(json.loads(json.dumps(fm.snapshot(pump))))
    assert twin.events() == pump.events() and twin.log_digest() == pump.log_digest()
    old = json.loads((Path(__file__).parent / "data" / "snapshot_v1.json").read_text())
    restored = fm.restore(old)  # written before these kinds existed
    assert (restored.status().zone, restored.status().utc_offset_ms) == ("UTC", 0)
    seq = restored.event_seq
    restored.advance_to(max(restored.now, restored.self_test_ends_at))
    restored.set_clock(restored.clock_ms, utc_offset_ms=HOUR, zone="Europe/Paris")
    assert fm.EventKind.ZONE_SET in [e.kind for e in written_since(restored, seq)]


@given(a=st.integers(-(1 << 63), (1 << 63) - 1), b=st.integers(-(1 << 63), (1 << 63) - 1))
def test_the_records_round_trip_on_the_wire(a: int, b: int) -> None:
    for kind in (p.EventKind.ZONE_SET, p.EventKind.ZONE_NAME):
        rec = p.EventRecord(
            seq=7, time_ms=T0, kind=int(kind), source=p.EventSource.PROGRAMMER,
            command_id=bytes(16), value_a=a, value_b=b,
        )  # fmt: skip
        page = p.EventPage(next_cursor=8, oldest_seq=1, more=False, events=(rec,))
        back = p.EventPage.decode_payload(page.encode_payload())
        assert back == page and p.EventKind(back.events[0].kind) is kind


def test_a_retried_sync_is_applied_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "pump")
    rig.sleep(2_001)
    host = rig.host()
    cid = uuid.uuid4().bytes
    fields = {"pump_time_ms": rig.pump.clock_ms, "utc_offset_ms": -5 * HOUR}
    first = host.command(p.SetClockLocal, command_id=cid, zone="America/New_York", **fields)
    seq = rig.pump.event_seq
    again = host.command(p.SetClockLocal, command_id=cid, zone="America/New_York", **fields)
    assert isinstance(first, p.CommandAck) and isinstance(again, p.CommandAck)
    assert again.duplicate and not first.duplicate
    assert rig.pump.event_seq == seq  # the retry wrote nothing
    changes = p.zone_changes(rows(rig.pump))
    assert [c.text() for c in changes.values()] == [
        "clock set: -05:00 America/New_York (was +00:00 UTC)"
    ]
    zone_records = [e for e in rig.pump.events() if e.kind is fm.EventKind.ZONE_SET]
    assert [e.command_id for e in zone_records] == [cid]
