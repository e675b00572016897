"""The programmer's calculators against the worked examples of reference/domain.md section 2."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from programmer import calc

ML, MG, MCG, DAY = calc.NL_PER_ML, calc.NG_PER_MG, calc.NG_PER_MCG, calc.DAY_MS


def test_rate_from_dose_and_concentration() -> None:
    assert calc.rate_nl_per_day(3 * MG, 25 * MG) == 120_000  # 2.5: 0.12 mL/day
    assert calc.rate_nl_per_day(500 * MCG, 2000 * MCG) == 250_000  # 2.2: 0.25 mL/day
    assert calc.dose_ng_per_day(250_000, 2000 * MCG) == 500 * MCG
    with pytest.raises(ValueError, match="conc_ng_per_ml must be > 0"):
        calc.rate_nl_per_day(1, 0)


def test_schedule_daily_total() -> None:
    steps = [(0, 400 * MCG), (7 * 60, 600 * MCG), (22 * 60, 400 * MCG)]
    assert calc.schedule_daily_dose_ng(steps) == 525 * MCG  # 2.6
    assert calc.rate_nl_per_day(525 * MCG, 2000 * MCG) == 262_500  # 0.2625 mL/day
    for bad in ([], [(60, 1)], [(0, 1), (0, 2)], [(0, 1), (1440, 2)]):
        with pytest.raises(ValueError):
            calc.schedule_daily_dose_ng(bad)


def test_days_to_low_reservoir_and_empty() -> None:
    assert calc.time_to_volume_ms(20 * ML, 2 * ML, 250_000) == 72 * DAY  # 2.2
    assert calc.time_to_volume_ms(20 * ML, 0, 250_000) == 80 * DAY
    days = calc.time_to_volume_ms(40 * ML, 2 * ML, 120_000) / DAY  # type: ignore[operator]
    assert round(days, 1) == 316.7  # 2.5
    assert calc.time_to_volume_ms(1 * ML, 2 * ML, 250_000) == 0
    assert calc.time_to_volume_ms(20 * ML, 2 * ML, 0) is None


def test_expected_residual_delivery_ratio_and_limits() -> None:
    expected = calc.expected_residual_nl(20 * ML, 250_000, 60 * DAY)
    assert expected == 5 * ML  # 2.2
    over = calc.delivery_ratio_ppm(20 * ML, 3_600_000, expected)
    under = calc.delivery_ratio_ppm(20 * ML, 7_500_000, expected)
    assert over == 1_093_333 and under == 833_333
    assert not calc.refill_beyond_limits(5_500_000, expected, 966_667, 20 * ML)
    assert calc.refill_beyond_limits(3_600_000, expected, over, 20 * ML)  # 1.4 mL > 1 mL
    assert not calc.refill_beyond_limits(3_600_000, expected, over, 40 * ML)  # limit 2 mL
    assert calc.refill_beyond_limits(7_500_000, expected, under, 40 * ML)  # ratio 0.83
    assert calc.delivery_ratio_ppm(20 * ML, 20 * ML, 20 * ML) is None
    assert calc.expected_residual_nl(1 * ML, 250_000, 60 * DAY, (100_000,)) == 0


def test_catheter_volume_bridge_and_priming() -> None:
    catheter = calc.catheter_volume_nl(85)
    assert catheter == 221_000  # 2.3
    b = calc.bridge(catheter, 10 * MG, 20 * MG, 2 * MG)
    assert (b.old_rate_nl_per_day, b.new_rate_nl_per_day) == (200_000, 100_000)
    assert round(b.duration_ms / DAY, 3) == 1.105
    assert b.underdose_without_ppm == 500_000  # 1 mg/day instead of 2
    assert calc.priming_volume_nl(catheter, 12_000) == 233_000  # 2.4


def test_patient_bolus_worst_case_refill_date() -> None:
    daily = calc.worst_case_daily_dose_ng(3 * MG, 100_000, 6)
    assert daily == 3_600_000  # 2.7
    rate = calc.rate_nl_per_day(daily, 25 * MG)
    assert rate == 144_000
    assert calc.time_to_volume_ms(20 * ML, 3 * ML, rate) // DAY == 118  # type: ignore[operator]


def test_end_of_service_after_eri() -> None:
    eri = int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
    eos = dt.datetime.fromtimestamp(calc.end_of_service_ms(eri, eri - DAY) / 1000, dt.UTC)
    assert eos.date() == dt.date(2026, 5, 30)  # 2.10
    implanted = eri - 7 * calc.YEAR_MS + 10 * DAY
    assert calc.end_of_service_ms(eri, implanted) == implanted + 7 * calc.YEAR_MS


def test_constant_flow_fill_recipe() -> None:
    r = calc.constant_flow_fill(20 * ML, 500_000, 2 * MG, 10 * MG)  # 2.11
    assert (r.days, r.drug_ng, r.drug_nl, r.saline_nl) == (40, 80 * MG, 8 * ML, 12 * ML)
    assert (r.concentration_ng_per_ml, r.extra_nl) == (4 * MG, 3 * ML)
    with pytest.raises(ValueError, match="too dilute"):
        calc.constant_flow_fill(20 * ML, 500_000, 20 * MG, 10 * MG)


@given(st.integers(1, 10**9), st.integers(1, 10**9))
def test_rate_never_delivers_more_than_the_dose(dose: int, conc: int) -> None:
    rate = calc.rate_nl_per_day(dose, conc)
    assert calc.dose_ng_per_day(rate, conc) <= dose
    assert (rate + 1) * conc > dose * calc.NL_PER_ML  # the largest such rate
