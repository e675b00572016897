"""Builders shared by the firmware-model tests."""

from __future__ import annotations

from firmware_model import (
    NG_PER_MCG,
    NG_PER_MG,
    NL_PER_ML,
    ConcentrationUnit,
    Drug,
    ProfileId,
    Pump,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: pump clock starts at a midnight
POST = 2_000


def new_pump(profile: ProfileId = ProfileId.SYNCHROMED_II_20, **kw: object) -> Pump:
    p = Pump.create(profile, serial=1234, now_ms=T0, **kw)  # type: ignore[arg-type]
    p.advance_to(T0 + POST)
    return p


def baclofen_pump(ml: int = 20, dose_mcg: int = 500, **kw: object) -> Pump:
    """Worked example of domain.md 2.2: baclofen 2000 mcg/mL at 500 mcg/day, filled full."""
    profile = ProfileId.SYNCHROMED_II_20 if ml == 20 else ProfileId.SYNCHROMED_II_40
    p = new_pump(profile, **kw)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=ml * NL_PER_ML,
        drug=Drug.BACLOFEN,
        conc_ng_per_ml=2000 * NG_PER_MCG,
        unit=ConcentrationUnit.MCG_PER_ML,
    )
    p.set_continuous_dose(dose_mcg * NG_PER_MCG)
    return p


def morphine_pump(
    conc_mg: int = 25, dose_mg_x10: int = 30, ml: int = 20, profile: ProfileId | None = None
) -> Pump:
    """Morphine at conc_mg mg/mL, dose_mg_x10/10 mg/day."""
    prof = profile or (ProfileId.SYNCHROMED_II_20 if ml == 20 else ProfileId.SYNCHROMED_II_40)
    p = new_pump(prof)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=ml * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=conc_mg * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    p.set_continuous_dose(dose_mg_x10 * NG_PER_MG // 10, confirm_soft_limit=True)
    return p
