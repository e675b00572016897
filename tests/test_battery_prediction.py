"""The predicted elective-replacement (ERI) date: the battery's real use so far plus the forecast
drain of the programmed therapy (docs/firmware_model.md, "Battery predictions").

Figures (firmware_model.Battery, docs/firmware_model.md section 10): idle drain 1 bu/ms, 26 bu per
nanolitre pumped, ERI when 7 years - 180 days = 2375 days of idle drain are used, i.e.
ERI_USED = 2375 * 86_400_000 = 205_200_000_000 bu. A program of V nL/day drains
86_400_000 + 26 V bu per day. The nanolitre is the only rounding: the volume counter steps one
nL at a time, so a closed-form date below is within one nanolitre's 26 bu (26 ms at >= 1 bu/ms)
of the model's exact millisecond, and the model's own checks (the pump reaches ERI at the
predicted millisecond) are exact.
"""

from __future__ import annotations

from pathlib import Path

from firmware_model import NG_PER_MG, NL_PER_ML, BatteryState, ConcentrationUnit, Drug, Pump
from firmware_model._types import DAY_MS
from tests.model_helpers import POST, T0, baclofen_pump, morphine_pump, new_pump

ERI_USED = 2375 * DAY_MS
IDLE_PER_DAY = DAY_MS  # 1 bu/ms
NL_ROUNDING_MS = 26  # one nanolitre's energy at the idle drain of 1 bu/ms


def _eri(p: Pump) -> int:
    st = p.status()
    assert st.eri_at_ms is not None
    return st.eri_at_ms


def _used(p: Pump) -> int:
    """Battery units used, from the pump's own counters: age + 26 bu per program nanolitre."""
    return (p.now - T0) + 26 * p.status().program_total_nl


def _refill_morphine_until_eri(p: Pump, eri_clock_ms: int) -> None:
    """Refill every 150 days (a 20 mL reservoir at 120 uL/day lasts 166 days) and check, at
    each visit, that the prediction has not moved; stop 1 ms before the predicted ERI."""
    off = p.clock_ms - p.now
    while p.now < eri_clock_ms - off - 1:
        p.advance_to(min(p.now + 150 * DAY_MS, eri_clock_ms - off - 1))
        assert _eri(p) == eri_clock_ms
        st = p.status()
        p.record_refill(
            withdrawn_nl=st.reservoir_nl,
            added_nl=20 * NL_PER_ML,
            drug=Drug.MORPHINE,
            conc_ng_per_ml=25 * NG_PER_MG,
            unit=ConcentrationUnit.MG_PER_ML,
        )
        assert _eri(p) == eri_clock_ms
    assert p.status().battery is BatteryState.OK
    p.advance_to(p.now + 1)
    assert p.status().battery is BatteryState.ELECTIVE_REPLACEMENT
    assert p.clock_ms == eri_clock_ms


def test_a_pump_with_no_program_predicts_idle_drain_only() -> None:
    """A new pump (STOPPED, no drug) drains 1 bu/ms: ERI exactly 2375 days after creation."""
    p = new_pump()
    assert _eri(p) == T0 + ERI_USED
    p.advance_to(T0 + 100 * DAY_MS)
    assert _eri(p) == T0 + ERI_USED


def test_the_prediction_of_a_running_program_holds_to_the_millisecond() -> None:
    """Morphine 25 mg/mL at 3 mg/day = 120 uL/day = 120_000 nL/day: 86_400_000 + 26 * 120_000
    = 89_520_000 bu/day. From the end of the self test (2000 bu used) ERI is
    (205_200_000_000 - 2000) / 89_520_000 = 2292.2252 days later. Refilled on time, the pump
    reaches ERI at exactly the millisecond predicted on day 0, and the prediction never moves."""
    p = morphine_pump()
    e0 = _eri(p)
    hand = T0 + POST + -(-(ERI_USED - POST) * DAY_MS // 89_520_000)
    assert abs(e0 - hand) <= NL_ROUNDING_MS
    assert 2292 * DAY_MS < e0 - T0 < 2293 * DAY_MS
    _refill_morphine_until_eri(p, e0)


def test_a_30_day_stop_moves_eri_by_the_saved_motor_energy_without_jumps() -> None:
    """The same morphine pump is stopped (suspended) for 30 days, then restarted.

    - At the stop the prediction does not move (the therapy is interrupted, not changed; the old
      rule jumped to the idle-only date, 2375 days, 83 days later).
    - The 30 stopped days save 30 * 26 * 120_000 = 93_600_000 bu of motor energy, which the
      running program spends in 93_600_000 * 86_400_000 / 89_520_000 = 90_337_801.6 ms
      (1.0456 days): ERI moves later by that.
    - Halfway through the stop it has moved by half of it: 45_168_900.8 ms.
    - At the restart it does not move, and the restarted pump reaches ERI at that millisecond."""
    p = morphine_pump()
    e0 = _eri(p)
    p.suspend()
    assert _eri(p) == e0
    p.advance_to(p.now + 15 * DAY_MS)
    assert abs(_eri(p) - e0 - 45_168_900) <= NL_ROUNDING_MS
    p.advance_to(p.now + 15 * DAY_MS)
    during = _eri(p)
    assert abs(during - e0 - 90_337_801) <= NL_ROUNDING_MS
    p.resume()
    assert _eri(p) == during
    _refill_morphine_until_eri(p, during)


def test_an_empty_reservoir_predicts_from_the_idle_drain_exactly() -> None:
    """Run dry (no drug left to pump, EMPTY_RESERVOIR halts the pump): only the idle 1 bu/ms
    drains until a refill, so ERI is now + (ERI_USED - used) ms, to the millisecond; used is
    age + 26 bu per nanolitre the program delivered (the pump's own program total)."""
    p = morphine_pump()
    p.advance_to(p.now + 200 * DAY_MS)
    assert p.status().reservoir_nl == 0
    off = p.clock_ms - p.now
    assert _eri(p) == p.now + off + ERI_USED - _used(p)


def test_a_schedule_is_forecast_through_its_steps() -> None:
    """Baclofen 2000 mcg/mL: 400 mcg/day from 00:00 and 800 mcg/day from 12:00 deliver
    (200 + 400) mcg/day = 300 uL/day = 300_000 nL/day: 86_400_000 + 7_800_000 = 94_200_000
    bu/day, ERI (205_200_000_000 - 2000) / 94_200_000 = 2178.34 days after the self test.
    Stopped for 10 days, the motor saves 10 * 7_800_000 = 78_000_000 bu: ERI moves
    78_000_000 * 86_400_000 / 94_200_000 = 71_541_401.3 ms later (the forecast follows the
    steps, so within one day's step, not only one nanolitre)."""
    p = baclofen_pump()
    p.set_schedule([(0, 400_000), (12 * 60, 800_000)])
    e0 = _eri(p)
    hand = T0 + POST + (ERI_USED - POST) * DAY_MS // 94_200_000
    assert abs(e0 - hand) <= DAY_MS
    p.suspend()
    assert _eri(p) == e0
    p.advance_to(p.now + 10 * DAY_MS)
    p.resume()
    assert abs(_eri(p) - e0 - 71_541_401) <= DAY_MS // 10


def test_the_hospital_stay_scenario_moves_the_replacement_date_by_2_1_days() -> None:
    """emulator/scenarios/hospital-stay-stop.toml: baclofen 500 mcg/day at 2000 mcg/mL =
    250 uL/day = 250_000 nL/day: 86_400_000 + 6_500_000 = 92_900_000 bu/day, ERI
    (205_200_000_000 - 2000) / 92_900_000 = 2208.83 days after the self test. Stopped from day
    20 to day 50, the motor saves 30 * 6_500_000 = 195_000_000 bu: the replacement date moves
    195_000_000 * 86_400_000 / 92_900_000 = 181_356_297.1 ms (2.099 days) later, and not at
    all at the stop or the restart."""
    from emulator._scenario import _apply, load_scenario

    sc = load_scenario("emulator/scenarios/hospital-stay-stop.toml")
    p = Pump.create(sc.profile, serial=sc.serial, now_ms=T0)
    start = p.self_test_ends_at
    p.advance_to(start)
    seen: dict[int, tuple[int, int]] = {}
    for step in sc.steps:
        p.advance_to(start + step.at_ms)
        before = _eri(p)
        _apply(p, step, [], start)
        seen[step.at_ms // DAY_MS] = (before, _eri(p))
    e0 = seen[0][1]
    hand = T0 + POST + (ERI_USED - POST) * DAY_MS // 92_900_000
    assert abs(e0 - hand) <= NL_ROUNDING_MS
    assert seen[20] == (e0, e0)  # the stop: no jump
    moved = seen[50][0]
    assert seen[50][1] == moved  # the restart: no jump
    assert abs(moved - e0 - 181_356_297) <= NL_ROUNDING_MS


async def test_the_wire_status_follows_a_stop_and_restart(tmp_path: Path) -> None:
    """The same morphine program through the emulator, over the pty, with pump time paused
    once it is programmed (it moves only by the control plane's jump). STATUS's
    replacement_due_at_ms does not jump at the stop, moves 30 * 3_120_000 * 86_400_000 /
    89_520_000 = 90_337_801.6 ms over 30 stopped days and does not jump at the restart. The
    session's own frames cost 10_000 bu each (section 10), which the program would spend in
    10_000 * 86_400_000 / 89_520_000 = 9_651.5 ms: each frame charged between two reads moves
    the date that much earlier. The emulator charges frames in batches (at its next tick), so a
    read may still see frames sent before the previous one: the bounds count every frame since
    the first read, two more for the batch in flight, and one nanolitre."""
    import programmer
    import protocol as wire
    from emulator import EmulatorServer, ServerOptions

    per_frame = 9_652
    async with (
        EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=100_000)) as server,
        programmer.connect(
            f"serial://{server.port_path}",
            key=server.key_files[wire.Role.CLINICIAN],
            journal=tmp_path / "j",
        ) as pump,
    ):
        refill = await pump.prepare_refill(
            withdrawn_nl=0,
            added_nl=20 * NL_PER_ML,
            drug=wire.Drug.MORPHINE,
            conc_ng_per_ml=25 * NG_PER_MG,
        )
        await refill.commit()
        await (await pump.prepare_dose(3 * NG_PER_MG)).commit()
        dev = server.device
        assert server.runtime is not None
        server.runtime.set_speed(0)

        async def due() -> tuple[int, int]:
            frames = dev.stats.frames_out
            r = (await pump.status()).replacement_due_at_ms
            return r, frames

        r0, f0 = await due()

        def slack(frames: int) -> int:
            return (frames - f0 + 2) * per_frame + NL_ROUNDING_MS

        await pump.suspend()
        r_stop, f1 = await due()
        assert -slack(f1) <= r_stop - r0 <= NL_ROUNDING_MS  # the old rule: 83 days later
        dev.clock.jump_to(dev.pump.now + 30 * DAY_MS)
        dev.advance()
        r30, f2 = await due()
        moved = r30 - r_stop
        assert 90_337_801 - slack(f2) <= moved <= 90_337_801 + NL_ROUNDING_MS
        await pump.resume()
        r_run, f3 = await due()
        assert -slack(f3) <= r_run - r30 <= NL_ROUNDING_MS  # no jump at the restart
        assert slack(f3) < 10 * 60_000  # minutes at most, against the old rule's 83 days


def test_a_single_bolus_that_ends_in_stopped_forecasts_idle_only() -> None:
    """A clinician bolus "then stop" leaves no program behind: the forecast is the idle drain
    (ERI = now + ERI_USED - used, to the millisecond), not the program the bolus replaced."""
    p = morphine_pump()
    p.start_clinician_bolus(NG_PER_MG // 2, 10 * 60_000, then_stop=True)
    off = p.clock_ms - p.now
    assert _eri(p) == p.now + off + ERI_USED - _used(p)
