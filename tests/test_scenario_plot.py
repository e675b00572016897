"""The scenario report's PNG: alarm labels a trainee can read (issue 19 item 12): at least
10 pt, horizontal, inside the reservoir panel below its top edge, never over each other, for
alarms days apart, hours apart, and at the run's end."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from emulator._scenario import load_scenario, run_scenario
from emulator._scenario_report import ALARM_FONT_PT, figure

pytest.importorskip("matplotlib")


def _labels(fig: Any) -> list[Any]:
    ax = fig.axes[0]
    return [t for t in ax.texts if t.get_color() == "#b00000"]


@pytest.mark.parametrize(
    "alarms",
    [
        None,  # the scenario's own: LOW_RESERVOIR on day 72, EMPTY_RESERVOIR on day 80 of 85
        [(84.9, "EMPTY_RESERVOIR"), (84.95, "MOTOR_STALL"), (85.0, "LOW_BATTERY_ERI")],
        [(d / 24, a) for d, a in zip(range(6), itertools.cycle(["LOW_RESERVOIR", "MOTOR_STALL"]))],
    ],
    ids=["own", "crowded-at-the-end", "hours-apart"],
)
def test_alarm_labels_are_readable_inside_the_panel_and_apart(
    alarms: list[tuple[float, str]] | None,
) -> None:
    report = run_scenario(load_scenario("low-reservoir-alarm-day"))
    if alarms is not None:
        report = dataclasses.replace(report, alarms=alarms)
    fig = figure(report)
    renderer = fig.canvas.get_renderer()
    box = fig.axes[0].get_window_extent(renderer)
    labels = _labels(fig)
    assert 0 < len(labels) <= len(report.alarms)
    extents = []
    for label in labels:
        assert label.get_fontsize() >= ALARM_FONT_PT >= 10
        assert label.get_rotation() == 0
        e = label.get_window_extent(renderer)
        assert box.x0 <= e.x0 and e.x1 <= box.x1, label.get_text()  # not cut at the sides
        assert e.y1 <= box.y1 - 3 and e.y0 >= box.y0, label.get_text()  # below the top edge
        extents.append(e)
    for a, b in itertools.combinations(extents, 2):
        assert not a.overlaps(b)
    shown = " ".join(t.get_text() for t in labels)
    assert all(a.lower().replace("_", " ") in shown for _, a in report.alarms)
