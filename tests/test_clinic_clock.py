"""The clinic's clock (issue 15 item 4): the pump holds the clinic's UTC offset and zone, set with
the clock; schedules run on local time of day; the pump never follows daylight saving time by
itself.

Worked example used throughout (Europe/Paris, 2026): baclofen 2000 mcg/mL, a schedule of
480 mcg/day from 00:00, 720 mcg/day from 07:00 and 480 mcg/day from 22:00 local time. At
2000 mcg/mL 480 mcg/day is 0.24 mL/day = 240 000 nL/day = 10 000 nL/h and 720 mcg/day is
360 000 nL/day = 15 000 nL/h (domain.md 2.2: volume = dose / concentration). A steady local day
has 15 h high + 9 h low = 225 000 + 90 000 = 315 000 nL.

Paris changes to summer time on Sunday 29 March 2026 at 01:00 UTC (CET UTC+1 -> CEST UTC+2)
and back on Sunday 25 October 2026 at 01:00 UTC (IANA tz database, Europe/Paris).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import firmware_model as fm
from firmware_model import DAY_MS, MS_PER_HOUR, NG_PER_MCG, Rejected
from tests.model_helpers import baclofen_pump

H = MS_PER_HOUR
CET = 1 * H
CEST = 2 * H
MAR_27 = 1_774_569_600_000  # 2026-03-27T00:00Z, a Friday before the change
MAR_30 = 1_774_828_800_000  # 2026-03-30T00:00Z, the Monday after the spring change
OCT_26 = 1_792_972_800_000  # 2026-10-26T00:00Z, the Monday after the autumn change
LOW, HIGH = 240_000, 360_000  # nL/day
STEPS = [(0, 480 * NG_PER_MCG), (7 * 60, 720 * NG_PER_MCG), (22 * 60, 480 * NG_PER_MCG)]


def paris_pump(offset_ms: int = CET, start: int = MAR_27) -> fm.Pump:
    """The worked example's pump, made at `start` (a midnight UTC, the pump clock equal to model
    time), filled and programmed, and synced at 12:00 UTC to Paris (winter by default)."""
    p = fm.Pump.create(fm.ProfileId.SYNCHROMED_II_20, serial=1234, now_ms=start)
    p.advance_to(p.self_test_ends_at)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=20 * fm.NL_PER_ML,
        drug=fm.Drug.BACLOFEN,
        conc_ng_per_ml=2000 * NG_PER_MCG,
        unit=fm.ConcentrationUnit.MCG_PER_ML,
    )
    p.set_schedule(STEPS)
    p.advance_to(start + 12 * H)
    p.set_clock(p.clock_ms, utc_offset_ms=offset_ms, zone="Europe/Paris")
    return p


def volume_between(p: fm.Pump, t0: int, t1: int) -> int:
    """Program volume (nL) delivered between model times t0 and t1 (t0 >= now)."""
    p.advance_to(t0)
    before = p.status().program_total_nl
    p.advance_to(t1)
    return p.status().program_total_nl - before


def test_a_new_pump_runs_on_utc_and_set_clock_1_0_keeps_the_offset() -> None:
    p = baclofen_pump()
    st = p.status()
    assert (st.utc_offset_ms, st.zone) == (0, "UTC")
    p.set_clock(p.clock_ms, utc_offset_ms=CET, zone="Europe/Paris")
    p.set_clock(p.clock_ms + 5_000)  # the 1.0 SET_CLOCK: the clock moves, the offset stays
    st = p.status()
    assert (st.utc_offset_ms, st.zone) == (CET, "Europe/Paris")
    assert p.local_clock_ms == st.clock_ms + CET


def test_schedule_steps_are_local_minutes_of_the_day() -> None:
    """Synced to CET, the 07:00 step starts at 06:00 UTC and the 22:00 one at 21:00 UTC."""
    p = paris_pump()
    assert p.next_event_time() == MAR_27 + 21 * H  # 22:00 CET
    p.advance_to(MAR_27 + 21 * H - 1)
    assert p.status().basal_rate_nl_per_day == HIGH
    p.advance_to(MAR_27 + 21 * H)
    assert p.status().basal_rate_nl_per_day == LOW
    assert p.next_event_time() == MAR_27 + 23 * H  # local midnight: the 00:00 step
    p.advance_to(MAR_27 + 23 * H)
    assert p.next_event_time() == MAR_27 + DAY_MS + 6 * H  # 07:00 CET on Saturday


def test_the_pump_keeps_its_offset_across_dst_and_a_sync_moves_the_07_00_step() -> None:
    """Across 29 March the pump keeps UTC+1: on Monday 30 March the 07:00 step still starts at
    06:00 UTC (08:00 on the clinic's wall clock: an hour off). A sync to CEST at 12:00 UTC makes
    Tuesday's 07:00 step start at 05:00 UTC.

    Monday 30 March, 00:00 -> 24:00 UTC, with the sync at 12:00 UTC:
    00-06 low (6 h), 06-12 high (6 h), sync, 12-20 high (8 h), 20-24 low (4 h):
    14 h x 15 000 + 10 h x 10 000 = 210 000 + 100 000 = 310 000 nL, 5 000 nL (one hour at
    high - low) less than the steady 315 000 nL: the day ends an hour early in local time."""
    p = paris_pump()
    assert volume_between(p, MAR_30 - DAY_MS, MAR_30) == 315_000  # Sunday: UTC+1 kept
    assert p.status().utc_offset_ms == CET
    p.advance_to(MAR_30 + 6 * H - 1)
    assert p.status().basal_rate_nl_per_day == LOW
    p.advance_to(MAR_30 + 6 * H)
    assert p.status().basal_rate_nl_per_day == HIGH  # 07:00 at UTC+1, 08:00 CEST
    before = p.status().program_total_nl
    p.advance_to(MAR_30 + 12 * H)
    p.set_clock(p.clock_ms, utc_offset_ms=CEST, zone="Europe/Paris")
    assert p.next_event_time() == MAR_30 + 20 * H  # 22:00 CEST
    p.advance_to(MAR_30 + DAY_MS)
    assert p.status().program_total_nl - before + 6 * 10_000 == 310_000
    assert p.next_event_time() == MAR_30 + DAY_MS + 5 * H  # Tuesday 07:00 CEST = 05:00 UTC
    assert volume_between(p, MAR_30 + DAY_MS, MAR_30 + 2 * DAY_MS) == 315_000


def test_a_sync_forward_starts_the_next_step_at_once_skipping_the_jumped_hour() -> None:
    """Synced at 05:30 UTC on Monday 30 March: local time jumps from 06:30 (UTC+1) to 07:30
    (UTC+2), so the high step, due at 07:00 local, starts at once at 05:30 UTC; local
    06:30-07:30 of this day is skipped (the low rate's last half hour is not delivered).
    Monday: 00:00-05:30 low (5.5 h), 05:30-20:00 high (14.5 h), 20:00-24:00 low (4 h):
    14.5 x 15 000 + 9.5 x 10 000 = 217 500 + 95 000 = 312 500 nL."""
    p = paris_pump()
    p.advance_to(MAR_30)
    before = p.status().program_total_nl
    p.advance_to(MAR_30 + 5 * H + H // 2)
    assert p.status().basal_rate_nl_per_day == LOW
    p.set_clock(p.clock_ms, utc_offset_ms=CEST, zone="Europe/Paris")
    assert p.status().basal_rate_nl_per_day == HIGH
    p.advance_to(MAR_30 + DAY_MS)
    assert p.status().program_total_nl - before == 312_500


def test_a_sync_back_runs_the_stretch_again() -> None:
    """Autumn: the pump keeps UTC+2 after 25 October, so on Monday 26 October the 22:00 step
    starts at 20:00 UTC. A sync to CET at 20:30 UTC moves local time from 22:30 back to 21:30:
    the high step runs again until 22:00 CET = 21:00 UTC (local 21:30-22:00 repeats).
    Monday: 00-05 low (5 h), 05-20 high (15 h), 20-20:30 low (0.5 h), 20:30-21 high (0.5 h),
    21-24 low (3 h): 15.5 x 15 000 + 8.5 x 10 000 = 232 500 + 85 000 = 317 500 nL."""
    p = paris_pump(CEST, OCT_26 - 3 * DAY_MS)  # synced on Friday 23 October, summer time
    p.advance_to(OCT_26)
    before = p.status().program_total_nl
    p.advance_to(OCT_26 + 20 * H + H // 2)
    assert p.status().basal_rate_nl_per_day == LOW
    p.set_clock(p.clock_ms, utc_offset_ms=CET, zone="Europe/Paris")
    assert p.status().basal_rate_nl_per_day == HIGH
    assert p.next_event_time() == OCT_26 + 21 * H
    p.advance_to(OCT_26 + DAY_MS)
    assert p.status().program_total_nl - before == 317_500


@pytest.mark.parametrize(
    ("kw", "detail"),
    [
        ({"utc_offset_ms": CET}, "together"),
        ({"zone": "Europe/Paris"}, "together"),
        ({"utc_offset_ms": CET + 1, "zone": "Europe/Paris"}, "whole minutes"),
        ({"utc_offset_ms": 19 * H, "zone": "Etc/X"}, "-18 h"),
        ({"utc_offset_ms": -19 * H, "zone": "Etc/X"}, "-18 h"),
        ({"utc_offset_ms": CET, "zone": ""}, "IANA"),
        ({"utc_offset_ms": CET, "zone": "Europe/Paris "}, "IANA"),
        ({"utc_offset_ms": CET, "zone": "Europe/Par\u00eds"}, "IANA"),
        ({"utc_offset_ms": CET, "zone": "x" * 65}, "IANA"),
    ],
)
def test_bad_offset_or_zone_is_refused_and_changes_nothing(
    kw: dict[str, object], detail: str
) -> None:
    p = paris_pump()
    before = copy.deepcopy(p._s)
    with pytest.raises(Rejected, match=detail) as exc:
        p.set_clock(p.clock_ms + 1_000, **kw)  # type: ignore[arg-type]
    assert exc.value.reason is fm.Reason.INVALID_VALUE
    after = p._s
    assert after.events[-1].kind is fm.EventKind.COMMAND_REJECTED
    after.events.pop()
    after.next_seq -= 1
    assert after == before


def test_the_widest_offsets_are_accepted() -> None:
    """Kiribati's UTC+14 and Baker Island's UTC-12 are inside -18 h .. +18 h."""
    p = paris_pump()
    p.set_clock(p.clock_ms, utc_offset_ms=14 * H, zone="Pacific/Kiritimati")
    p.set_clock(p.clock_ms, utc_offset_ms=-12 * H, zone="Etc/GMT+12")
    assert p.status().utc_offset_ms == -12 * H


def test_a_version_1_snapshot_restores_on_utc() -> None:
    """tests/data/snapshot_v1.json (written before version 2) has no offset or zone: it
    restores on UTC (the version-1 pump ran its schedules on UTC) and saves them in version 2;
    a version-1 snapshot that names them is refused."""
    data = json.loads((Path(__file__).parent / "data" / "snapshot_v1.json").read_text())
    assert data["version"] == 1 and "zone" not in data["state"]
    q = fm.restore(data)
    assert (q.status().utc_offset_ms, q.status().zone) == (0, "UTC")
    again = fm.snapshot(q)
    assert (again["state"]["utc_offset_ms"], again["state"]["zone"]) == (0, "UTC")
    data["state"]["zone"] = "UTC"
    with pytest.raises(fm.SnapshotError, match="version 1 has no"):
        fm.restore(data)


def test_a_version_2_snapshot_from_before_the_clinic_clock_restores_on_utc() -> None:
    """Version 2 first shipped without the two fields (main between the i15-cath and i15-tz
    merges): such a snapshot restores on UTC and delivers exactly as before."""
    p = paris_pump()
    p.set_clock(p.clock_ms, utc_offset_ms=0, zone="UTC")
    data = fm.snapshot(p)
    for name in ("utc_offset_ms", "zone"):
        del data["state"][name]
    q = fm.restore(data)
    assert (q.status().utc_offset_ms, q.status().zone) == (0, "UTC")
    assert fm.snapshot(q) == fm.snapshot(p)


def test_snapshot_round_trip_keeps_the_offset_and_zone() -> None:
    p = paris_pump()
    q = fm.restore(fm.snapshot(p))
    assert (q.status().utc_offset_ms, q.status().zone) == (CET, "Europe/Paris")
    assert q.next_event_time() == p.next_event_time()


def test_the_shipped_dst_scenario_runs_an_hour_off_until_the_sync() -> None:
    """emulator/scenarios/dst-change-clock-sync.toml starts 2026-01-01 (day 0) synced to
    Europe/Paris (UTC+1). Day 88 is Monday 30 March, after the change: at 05:00 UTC (07:00
    CEST) the pump, still on UTC+1 (06:00 local), runs the low rate, 0.24 mL/day; the sync on
    day 89 12:00 UTC makes day 90's 07:00 step start at 05:00 UTC: 0.36 mL/day."""
    from emulator._scenario import load_scenario, run_scenario

    report = run_scenario(load_scenario("dst-change-clock-sync"))
    assert all(r["passed"] for r in report.results)

    def rate_at(day: float) -> float:
        (rate,) = [s[3] for s in report.samples if abs(s[0] - day) < 1e-4]
        return rate

    assert rate_at(88 + 5 / 24) == 0.24 and rate_at(88 + 6 / 24) == 0.36
    assert rate_at(90 + 5 / 24) == 0.36 and rate_at(90 + 4 / 24) == 0.24
