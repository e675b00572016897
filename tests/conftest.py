from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("slow", max_examples=5000, deadline=None)
settings.load_profile("default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the larger variants of the robustness tests (marker: slow)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--run-slow"):
        settings.load_profile("slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # the key-hygiene sweep looks at what every other test left behind: it runs last
    items.sort(key=lambda item: "sweep_after_suite" in item.keywords)
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="larger variant: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# Every test's report texts (exception text, captured stdout, stderr and log), for the key-hygiene
# sweep (tests/test_key_hygiene.py).
REPORT_TEXTS: list[str] = []
SUMMARY: list[str] = []  # lines for the end of the run (the sweep's figures)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.longrepr is not None:
        REPORT_TEXTS.append(report.longreprtext)
    REPORT_TEXTS.extend(text for _, text in report.sections)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARY:
        terminalreporter.write_line(line)


# --- a private Mosquitto broker (reference/libraries.md 2.5) ----------------------------------

from emulator.testing import Broker  # noqa: E402  (shared with the pytest plugin)

from .browser_helpers import browser  # noqa: E402  (Debian's Chromium, for every browser test)
from .emulator_helpers import Rig  # noqa: E402

__all__ = ["browser"]  # a fixture: pytest finds it here by name


@pytest.fixture(scope="session")
def broker(mosquitto_broker: Broker) -> Broker:
    """The pytest plugin's session broker (emulator.testing), under the suite's short name."""
    return mosquitto_broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker for one test alone (it may be killed and restarted)."""
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    """A pump device on a fake clock without ports (tests/emulator_helpers.py), in tmp_path."""
    return Rig(tmp_path / "pump")
