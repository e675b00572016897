from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
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
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="larger variant: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --- a private Mosquitto broker (reference/libraries.md 2.5) ----------------------------------


class Broker:
    """A mosquitto on a free loopback port that a test can stop and start again."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install -y mosquitto")
        self.exe = exe
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.conf = workdir / "mosquitto.conf"
        auth = "allow_anonymous true\n"
        if users:
            passwords = workdir / "passwords"
            passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for i, (user, password) in enumerate(users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run([passwd, *flags, str(passwords), user, password], check=True)
            auth = f"allow_anonymous false\npassword_file {passwords}\n"
            if os.geteuid() == 0:  # else mosquitto drops to its own user, who cannot read it
                auth += "user root\n"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{auth}persistence false\nlog_dest stderr\n"
            "log_type error\nlog_type warning\nmax_queued_messages 100000\n"
            "max_inflight_messages 100\nset_tcp_nodelay true\n"
        )
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log.read_text()}") from None
                time.sleep(0.005)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker for one test alone (it may be killed and restarted)."""
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()
