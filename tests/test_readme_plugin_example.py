from pathlib import Path

import pytest

import programmer
from emulator.testing import EmulatedPump
from protocol import ConcentrationUnit, Drug


@pytest.mark.pump(profile="synchromed-ii-20", speed=1000)
def test_refill_reminder(pump_emulator: EmulatedPump, tmp_path: Path) -> None:
    with programmer.connect_sync(
        pump_emulator.connection, key=pump_emulator.key_file, journal=tmp_path / "journal"
    ) as pump:
        pump.prepare_refill(
            withdrawn_nl=0,
            added_nl=20_000_000,  # 20 mL
            drug=Drug.MORPHINE,
            conc_ng_per_ml=25_000_000,
            unit=ConcentrationUnit.MG_PER_ML,  # shown as 25 mg/mL
        ).commit()
        pump.prepare_dose(3_000_000).commit()  # 3 mg/day
    pump_emulator.control.advance(until="next-alarm")  # months pass in milliseconds
    assert "LOW_RESERVOIR" in pump_emulator.control.state()["status"]["active_alarms"]
