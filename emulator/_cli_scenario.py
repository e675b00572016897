"""`pump-emulator scenario list|run`: the training scenarios, headless at full speed.

`list` prints the built-in scenarios by file name and title. `run FILE_OR_NAME` loads a scenario
(a TOML file or a built-in name), runs it on a model as fast as the machine allows (a progress
bar on a terminal), checks its expectations, prints one line each and writes the report (JSON,
and a PNG plot unless --no-plot) to --out. Exit 0 when every check passed, 1 when one failed, 2
when the scenario is invalid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._scenario import ScenarioError, builtin_scenarios, load_scenario, run_scenario, write_report


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("scenario", help="run a training scenario headless (or list them)")
    acts = s.add_subparsers(dest="scenario_command", required=True)
    acts.add_parser("list", help="the built-in training scenarios")
    r = acts.add_parser("run", help="run one at full speed, check it, write its report")
    r.add_argument("file", help="a scenario TOML file or a built-in scenario's name")
    r.add_argument("--out", type=Path, help="report directory (default scenario-NAME)")
    r.add_argument("--no-plot", action="store_true", help="JSON summary only")


def scenario(args: argparse.Namespace) -> int:
    """`pump-emulator scenario list|run`: the training scenarios, headless at full speed."""
    if args.scenario_command == "list":
        for name in builtin_scenarios():
            scn = load_scenario(name)
            print(f"{name:32} {scn.name}")
        return 0
    try:
        scn = load_scenario(args.file)
    except ScenarioError as exc:
        print(f"pump-emulator scenario: {exc}", file=sys.stderr)
        return 2

    def progress(share: float) -> None:
        if sys.stderr.isatty():
            filled = int(share * 30)
            print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}", end="", file=sys.stderr)

    try:
        report = run_scenario(scn, progress=progress)
        out = args.out or Path(f"scenario-{Path(str(args.file)).stem}")
        written = write_report(report, out, plot=not args.no_plot)
    except ScenarioError as exc:
        print(f"\npump-emulator scenario: {exc}", file=sys.stderr)
        return 2
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"{scn.name}: {'PASSED' if report.passed else 'FAILED'}")
    for r in report.results:
        print(f"  [{'ok' if r['passed'] else 'FAIL'}] {r['detail']}")
    print("report: " + ", ".join(str(w) for w in written))
    return 0 if report.passed else 1
