"""Scenario results: each expectation checked against the run (`check`), the summary a
trainer reads (`summary`, `summary.json`) and the plot of reservoir, rate and dose
(`plot.png`, with matplotlib installed). The scenario format and the run are _scenario.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import firmware_model as fm

from ._scenario_units import ScenarioError, _enum

if TYPE_CHECKING:
    from ._scenario import Expectation, Report


def check(x: Expectation, report: Report, start: int, pump: fm.Pump) -> dict[str, Any]:
    p = x.params
    off = pump.clock_ms - pump.now
    passed, detail = False, ""
    if x.kind in ("alarm", "no_alarm"):
        name = str(p["alarm"]).upper()
        days = [d for d, a in report.alarms if a == name]
        if x.kind == "alarm":
            lo, hi = float(p.get("after_day", 0)), float(p.get("by_day", 1e9))
            hit = [d for d in days if lo <= d <= hi]
            passed = bool(hit)
            detail = (
                f"{name} raised on day {hit[0]:.2f}"
                if hit
                else (f"{name} raised on days {[round(d, 2) for d in days]}, expected {lo} .. {hi}")
            )
        else:
            before = float(p["before_day"])
            early = [d for d in days if d < before]
            passed = not early
            detail = (
                f"{name} not raised before day {before}"
                if passed
                else (f"{name} raised on day {early[0]:.2f}, before day {before}")
            )
    elif x.kind == "event":
        kind = _enum(fm.EventKind, p["event"], f"{x.where}.event")
        lo, hi = float(p.get("after_day", 0)), float(p.get("by_day", 1e9))
        n = sum(
            1
            for e in report.events
            if e.kind is kind and lo <= (e.time_ms - off - start) / fm.DAY_MS <= hi
        )
        passed = n >= int(p.get("min_count", 1))
        detail = f"{n} {kind.name} record(s) between day {lo} and {hi}"
    elif x.kind == "refill":
        i = int(p["refill"])
        if not 1 <= i <= len(report.refills):
            detail = f"there were {len(report.refills)} refills, not {i}"
        else:
            r = report.refills[i - 1]
            ok = True
            if "beyond_limits" in p:
                ok &= r["beyond_limits"] == bool(p["beyond_limits"])
            if "discrepancy_min_ml" in p:
                ok &= r["discrepancy_ml"] >= float(p["discrepancy_min_ml"])
            if "discrepancy_max_ml" in p:
                ok &= r["discrepancy_ml"] <= float(p["discrepancy_max_ml"])
            passed = ok
            detail = (
                f"refill {i} on day {r['day']:.1f}: discrepancy {r['discrepancy_ml']:+.3f} mL, "
                f"beyond limits {r['beyond_limits']}"
            )
    elif x.kind == "delivered":  # a share of the program volume, over the whole run
        which = str(p["delivered"])
        if which not in ("pumped", "patient"):
            raise ScenarioError(f"{x.where}.delivered must be pumped or patient")
        got = report.final[f"{which}_ml"] / max(report.final["program_ml"], 1e-9)
        lo, hi = float(p.get("min_share", 0)), float(p.get("max_share", 1e9))
        passed = lo <= got <= hi
        want = f"at least {lo:.1%}" if hi >= 1e9 else f"{lo:.1%} .. {hi:.1%}"
        detail = f"{which}: {got:.1%} of the program volume, expected {want}"
    elif x.kind == "cap_finding":
        want = _enum(fm.CapFinding, p["cap_finding"], f"{x.where}.cap_finding")
        lo, hi = float(p.get("after_day", 0)), float(p.get("by_day", 1e9))
        found = [
            fm.CapFinding(e.b).name
            for e in report.events
            if e.kind is fm.EventKind.CONTROL
            and e.a == fm.CONTROL_CAP_ASPIRATION
            and lo <= (e.time_ms - off - start) / fm.DAY_MS <= hi
        ]
        passed = want.name in found
        detail = f"CAP aspiration(s) between day {lo} and {hi} found {found or 'nothing'}"
    else:  # bolus_denied
        reason = _enum(fm.Reason, p["reason"], f"{x.where}.reason")
        n = sum(1 for e in report.events if e.kind is fm.EventKind.BOLUS_DENIED and e.a == reason)
        passed = int(p.get("min_count", 1)) <= n <= int(p.get("max_count", 10**9))
        detail = f"{n} patient bolus(es) denied with {reason.name}"
    return {"expectation": x.where, "kind": x.kind, "passed": passed, "detail": detail}


# --- the report ----------------------------------------------------------------------------


def summary(report: Report) -> dict[str, Any]:
    s = report.scenario
    return {
        "scenario": s.name,
        "description": s.description,
        "profile": s.profile.name,
        "passed": report.passed,
        "expectations": report.results,
        "alarms": [{"day": round(d, 3), "alarm": a} for d, a in report.alarms],
        "refills": report.refills,
        "narration": [{"day": round(n["day"], 4), "text": n["text"]} for n in report.narration],
        "pumps": report.pumps,
        "final": report.final,
    }


def write_report(report: Report, out_dir: Path, *, plot: bool = True) -> list[Path]:
    """`summary.json` and, with matplotlib installed, `plot.png`. Returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "summary.json"]
    written[0].write_text(json.dumps(summary(report), indent=2))
    if plot:
        written.append(_plot(report, out_dir / "plot.png"))
    return written


def _plot(report: Report, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = figure(report)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


ALARM_FONT_PT = 10  # readable at the PNG's 1000 x 800 px


def figure(report: Report) -> Any:
    """The report's matplotlib figure: reservoir, rate, delivered; alarms (red, labelled),
    refills (green), narration (blue, dotted)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ScenarioError(
            "the PNG plot needs matplotlib: pip install 'intrathecal-pump-emulator[plot]' "
            "(or use --no-plot)"
        ) from None
    days = [x[0] for x in report.samples]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    axes[0].plot(days, [x[1] for x in report.samples], label="calculated (pump)")
    axes[0].plot(days, [x[2] for x in report.samples], label="true", linestyle="--")
    axes[0].set_ylabel("reservoir, mL")
    axes[0].legend(loc="lower left")
    axes[1].step(days, [x[3] for x in report.samples], where="post")
    axes[1].set_ylabel("rate, mL/day")
    axes[2].plot(days, [x[4] for x in report.samples])
    axes[2].set_ylabel("delivered, mg")
    axes[2].set_xlabel("day")
    for day, _alarm in report.alarms:
        for ax in axes:
            ax.axvline(day, color="red", alpha=0.4)
    for r in report.refills:
        axes[0].axvline(r["day"], color="green", alpha=0.4)
    for n in report.narration:  # the instructor's notes: blue, dotted
        axes[2].axvline(n["day"], color="blue", alpha=0.4, linestyle=":")
    fig.suptitle(report.scenario.name)
    fig.tight_layout()
    _label_alarms(fig, axes[0], report.alarms)
    return fig


def _label_alarms(fig: Any, ax: Any, alarms: list[tuple[float, str]]) -> None:
    """Alarm names beside their red lines, horizontal, inside the reservoir panel below its top
    edge, on a white box; right of the line, or left of it near the panel's right edge. A label
    that would overlap another goes a row lower (up to four rows); the same alarm raised again
    under its own label counts there ("motor stall x3") instead of a label of its own."""
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    rows: list[list[tuple[float, float]]] = [[] for _ in range(4)]  # occupied spans, px
    placed: list[tuple[str, tuple[float, float], Any, list[int]]] = []  # name, span, label, n
    for day, alarm in sorted(alarms):
        name = alarm.lower().replace("_", " ")
        x_px = ax.transData.transform((day, 0))[0]
        again = next(
            (q for q in placed if q[0] == name and q[1][0] - 8 <= x_px <= q[1][1] + 8), None
        )
        if again is not None:
            again[3][0] += 1
            again[2].set_text(f"{name} x{again[3][0]}")
            continue
        label = ax.annotate(
            name,
            (day, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -6),
            textcoords="offset points",
            fontsize=ALARM_FONT_PT,
            va="top",
            ha="left",
            color="#b00000",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )
        extent = label.get_window_extent(renderer)
        if extent.x1 + 30 > box.x1 - 2:  # no room on the right (with room for " x3"): left
            label.set_horizontalalignment("right")
            label.xyann = (-3, -6)
            extent = label.get_window_extent(renderer)
        span = (extent.x0 - 34, extent.x1 + 34)  # room for a count to grow into
        free = [i for i, row in enumerate(rows) if all(b < span[0] or a > span[1] for a, b in row)]
        row = free[0] if free else min(range(4), key=lambda i: len(rows[i]))
        rows[row].append(span)
        label.xyann = (label.xyann[0], -6 - row * (ALARM_FONT_PT + 8))
        placed.append((name, span, label, [1]))
