"""The model's vocabulary and protocol v1's agree value for value, and the model's docs are
fresh. The emulator maps between the two layers by value; these tests keep that an identity."""

from __future__ import annotations

import enum

import pytest

import firmware_model as fm
import protocol as pr
from firmware_model import _doc

PAIRS: list[tuple[type[enum.Enum], type[enum.Enum]]] = [
    (fm.Drug, pr.Drug),
    (fm.ConcentrationUnit, pr.ConcentrationUnit),
    (fm.Mode, pr.ProgramMode),
    (fm.BolusKind, pr.BolusKind),
    (fm.Capability, pr.Capability),
    (fm.Priority, pr.AlarmPriority),
    (fm.AlarmState, pr.AlarmState),
    (fm.Tone, pr.Tone),
    (fm.BatteryState, pr.BatteryState),
    (fm.Source, pr.EventSource),
    (fm.EventKind, pr.EventKind),
    (fm.ProfileId, pr.PumpModel),
]


@pytest.mark.parametrize(("model", "wire"), PAIRS, ids=lambda c: c.__name__)
def test_enums_are_identical(model: type[enum.Enum], wire: type[enum.Enum]) -> None:
    assert {m.name: m.value for m in model} == {w.name: w.value for w in wire}


def test_model_alarms_are_protocol_alarm_bits() -> None:
    for a in fm.Alarm:
        assert pr.Alarm[str(a.name)].value == a.value
    # bits the model does not raise itself (see docs/firmware_model.md section 14)
    rest = {w.name for w in pr.Alarm} - {a.name for a in fm.Alarm}
    assert rest == {"DOSE_LIMIT_EXCEEDED", "WATCHDOG"}


def test_rejection_reasons_are_error_codes() -> None:
    for r in fm.Reason:
        assert pr.ErrorCode[r.name].value == r.value


def test_firmware_model_doc_tables_are_fresh() -> None:
    current = _doc.DOC.read_text(encoding="utf-8")
    assert _doc.render(current) == current, "run: python -m firmware_model._doc --write"
