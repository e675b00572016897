"""Scenarios: a pump's starting state, a timeline of events and the expectations to check, in
TOML (docs/emulator.md section 14). `run_scenario` plays one headless on the firmware model at
full speed and returns a report; `write_report` writes its JSON summary and PNG plot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tomllib
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import firmware_model as fm

from . import _scenario_report, _scenario_units
from ._clock import zone_offset_ms
from ._exercise import Exercise, parse_exercise
from ._scenario_report import check
from ._scenario_units import _enum, concentration, duration_ms, mass_ng, volume_nl

ScenarioError = _scenario_units.ScenarioError  # the scenario format's error, re-exported
summary = _scenario_report.summary  # re-exported: the CLI and tests take them from here
write_report = _scenario_report.write_report

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: scenarios start at a midnight
NL_PER_ML = fm.NL_PER_ML
PROFILES = {
    "synchromed-ii-20": fm.ProfileId.SYNCHROMED_II_20,
    "synchromed-ii-40": fm.ProfileId.SYNCHROMED_II_40,
    "prometra-ii-20": fm.ProfileId.PROMETRA_II_20,
    "prometra-ii-40": fm.ProfileId.PROMETRA_II_40,
    "constant-flow": fm.ProfileId.CONSTANT_FLOW,
    "external-trial": fm.ProfileId.EXTERNAL_TRIAL,
}
NARRATION_MAX = 300  # characters of one narration line
FAULTS: dict[str, type] = {
    "motor_stall": fm.MotorStall,
    "catheter_occlusion": fm.CatheterOcclusion,
    "catheter_leak": fm.CatheterLeak,
    "catheter_kink": fm.CatheterKink,
    "catheter_granuloma": fm.CatheterGranuloma,
    "pocket_fill": fm.PocketFill,
    "critical_memory_error": fm.CriticalMemoryError,
    "noncritical_memory_error": fm.NoncriticalMemoryError,
    "mri_exposure": fm.MriExposure,
    "delivery_inaccuracy": fm.DeliveryInaccuracy,
    "premature_eri": fm.PrematureEri,
    "premature_eos": fm.PrematureEos,
    "low_battery_reset": fm.LowBatteryReset,
    "air_in_line": fm.AirInLine,
    "external_battery_low": fm.ExternalBatteryLow,
}


# --- the scenario ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    at_ms: int
    action: str
    params: dict[str, Any]
    where: str


@dataclasses.dataclass(frozen=True)
class Expectation:
    kind: str  # alarm, no_alarm, event, refill, bolus_denied, delivered, cap_finding
    params: dict[str, Any]
    where: str


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    profile: fm.ProfileId
    serial: int
    duration_ms: int
    sample_ms: int
    steps: tuple[Step, ...]
    expectations: tuple[Expectation, ...]
    catheter_volume_nl: int | None = None  # None: the model's default (85 cm)
    catheter_primed: bool = False  # an existing patient: the fluid path holds the drug at 0d
    serial_named: bool = False  # [pump] serial given: `serve --scenario` serves that serial
    exercise: Exercise | None = None  # a graded exercise for a trainee (emulator/_exercise.py)

    def new_pump(self, *, now_ms: int, serial: int | None = None) -> fm.Pump:
        """The scenario's pump, powering on at `now_ms`, with its catheter."""
        serial = self.serial if serial is None else serial
        if self.catheter_volume_nl is None:
            return fm.Pump.create(self.profile, serial=serial, now_ms=now_ms)
        return fm.Pump.create(
            self.profile, serial=serial, now_ms=now_ms, catheter_volume_nl=self.catheter_volume_nl
        )


ACTIONS = {
    "refill": {"withdrawn_ml", "withdraw_all", "added_ml", "drug", "concentration",
               "low_alarm_ml"},
    "dose": {"dose"},
    "schedule": {"steps"},
    "bridge": {"previous_concentration", "dose", "catheter_cm", "tubing_ul"},
    "patient_bolus_settings": {"dose", "duration_min", "lockout_min", "max_per_day"},
    "patient_bolus": {"count", "every_min"},
    "clinician_bolus": {"dose", "minutes", "then_stop"},
    "priming_bolus": {"volume_ul", "catheter_cm", "tubing_ul"},
    "narrate": {"text"},
    "implant": {"profile", "serial"},
    "fault": {"kind", "recover_after", "share_ppm", "volume_ml", "duration", "recovery_delay",
              "error_ppm", "restriction_ppm", "start_ppm", "end_ppm", "days"},
    "clear_fault": {"kind"},
    "true_reservoir": {"ml"},
    "cap_aspiration": set(),
    "suspend": set(),
    "resume": set(),
    "clock_sync": {"zone"},
}  # fmt: skip
EXPECTATIONS = {
    "alarm": {"alarm", "after_day", "by_day"},
    "no_alarm": {"alarm", "before_day"},
    "event": {"event", "after_day", "by_day", "min_count"},
    "refill": {"refill", "beyond_limits", "discrepancy_min_ml", "discrepancy_max_ml"},
    "bolus_denied": {"reason", "min_count", "max_count"},
    "delivered": {"delivered", "min_share", "max_share"},
    "cap_finding": {"cap_finding", "after_day", "by_day"},
}


def load_scenario(source: str | Path) -> Scenario:
    """A scenario from a TOML file, TOML text, or the name of a built-in one.

    A single line without `=` is a name or a path (never TOML text): when it is neither a
    built-in scenario nor a file, the error says so and lists the shipped scenarios."""
    if isinstance(source, str) and source in builtin_scenarios():
        text = (resources.files("emulator") / "scenarios" / f"{source}.toml").read_text("utf-8")
    elif isinstance(source, Path) or ("\n" not in source and "=" not in source):
        path = Path(source)
        if not path.is_file():
            raise ScenarioError(
                f"no such scenario or file: {str(source)!r} "
                f"(shipped scenarios: {', '.join(builtin_scenarios())})"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    else:
        text = source
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}") from None
    return parse_scenario(data)


def parse_scenario(data: dict[str, Any]) -> Scenario:
    known = {"name", "description", "pump", "run", "timeline", "expect", "exercise"}
    extra = set(data) - known
    if extra:
        raise ScenarioError(f"unknown section(s): {', '.join(sorted(extra))}")
    pump = data.get("pump", {})
    unknown_pump = set(pump) - PUMP_KEYS
    if unknown_pump:
        raise ScenarioError(
            f"pump: unknown key(s) {', '.join(sorted(unknown_pump))} "
            f"(known: {', '.join(sorted(PUMP_KEYS))})"
        )
    catheter_nl = _catheter_nl(pump)
    primed = pump.get("catheter_primed", False)
    if not isinstance(primed, bool):
        raise ScenarioError("pump.catheter_primed must be true or false")
    profile = pump.get("profile", "synchromed-ii-20")
    if profile not in PROFILES:
        raise ScenarioError(f"pump.profile must be one of {', '.join(PROFILES)}")
    serial = pump.get("serial", 1234)
    if not isinstance(serial, int) or not 0 < serial < 0xFFFF_FFFF:
        raise ScenarioError("pump.serial must be 1 .. 4294967294")
    run = data.get("run", {})
    steps = []
    for i, entry in enumerate(data.get("timeline", []), 1):
        where = f"timeline[{i}]"
        if not isinstance(entry, dict) or "action" not in entry or "at" not in entry:
            raise ScenarioError(f"{where}: needs at and action")
        action = entry["action"]
        if action not in ACTIONS:
            raise ScenarioError(f"{where}: action must be one of {', '.join(ACTIONS)}")
        params = {k: v for k, v in entry.items() if k not in ("at", "action")}
        unknown = set(params) - ACTIONS[action]
        if unknown:
            raise ScenarioError(f"{where}: {action} takes no {', '.join(sorted(unknown))}")
        step = Step(duration_ms(entry["at"], f"{where}.at"), action, params, where)
        _check_step(step)
        steps.append(step)
    expectations = []
    for i, entry in enumerate(data.get("expect", []), 1):
        where = f"expect[{i}]"
        if not isinstance(entry, dict):
            raise ScenarioError(f"{where}: a table of fields")
        if "reason" in entry:
            kind = "bolus_denied"
        elif "delivered" in entry or "cap_finding" in entry:
            kind = "delivered" if "delivered" in entry else "cap_finding"
        elif "refill" in entry:
            kind = "refill"
        elif "event" in entry:
            kind = "event"
        elif "alarm" in entry:
            kind = "no_alarm" if "before_day" in entry else "alarm"
        else:
            raise ScenarioError(
                f"{where}: say what to expect: alarm, event, refill, reason, delivered or "
                "cap_finding"
            )
        unknown = set(entry) - EXPECTATIONS[kind]
        if unknown:
            raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        expectations.append(Expectation(kind, dict(entry), where))
    duration = duration_ms(run.get("duration", "0d"), "run.duration")
    last = max((s.at_ms for s in steps), default=0)
    scenario = Scenario(
        name=str(data.get("name", "unnamed")),
        description=str(data.get("description", "")),
        profile=PROFILES[profile],
        serial=serial,
        duration_ms=max(duration, last),
        sample_ms=duration_ms(run.get("sample_every", "6h"), "run.sample_every"),
        steps=tuple(sorted(steps, key=lambda s: s.at_ms)),
        expectations=tuple(expectations),
        catheter_volume_nl=catheter_nl,
        catheter_primed=primed,
        serial_named="serial" in pump,
        exercise=parse_exercise(data["exercise"]) if "exercise" in data else None,
    )
    if scenario.sample_ms < fm.MS_PER_MIN:
        raise ScenarioError("run.sample_every must be at least 1m")
    return scenario


PUMP_KEYS = frozenset({"profile", "serial", "catheter_cm", "catheter_ul_per_cm", "catheter_primed"})


def _catheter_nl(pump: dict[str, Any]) -> int | None:
    """`catheter_cm` (1 .. 200) x `catheter_ul_per_cm` (default 2.6, domain.md #27), in nL."""
    if "catheter_cm" not in pump:
        if "catheter_ul_per_cm" in pump:
            raise ScenarioError("pump.catheter_ul_per_cm goes with pump.catheter_cm")
        return None
    cm = pump["catheter_cm"]
    if not isinstance(cm, int) or isinstance(cm, bool) or not 1 <= cm <= 200:
        raise ScenarioError("pump.catheter_cm must be a whole number of cm, 1 .. 200")
    per_cm = Decimal(str(pump.get("catheter_ul_per_cm", fm.CATHETER_NL_PER_CM / 1000)))
    if not Decimal("0.5") <= per_cm <= Decimal(20):
        raise ScenarioError("pump.catheter_ul_per_cm must be 0.5 .. 20 (uL per cm)")
    return int(cm * per_cm * 1000)


def _fluid_path_nl(pump: fm.Pump, p: dict[str, Any]) -> int:
    """What a bridge flushes or a priming bolus fills: the pump's own catheter and tubing
    (as a programmer reads them, CATHETER_INFO), or `catheter_cm` x 2.6 uL/cm plus `tubing_ul`
    as a clinician would enter them."""
    catheter = (
        int(p["catheter_cm"]) * fm.CATHETER_NL_PER_CM
        if "catheter_cm" in p
        else pump.catheter_volume_nl
    )
    tubing = int(p["tubing_ul"]) * 1_000 if "tubing_ul" in p else pump.profile.pump_tubing_nl
    return catheter + tubing


def _check_step(step: Step) -> None:
    """What can be checked before a run: narration text, the implant's new pump."""
    p, w = step.params, step.where
    if step.action == "narrate":
        text = p.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > NARRATION_MAX:
            raise ScenarioError(f"{w}: narrate needs text, 1 .. {NARRATION_MAX} characters")
    elif step.action == "implant":
        if p.get("profile") not in PROFILES:
            raise ScenarioError(f"{w}.profile must be one of {', '.join(PROFILES)}")
        serial = p.get("serial", 1)
        if not isinstance(serial, int) or not 0 < serial < 0xFFFF_FFFF:
            raise ScenarioError(f"{w}.serial must be 1 .. 4294967294")
        if step.at_ms == 0:
            raise ScenarioError(
                f"{w}: an implant at 0d is the starting pump: set [pump] profile instead"
            )


def builtin_scenarios() -> list[str]:
    folder = resources.files("emulator") / "scenarios"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


# --- running -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    scenario: Scenario
    samples: list[tuple[float, float, float, float, float]]  # day, calc mL, true mL, mL/day, mg
    alarms: list[tuple[float, str]]  # day raised, alarm
    refills: list[dict[str, Any]]
    results: list[dict[str, Any]]  # one per expectation
    events: list[fm.Event]  # every pump's, oldest pump first (an implant starts a new log)
    final: dict[str, Any]
    narration: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # day, text
    pumps: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # day, profile, serial

    @property
    def passed(self) -> bool:
        return all(r["passed"] for r in self.results)


def starting_pump(scenario: Scenario, *, now_ms: int, serial: int | None = None) -> fm.Pump:
    """A new pump in the scenario's starting state: created at `now_ms`, past its self test,
    with every timeline step at time 0 applied (for `serve --scenario` and the control
    plane's reset). Later steps are the trainer's to play."""
    pump = scenario.new_pump(now_ms=now_ms, serial=serial)
    pump.advance_to(pump.self_test_ends_at)
    for step in scenario.steps:
        if step.at_ms == 0 and step.action != "narrate":  # narration is the trainer's
            _apply(pump, step, [], pump.now)
    if scenario.catheter_primed:
        pump.fill_catheter()
    return pump


def narration(scenario: Scenario) -> list[tuple[int, str]]:
    """The scenario's narration: (ms after the start, text), in timeline order."""
    return [(s.at_ms, str(s.params["text"])) for s in scenario.steps if s.action == "narrate"]


def implant(pump: fm.Pump, step: Step, serial: int) -> fm.Pump:
    """The `implant` action: a new pump of the step's profile replaces the trial pump at the
    same instant and on the same clock; its log starts fresh (POWER_ON), empty and unprimed."""
    new = fm.Pump.create(
        PROFILES[step.params["profile"]],
        serial=int(step.params.get("serial", serial)),
        now_ms=pump.now,
        clock_ms=pump.clock_ms,
    )
    new.advance_to(new.self_test_ends_at)
    return new


def run_scenario(scenario: Scenario, *, progress: Callable[[float], None] | None = None) -> Report:
    """Play the scenario on a fresh model at full speed."""
    pump = scenario.new_pump(now_ms=T0)
    start = pump.self_test_ends_at
    pump.advance_to(start)
    samples: list[tuple[float, float, float, float, float]] = []
    refills: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    pumps = [{"day": 0.0, "profile": pump.profile.name, "serial": pump.serial}]
    earlier_events: list[fm.Event] = []  # the pumps an implant replaced
    earlier_dose_ng = 0
    end = start + scenario.duration_ms
    next_sample = start

    def sample_until(t: int) -> None:
        nonlocal next_sample
        t = max(t, pump.now)  # an action may have moved time on (a series of presses)
        while next_sample < pump.now:
            next_sample += scenario.sample_ms
        while next_sample <= t:
            pump.advance_to(next_sample)
            st = pump.status()
            conc = st.conc_ng_per_ml
            samples.append(
                (
                    (next_sample - start) / fm.DAY_MS,
                    st.reservoir_nl / NL_PER_ML,
                    st.true_reservoir_nl / NL_PER_ML,
                    st.current_rate_nl_per_day / NL_PER_ML,
                    (st.patient_dose_ng + earlier_dose_ng) / fm.NG_PER_MG if conc else 0.0,
                )
            )
            next_sample += scenario.sample_ms
            if progress is not None:
                progress(min(1.0, (next_sample - start) / max(1, scenario.duration_ms)))
        pump.advance_to(t)

    filled = not scenario.catheter_primed
    for step in scenario.steps:
        if not filled and step.at_ms > 0:  # an existing patient: after the time-0 steps
            pump.fill_catheter()
            filled = True
        sample_until(start + step.at_ms)
        day = (pump.now - start) / fm.DAY_MS
        if step.action == "narrate":
            notes.append({"day": day, "text": str(step.params["text"])})
        elif step.action == "implant":
            earlier_events += pump.events()
            earlier_dose_ng += pump.status().patient_dose_ng
            pump = implant(pump, step, pump.serial + 1)
            pumps.append({"day": day, "profile": pump.profile.name, "serial": pump.serial})
        else:
            _apply(pump, step, refills, start)
    if not filled:
        pump.fill_catheter()
    sample_until(end)
    events = earlier_events + pump.events()
    alarms = [
        ((e.time_ms - (pump.clock_ms - pump.now) - start) / fm.DAY_MS, fm.Alarm(e.a).name or "?")
        for e in events
        if e.kind is fm.EventKind.ALARM_RAISED
    ]
    st = pump.status()
    final = {
        "day": (pump.now - start) / fm.DAY_MS,
        "mode": st.mode.name,
        "reservoir_ml": st.reservoir_nl / NL_PER_ML,
        "true_reservoir_ml": st.true_reservoir_nl / NL_PER_ML,
        "active_alarms": [a.name for a in fm.Alarm if a in st.active_alarms],
        "battery": st.battery.name,
        "delivered_mg": (st.patient_dose_ng + earlier_dose_ng) / fm.NG_PER_MG,
        "profile": pump.profile.name,
        # the ground truth of the pump now implanted: what it counted, what left its
        # reservoir, what reached the patient (a catheter complication parts them:
        # docs/firmware_model.md section 18)
        "program_ml": st.program_total_nl / NL_PER_ML,
        "pumped_ml": st.pumped_total_nl / NL_PER_ML,
        "patient_ml": st.patient_total_nl / NL_PER_ML,
    }
    report = Report(scenario, samples, alarms, refills, [], events, final, notes, pumps)
    report.results = [check(x, report, start, pump) for x in scenario.expectations]
    return report


def _apply(pump: fm.Pump, step: Step, refills: list[dict[str, Any]], start: int) -> None:
    p, w = step.params, step.where
    try:
        if step.action == "refill":
            st = pump.status()
            conc, unit = (
                concentration(p["concentration"], f"{w}.concentration")
                if "concentration" in p
                else (st.conc_ng_per_ml, st.conc_unit)
            )
            drug = _enum(fm.Drug, p["drug"], f"{w}.drug") if "drug" in p else st.drug
            withdrawn = (
                st.true_reservoir_nl
                if p.get("withdraw_all", "withdrawn_ml" not in p)
                else volume_nl(p["withdrawn_ml"], f"{w}.withdrawn_ml")
            )
            r = pump.record_refill(
                withdrawn_nl=withdrawn,
                added_nl=volume_nl(p["added_ml"], f"{w}.added_ml"),
                drug=drug,
                conc_ng_per_ml=conc,
                unit=unit,
                low_threshold_nl=volume_nl(p["low_alarm_ml"], f"{w}.low_alarm_ml")
                if "low_alarm_ml" in p
                else None,
                confirm_soft_limit=True,
            )
            refills.append(
                {
                    "day": (pump.now - start) / fm.DAY_MS,
                    "withdrawn_ml": withdrawn / NL_PER_ML,
                    "expected_residual_ml": r.expected_residual_nl / NL_PER_ML,
                    "discrepancy_ml": r.discrepancy_nl / NL_PER_ML,
                    "delivery_ratio": None
                    if r.delivery_ratio_ppm is None
                    else r.delivery_ratio_ppm / fm.PPM,
                    "beyond_limits": r.beyond_limits,
                }
            )
        elif step.action == "dose":
            pump.set_continuous_dose(mass_ng(p["dose"], f"{w}.dose"), confirm_soft_limit=True)
        elif step.action == "schedule":
            plan = []
            for text in p["steps"]:
                clock, _, dose = str(text).partition("=")
                hh, _, mm = clock.partition(":")
                plan.append((int(hh) * 60 + int(mm), mass_ng(dose, f"{w}.steps")))
            pump.set_schedule(plan, confirm_soft_limit=True)
        elif step.action == "bridge":
            prev, _ = concentration(p["previous_concentration"], f"{w}.previous_concentration")
            dead = _fluid_path_nl(pump, p)
            pump.start_bridge(dead, prev, mass_ng(p["dose"], f"{w}.dose"), confirm_soft_limit=True)
        elif step.action == "patient_bolus_settings":
            pump.set_patient_bolus(
                enabled=True,
                dose_ng=mass_ng(p["dose"], f"{w}.dose"),
                duration_ms=int(p.get("duration_min", 10)) * fm.MS_PER_MIN,
                lockout_ms=int(p.get("lockout_min", 60)) * fm.MS_PER_MIN,
                max_per_24h=int(p.get("max_per_day", 6)),
                confirm_soft_limit=True,
            )
        elif step.action == "patient_bolus":
            every = int(p.get("every_min", 60)) * fm.MS_PER_MIN
            for i in range(int(p.get("count", 1))):
                if i:
                    pump.advance_to(pump.now + every)
                # A refusal is logged (BOLUS_DENIED): that is what the scenario checks.
                with contextlib.suppress(fm.Rejected):
                    pump.request_patient_bolus()
        elif step.action == "clinician_bolus":
            pump.start_clinician_bolus(
                mass_ng(p["dose"], f"{w}.dose"),
                int(p.get("minutes", 10)) * fm.MS_PER_MIN,
                then_stop=bool(p.get("then_stop", False)),
                confirm_soft_limit=True,
            )
        elif step.action == "priming_bolus":
            pump.start_priming_bolus(
                volume_nl(Decimal(str(p["volume_ul"])) / 1000, f"{w}.volume_ul")
                if "volume_ul" in p
                else _fluid_path_nl(pump, p)
            )
        elif step.action == "fault":
            kind = str(p["kind"]).lower()
            if kind not in FAULTS:
                raise ScenarioError(f"{w}.kind must be one of {', '.join(FAULTS)}")
            args: dict[str, Any] = {}
            if "recover_after" in p:
                args["recover_after_ms"] = duration_ms(p["recover_after"], f"{w}.recover_after")
            if "duration" in p:
                args["duration_ms"] = duration_ms(p["duration"], f"{w}.duration")
            if "recovery_delay" in p:
                args["recovery_delay_ms"] = duration_ms(p["recovery_delay"], f"{w}.recovery_delay")
            if "volume_ml" in p:
                args["volume_nl"] = volume_nl(p["volume_ml"], f"{w}.volume_ml")
            for k in ("share_ppm", "error_ppm", "restriction_ppm", "start_ppm", "end_ppm", "days"):
                if k in p:
                    args[k] = int(p[k])
            pump.inject(FAULTS[kind](**args))
        elif step.action == "clear_fault":
            pump.clear_fault(_enum(fm.FaultKind, p["kind"], f"{w}.kind"))
        elif step.action == "true_reservoir":
            pump.set_true_reservoir(volume_nl(p["ml"], f"{w}.ml"))
        elif step.action == "cap_aspiration":
            pump.aspirate_cap()
        elif step.action == "suspend":
            pump.suspend()
        elif step.action == "resume":
            pump.resume()
        elif step.action == "clock_sync":  # a programmer's `clock --sync --zone NAME`
            zone = str(p["zone"])
            try:
                offset_ms = zone_offset_ms(zone, pump.clock_ms)
            except ValueError:
                raise ScenarioError(f"{w}: zone {zone!r} is not an IANA time zone") from None
            pump.set_clock(pump.clock_ms, utc_offset_ms=offset_ms, zone=zone)
    except fm.Rejected as exc:
        raise ScenarioError(f"{w}: the pump refused {step.action}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise ScenarioError(f"{w}: {step.action} needs {exc}") from None
