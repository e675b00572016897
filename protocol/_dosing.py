"""The pump's dose, rate and volume arithmetic (docs/protocol.md section 18), and the worked
examples the document shows. The examples are data: the document is rendered from them and
tests/test_spec_examples.py applies each one to a default pump (the emulator's SynchroMed II
20 mL, refilled with the example's drug), so every example shown is one a pump accepts (or
refuses with the code shown).

Every division is integer division. The pump floors a derived rate, bolus volume or dose
(never rounds up: a pump never gives more than asked) and rounds a duration up (so the whole
volume is given).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._enums import ConcentrationUnit, Drug
from ._errors import ErrorCode
from ._msg_records import DAY_MS, ScheduleStep
from ._msg_therapy import (
    SetContinuousDose,
    SetSchedule,
    StartBridge,
    StartClinicianBolus,
    StartPrimingBolus,
)
from ._schema import Message

NL_PER_ML = 1_000_000
NG_PER_MG = 1_000_000
NG_PER_MCG = 1_000


def rate_nl_per_day(dose_ng_per_day: int, conc_ng_per_ml: int) -> int:
    """The basal rate of a daily dose: floor(dose x 10^6 / concentration)."""
    return dose_ng_per_day * NL_PER_ML // conc_ng_per_ml


def bolus_volume_nl(dose_ng: int, conc_ng_per_ml: int) -> int:
    """The volume of a bolus dose: floor(dose x 10^6 / concentration)."""
    return dose_ng * NL_PER_ML // conc_ng_per_ml


def dose_of_volume_ng(volume_nl: int, conc_ng_per_ml: int) -> int:
    """The drug in a volume (a priming bolus's dose): floor(volume x concentration / 10^6)."""
    return volume_nl * conc_ng_per_ml // NL_PER_ML


def duration_ms(volume_nl: int, rate_nl_per_day: int) -> int:
    """How long a volume takes at a rate: ceil(volume x 86,400,000 / rate)."""
    return -(-volume_nl * DAY_MS // rate_nl_per_day)


@dataclass(frozen=True)
class DoseExample:
    """One worked example: a default pump was refilled with 20 mL of `drug` at
    `conc_ng_per_ml` (program version 2) and, if `programmed`, then given the program
    `SET_CONTINUOUS_DOSE 5 mg/day` (version 3: a bolus needs a confirmed program); the host
    sends `message`. `refused` is the code a default pump answers, None when it accepts."""

    title: str
    drug: Drug
    conc_ng_per_ml: int
    unit: ConcentrationUnit
    message: Message
    refused: ErrorCode | None = None
    programmed: bool = False


_CID = bytes(16)
_MORPHINE = (Drug.MORPHINE, 25 * NG_PER_MG, ConcentrationUnit.MG_PER_ML)
_BACLOFEN = (Drug.BACLOFEN, 2_000 * NG_PER_MCG, ConcentrationUnit.MCG_PER_ML)
# program version 2: a fresh pump after its first refill; 3: and its first program

DOSE_EXAMPLES: tuple[DoseExample, ...] = (
    DoseExample(
        "continuous: 5 mg/day of morphine 25 mg/mL",
        *_MORPHINE,
        SetContinuousDose(
            command_id=_CID,
            expected_program_version=2,
            dose_ng_per_day=5 * NG_PER_MG,
            confirm_soft_limit=False,
        ),
    ),
    DoseExample(
        "continuous, the rate floored: 1.234567 mg/day of morphine 25 mg/mL",
        *_MORPHINE,
        SetContinuousDose(
            command_id=_CID,
            expected_program_version=2,
            dose_ng_per_day=1_234_567,
            confirm_soft_limit=False,
        ),
    ),
    DoseExample(
        "continuous: 300 mcg/day of baclofen 2,000 mcg/mL",
        *_BACLOFEN,
        SetContinuousDose(
            command_id=_CID,
            expected_program_version=2,
            dose_ng_per_day=300 * NG_PER_MCG,
            confirm_soft_limit=False,
        ),
    ),
    DoseExample(
        "schedule: 4 mg/day from 00:00, 6 mg/day from 07:00, morphine 25 mg/mL",
        *_MORPHINE,
        SetSchedule(
            command_id=_CID,
            expected_program_version=2,
            confirm_soft_limit=False,
            steps=(ScheduleStep(0, 4 * NG_PER_MG), ScheduleStep(420, 6 * NG_PER_MG)),
        ),
    ),
    DoseExample(
        "clinician bolus: 1 mg over 60 min, morphine 25 mg/mL",
        *_MORPHINE,
        StartClinicianBolus(
            command_id=_CID,
            expected_program_version=3,
            dose_ng=1 * NG_PER_MG,
            duration_ms=3_600_000,
            then_stop=False,
            confirm_soft_limit=False,
        ),
        programmed=True,
    ),
    DoseExample(
        "priming bolus: the default catheter and tubing, 233 uL, morphine 25 mg/mL",
        *_MORPHINE,
        StartPrimingBolus(command_id=_CID, expected_program_version=3, volume_nl=233_000),
        programmed=True,
    ),
    DoseExample(
        "bridge: 5 mg/day after a change from 20 to 25 mg/mL, 233 uL of dead volume",
        *_MORPHINE,
        StartBridge(
            command_id=_CID,
            expected_program_version=2,
            dead_volume_nl=233_000,
            previous_concentration_ng_per_ml=20 * NG_PER_MG,
            dose_ng_per_day=5 * NG_PER_MG,
            confirm_soft_limit=False,
        ),
    ),
    DoseExample(
        "refused: 0.5 mg/day of morphine 25 mg/mL is 0.02 mL/day, below the pump's minimum",
        *_MORPHINE,
        SetContinuousDose(
            command_id=_CID,
            expected_program_version=2,
            dose_ng_per_day=500_000,
            confirm_soft_limit=False,
        ),
        refused=ErrorCode.RATE_OUT_OF_RANGE,
    ),
)


def _n(value: int) -> str:
    return f"{value:,}"


def _div(num: str, den: int, value: int, *, up: bool = False) -> str:
    return f"{'ceil' if up else 'floor'}({num} / {_n(den)}) = {_n(value)}"


def derived(ex: DoseExample) -> dict[str, tuple[int, str]]:
    """What the pump derives from an example's message: name -> (value, the computation
    written out), the numbers and formulas the document shows."""
    m, conc = ex.message, ex.conc_ng_per_ml
    out: dict[str, tuple[int, str]] = {}

    def rate(name: str, dose: int, c: int) -> int:
        r = rate_nl_per_day(dose, c)
        out[name] = (r, _div(f"{_n(dose)} x 1,000,000", c, r) + " nL/day")
        return r

    if isinstance(m, SetContinuousDose):
        rate("rate_nl_per_day", m.dose_ng_per_day, conc)
    elif isinstance(m, SetSchedule):
        for i, step in enumerate(m.steps):
            rate(f"step {i + 1} rate_nl_per_day", step.dose_ng_per_day, conc)
    elif isinstance(m, StartClinicianBolus):
        v = bolus_volume_nl(m.dose_ng, conc)
        out["volume_nl"] = (v, _div(f"{_n(m.dose_ng)} x 1,000,000", conc, v) + " nL")
    elif isinstance(m, StartPrimingBolus):
        d = dose_of_volume_ng(m.volume_nl, conc)
        out["dose_ng"] = (d, _div(f"{_n(m.volume_nl)} x {_n(conc)}", NL_PER_ML, d) + " ng")
    elif isinstance(m, StartBridge):
        old = rate("bridge rate_nl_per_day", m.dose_ng_per_day, m.previous_concentration_ng_per_ml)
        t = duration_ms(m.dead_volume_nl, old)
        out["bridge duration_ms"] = (
            t, _div(f"{_n(m.dead_volume_nl)} x 86,400,000", old, t, up=True) + " ms"
        )  # fmt: skip
        rate("rate_nl_per_day", m.dose_ng_per_day, conc)
    else:
        raise TypeError(f"no arithmetic for {m.NAME}")
    return out
