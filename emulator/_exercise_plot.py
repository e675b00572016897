"""The graded exercise's plot of reservoir and dose (docs/emulator.md section 14): a trace of
the pump taken over the exercise's span, its series in the grade's JSON (`plot`) and an inline
SVG in grade.html (no plotting dependency, nothing fetched).

The trace holds a point (pump clock, calculated and true reservoir, daily dose of the basal
program) when the exercise starts, just before and just after every change (a programmer's
command: `Runtime._handle`; a control action: the console hub's `before_change`/`changed`),
and the report adds one for now. A rate change the pump makes on its own (a flex step, an
alarm that stops delivery) falls between two points: the line joins them straight. Between two
points the reservoir falls at the running rate, so a straight line joins them; a change is a
step (two points at one instant). A point equal to the previous one is not kept.
"""

from __future__ import annotations

import html
from typing import Any

import firmware_model as fm

# pump clock ms, calculated reservoir nL, true reservoir nL, daily dose ng/day
Point = tuple[int, int, int, int]
MAX_POINTS = 2000  # past this, the older half is thinned out (the span is always kept)


def point(pump: fm.Pump) -> Point:
    st = pump.status()
    return (st.clock_ms, st.reservoir_nl, st.true_reservoir_nl, st.daily_dose_ng)


class Trace:
    """The points of one exercise on one pump (a reset starts another trace)."""

    def __init__(self, pump: fm.Pump) -> None:
        self._pump_id = id(pump)
        self.points: list[Point] = [point(pump)]

    def note(self, pump: fm.Pump) -> None:
        if id(pump) != self._pump_id:
            return  # the pump was replaced: its trace is a new one
        row = point(pump)
        if row == self.points[-1]:
            return
        self.points.append(row)
        if len(self.points) > MAX_POINTS:
            half = len(self.points) // 2
            self.points = self.points[:half:2] + self.points[half:]


def series(trace: Trace, pump: fm.Pump) -> dict[str, Any]:
    """The plot's series, in the units a clinician reads: mL, mcg/day; `clock_ms` is the
    pump clock (ms since the epoch, the pump's local time)."""
    rows = list(trace.points)
    if id(pump) == trace._pump_id:
        now = point(pump)
        if now != rows[-1]:
            rows.append(now)
    return {
        "points": len(rows),
        "clock_ms": [r[0] for r in rows],
        "reservoir_ml": [r[1] / fm.NL_PER_ML for r in rows],
        "true_reservoir_ml": [r[2] / fm.NL_PER_ML for r in rows],
        "daily_dose_mcg": [r[3] / 1000 for r in rows],
    }


# --- SVG -------------------------------------------------------------------------------------

W, H = 900, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 80, 30, 50


def _scale(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    return max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad


def svg(s: dict[str, Any]) -> str:
    """The plot as an inline SVG: calculated and true reservoir (mL, left axis) and the daily
    dose (mcg/day, right axis, drawn as steps) against minutes since the exercise started."""
    t: list[int] = s["clock_ms"]
    if not t:
        return ""
    t0, t1 = t[0], max(t[-1], t[0] + 60_000)
    ml: list[float] = s["reservoir_ml"] + s["true_reservoir_ml"]
    m_lo, m_hi = _scale(ml)
    d_lo, d_hi = _scale([0.0, *s["daily_dose_mcg"]])

    def x(ms: int) -> float:
        return LEFT + (W - LEFT - RIGHT) * (ms - t0) / (t1 - t0)

    def y(v: float, lo: float, hi: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo))

    def line(values: list[float], lo: float, hi: float, *, steps: bool = False) -> str:
        pts: list[str] = []
        for i, (ms, v) in enumerate(zip(t, values, strict=True)):
            if steps and i:
                pts.append(f"{x(ms):.1f},{y(values[i - 1], lo, hi):.1f}")
            pts.append(f"{x(ms):.1f},{y(v, lo, hi):.1f}")
        return " ".join(pts)

    minutes = (t1 - t0) / fm.MS_PER_MIN
    e = html.escape
    parts = [
        f'<svg id="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
        f'width="{W}" height="{H}" role="img" data-points="{s["points"]}" '
        'aria-labelledby="plot-title">',
        '<title id="plot-title">Reservoir (calculated and true, mL) and daily dose '
        "(mcg/day) over the exercise</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
        'fill="none" stroke="#888"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = m_lo + (m_hi - m_lo) * frac
        dv = d_lo + (d_hi - d_lo) * frac
        yy = y(v, m_lo, m_hi)
        parts.append(
            f'<text x="{LEFT - 6}" y="{yy + 5:.1f}" text-anchor="end" font-size="14">'
            f"{v:.1f} mL</text>"
            f'<text x="{W - RIGHT + 6}" y="{yy + 5:.1f}" font-size="14">{dv:g}</text>'
        )
    parts.append(
        f'<text x="{LEFT}" y="{H - 15}" font-size="14">0 min</text>'
        f'<text x="{W - RIGHT}" y="{H - 15}" text-anchor="end" font-size="14">'
        f"{minutes:.1f} min (pump clock)</text>"
        f'<text x="{W - RIGHT + 6}" y="{TOP - 10}" font-size="14">mcg/day</text>'
    )
    for cls, key, colour, dash in (
        ("reservoir", "reservoir_ml", "#1f5fa8", ""),
        ("true-reservoir", "true_reservoir_ml", "#136f2a", ' stroke-dasharray="6 4"'),
    ):
        parts.append(
            f'<polyline class="{cls}" fill="none" stroke="{colour}" stroke-width="3"{dash} '
            f'points="{line(s[key], m_lo, m_hi)}"/>'
        )
    parts.append(
        '<polyline class="dose" fill="none" stroke="#a35c00" stroke-width="3" '
        f'points="{line(s["daily_dose_mcg"], d_lo, d_hi, steps=True)}"/>'
    )
    parts.append(
        f'<text x="{LEFT + 8}" y="{TOP + 20}" font-size="14" fill="#1f5fa8">'
        "calculated reservoir (mL)</text>"
        f'<text x="{LEFT + 8}" y="{TOP + 38}" font-size="14" fill="#136f2a">'
        "true reservoir (mL, dashed)</text>"
        f'<text x="{LEFT + 8}" y="{TOP + 56}" font-size="14" fill="#a35c00">'
        f"{e('daily dose (mcg/day, right axis)')}</text></svg>"
    )
    return "".join(parts)
