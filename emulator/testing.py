"""Test helpers for programmer developers: an emulated pump in a background thread (usable from
sync and async tests alike), a private Mosquitto, and the pytest plugin's fixtures.

    def test_my_programmer(pump_emulator):
        with programmer.connect_sync(pump_emulator.connection, key=pump_emulator.key_file) as pump:
            pump.prepare_dose(3_000_000).commit()
        pump_emulator.control.advance(days=30)
        assert "LOW_RESERVOIR" in pump_emulator.control.state()["status"]["active_alarms"]

The plugin is registered with pytest (entry point `itp_emulator`) when the package is
installed; see docs/emulator.md section 13.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
import protocol as p

from ._mqtt import MqttSettings
from ._mqtt_acl import mosquitto_acl, pump_username
from ._runtime import DEFAULT_SERIAL
from ._scenario import PROFILES
from ._server import EmulatorServer, ServerOptions


class Broker:
    """A mosquitto on a free loopback port that a test can stop and start again."""

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        extra_conf: str = "",
    ) -> None:
        """`extra_conf` is appended to the generated mosquitto.conf (a bridge, for example)."""
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install -y mosquitto")
        self.exe = exe
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.conf = workdir / "mosquitto.conf"
        auth = "allow_anonymous true\n"
        if acl is not None and not users:
            raise ValueError("an ACL needs users (it names them)")
        self.users = dict(users or {})
        if users:
            passwords = workdir / "passwords"
            passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for i, (user, password) in enumerate(users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run([passwd, *flags, str(passwords), user, password], check=True)
            auth = f"allow_anonymous false\npassword_file {passwords}\n"
            if acl is not None:
                acl_file = workdir / "acl"
                acl_file.write_text(acl)
                auth += f"acl_file {acl_file}\n"
            if os.geteuid() == 0:  # else mosquitto drops to its own user, who cannot read it
                auth += "user root\n"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{auth}persistence false\nlog_dest stderr\n"
            "log_type error\nlog_type warning\nmax_queued_messages 100000\n"
            "max_inflight_messages 100\nset_tcp_nodelay true\n" + extra_conf
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

    def url_for(self, user: str) -> str:
        """`mqtt://user:password@host:port` for one of the broker's users."""
        return f"mqtt://{user}:{self.users[user]}@{self.host}:{self.port}"

    @classmethod
    def with_acl(
        cls, workdir: Path, pumps: Iterable[int], programmers: Iterable[str] = ("programmer",)
    ) -> Broker:
        """A broker with passwords (fresh random ones) and `mosquitto_acl`: each pump logs in
        as `pump_username(serial)` and alone may write its status, rsp and telemetry."""
        pumps, programmers = list(pumps), list(programmers)
        users = {pump_username(s): secrets.token_hex(12) for s in pumps}
        users |= {name: secrets.token_hex(12) for name in programmers}
        return cls(workdir, users=users, acl=mosquitto_acl(pumps, programmers))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlClient:
    """The control plane from synchronous code (docs/emulator.md section 12)."""

    def __init__(self, url: str, token: str, serial: int) -> None:
        self.url, self._token, self.serial = url.rstrip("/"), token, serial

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read().decode()}") from None

    def state(self) -> Any:
        return self.call("GET", f"/v1/pumps/{self.serial}")

    def advance(self, *, days: float = 0, ms: int = 0, until: str | None = None) -> Any:
        body: dict[str, object] = (
            {"until": until} if until else {"ms": ms + round(days * fm.DAY_MS)}
        )
        return self.call("POST", f"/v1/pumps/{self.serial}/advance", body)

    def speed(self, factor: float) -> Any:
        return self.call("PUT", f"/v1/pumps/{self.serial}/speed", {"factor": factor})

    def inject(self, kind: str, **params: int) -> Any:
        body = {"kind": kind.upper(), **params}
        return self.call("POST", f"/v1/pumps/{self.serial}/faults", body)

    def clear(self, kind: str) -> Any:
        return self.call("DELETE", f"/v1/pumps/{self.serial}/faults/{kind}")

    def aspirate_cap(self) -> Any:
        """The catheter access port check: the answer's `aspiration.finding` (PATENT,
        PARTIAL_OBSTRUCTION, OBSTRUCTED, LEAK, DISCONNECTED) follows the true catheter."""
        return self.call("POST", f"/v1/pumps/{self.serial}/catheter/aspirate")

    def set_true_reservoir(self, volume_nl: int) -> Any:
        body = {"true_volume_nl": volume_nl}
        return self.call("PUT", f"/v1/pumps/{self.serial}/reservoir", body)

    def impair_link(self, **impairment: object) -> Any:
        return self.call("PUT", f"/v1/pumps/{self.serial}/link", impairment)

    def pause(self) -> Any:
        return self.call("POST", f"/v1/pumps/{self.serial}/pause")

    def resume(self) -> Any:
        return self.call("POST", f"/v1/pumps/{self.serial}/resume")

    def reset(self, scenario: str) -> Any:
        """Replace the pump by a training scenario's starting state."""
        return self.call("POST", f"/v1/pumps/{self.serial}/reset", {"scenario": scenario})

    def events(self, cursor: int = 0, limit: int = 100) -> Any:
        return self.call("GET", f"/v1/pumps/{self.serial}/events?cursor={cursor}&limit={limit}")


class EmulatedPump:
    """An emulator serving one pump from a background thread with its own event loop."""

    def __init__(self, state_dir: Path, options: ServerOptions) -> None:
        options.control = options.control or ("127.0.0.1", 0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server = EmulatorServer(state_dir, options)
        try:
            self._run(self.server.__aenter__())
        except BaseException:
            self._stop_loop()
            raise
        control = self.server.control
        assert control is not None
        self.serial = self.server.device.pump.serial
        self.control = ControlClient(control.url, control.token, self.serial)
        # The instructor console's page (with `console=True`), token in the fragment.
        self.console_url = control.console_url if options.console else None
        keys = self.server.key_files
        self.key_file = keys[p.Role.CLINICIAN]
        self.patient_key_file = keys[p.Role.PATIENT]
        self.broker: Broker | None = None  # its own broker (pump_emulator_mqtt_acl)
        mqtt = options.mqtt
        self.connection = (
            f"serial://{self.server.port_path}"
            if self.server.port_path
            else f"mqtt://{mqtt.host}:{mqtt.port}/{self.serial}"  # type: ignore[union-attr]
        )

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def wait_online(self, timeout: float = 10) -> None:
        """MQTT: until the pump's client is subscribed."""
        mqtt = self.server.mqtt
        if mqtt is not None:
            self._run(asyncio.wait_for(mqtt.connected.wait(), timeout))

    def close(self) -> None:
        try:
            self._run(self.server.aclose())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("pump")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    kwargs.update(getattr(request, "param", None) or {})
    unknown = set(kwargs) - {"profile", "speed", "serial", "scenario", "console"}
    if unknown:
        raise pytest.UsageError(f"pump marker: unknown option(s) {sorted(unknown)}")
    return kwargs


def _server_options(kwargs: dict[str, Any], **extra: Any) -> ServerOptions:
    profile = kwargs.get("profile")
    if profile is not None and profile not in PROFILES:
        raise pytest.UsageError(f"pump profile must be one of {sorted(PROFILES)}")
    return ServerOptions(
        profile=PROFILES[profile] if profile else None,
        serial=kwargs.get("serial"),
        speed_milli=round(kwargs.get("speed", 1) * 1000),
        scenario=kwargs.get("scenario"),
        console=bool(kwargs.get("console", False)),
        **extra,
    )


@pytest.fixture
def pump_emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmulatedPump]:
    """An emulated pump on a pseudo-terminal: `.connection`, `.key_file`, `.control`.
    Options from `@pytest.mark.pump(profile=, speed=, serial=, scenario=, console=)` or indirect
    params (`scenario`: a training scenario's name or a TOML file: the pump starts in its state;
    `console=True`: `.console_url` is the instructor console's page)."""
    pump = EmulatedPump(tmp_path / "itp-pump", _server_options(_options(request)))
    yield pump
    pump.close()


@pytest.fixture(scope="session")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A private Mosquitto on a free loopback port for the whole session."""
    broker = Broker(tmp_path_factory.mktemp("itp-mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def pump_emulator_mqtt(
    request: pytest.FixtureRequest, tmp_path: Path, mosquitto_broker: Broker
) -> Iterator[EmulatedPump]:
    """An emulated pump on MQTT through a private broker: `.connection` is mqtt://..."""
    options = _server_options(
        _options(request), pty=False, mqtt=MqttSettings.from_url(mosquitto_broker.url)
    )
    pump = EmulatedPump(tmp_path / "itp-pump", options)
    pump.wait_online()
    yield pump
    pump.close()


@pytest.fixture
def pump_emulator_mqtt_acl(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[EmulatedPump]:
    """An emulated pump on MQTT through its own private broker with passwords and the
    `mosquitto_acl` (docs/emulator.md section 6): the pump logs in as `pump-<serial>`, the only
    identity that may write its status, rsp and telemetry; `.connection` carries the
    `programmer` user's credentials; `.broker` is the broker (`.url_for(user)`, `.users`)."""
    kwargs = _options(request)
    serial = kwargs.get("serial") or DEFAULT_SERIAL
    workdir = tmp_path / "itp-mosquitto"
    workdir.mkdir()
    broker = Broker.with_acl(workdir, [serial])
    broker.start()
    try:
        mqtt = MqttSettings.from_url(broker.url_for(pump_username(serial)))
        pump = EmulatedPump(tmp_path / "itp-pump", _server_options(kwargs, pty=False, mqtt=mqtt))
        try:
            pump.broker = broker
            pump.connection = f"{broker.url_for('programmer')}/{pump.serial}"
            pump.wait_online()
            yield pump
        finally:
            pump.close()
    finally:
        broker.stop()


LOOP_SCOPE = "asyncio_default_fixture_loop_scope"


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's own pytest_configure reads it
def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio warns (PytestDeprecationWarning) when a project leaves its fixture loop
    # scope unset; the plugin's users did not choose pytest-asyncio, so the plugin sets it to
    # "function" (pytest-asyncio's announced default) unless the project's configuration names
    # one. pytest has no public setter for another plugin's ini value: its cache is the one.
    try:
        if not config.getini(LOOP_SCOPE):
            config._inicache[LOOP_SCOPE] = "function"
    except ValueError:  # pytest-asyncio not installed: nothing to set
        pass
    config.addinivalue_line(
        "markers",
        "pump(profile=, speed=, serial=, scenario=, console=): options of the emulated pump "
        "fixtures",
    )
