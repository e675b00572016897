"""One emulated pump with its links, as an async context manager (the CLI's `serve`, and what
tests and other programs embed):

    async with EmulatorServer(Path("state"), speed_milli=100_000) as server:
        print(server.port_path, server.key_files[Role.CLINICIAN])
        await server.wait_closed()   # or drive it from the same event loop
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from types import TracebackType

import firmware_model as fm
import protocol as p

from ._control import ControlPlane
from ._device import PumpDevice
from ._exercise import start_of
from ._exercise_plot import Trace as ExerciseTrace
from ._keys import key_path
from ._mqtt import MqttLink, MqttSettings
from ._runtime import Runtime, open_device
from ._scenario import load_scenario, narration, starting_pump
from ._serial import PtyLink, SerialPortLink
from ._store import StoreError
from ._trace import DEFAULT_MAX_BYTES as DEFAULT_TRACE_MAX_BYTES
from ._trace import Trace


@dataclasses.dataclass
class ServerOptions:
    profile: fm.ProfileId | None = None
    serial: int | None = None
    speed_milli: int = 1000
    pty: bool = True  # create a pty (ignored when `port` is given)
    port: str | None = None  # serve on this serial device or pyserial URL instead
    link: Path | None = None  # stable symlink to the pty
    baud: int | None = None  # pace the pump's serial output like a real line
    mqtt: MqttSettings | None = None
    beacon_interval_s: float = 1.0
    trace: Path | None = None
    trace_max_bytes: int = DEFAULT_TRACE_MAX_BYTES  # then rotated to FILE.1; 0: never
    stale_recovery_log: bool = True
    policy: p.SessionPolicy | None = None
    control: tuple[str, int] | None = None  # serve the control plane here (port 0: any free)
    control_token: str | None = None  # default: a fresh random token
    scenario: str | None = None  # start from this scenario's starting state (file or name)
    console: bool = False  # serve the instructor console on the control plane (docs/console.md)
    catheter_volume_nl: int | None = None  # a new pump's catheter (default 85 cm x 2.6 uL/cm)
    zone: str | None = None  # a new pump's clinic zone (IANA), with its offset at the start


class EmulatorServer:
    def __init__(self, state_dir: Path, options: ServerOptions | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.options = options or ServerOptions()
        self.runtime: Runtime | None = None
        self.pty: PtyLink | None = None
        self.serial_port: SerialPortLink | None = None
        self.mqtt: MqttLink | None = None
        self.control: ControlPlane | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()

    @property
    def device(self) -> PumpDevice:
        assert self.runtime is not None, "the server is not running"
        return self.runtime.device

    @property
    def port_path(self) -> str | None:
        return self.pty.path if self.pty else None

    @property
    def key_files(self) -> dict[p.Role, Path]:
        return {role: key_path(self.state_dir, role) for role in (p.Role.CLINICIAN, p.Role.PATIENT)}

    async def __aenter__(self) -> EmulatorServer:
        o = self.options
        scenario = load_scenario(o.scenario) if o.scenario is not None else None
        serial = o.serial
        if serial is None and scenario is not None and scenario.serial_named:
            serial = scenario.serial  # the scenario's pump, e.g. a replacement with a new serial
        device = open_device(
            self.state_dir,
            profile=o.profile,
            serial=serial,
            catheter_volume_nl=o.catheter_volume_nl,
            zone=o.zone,
            speed_milli=o.speed_milli,
            stale_recovery_log=o.stale_recovery_log,
            policy=o.policy,
        )
        notes: list[tuple[int, str]] = []
        if scenario is not None:
            try:
                notes = narration(scenario)
                pump = starting_pump(scenario, now_ms=device.pump.now, serial=device.pump.serial)
                device.clock.jump_to(pump.now)
                failure = device.replace_pump(pump)
            except BaseException:
                if device.store is not None:
                    device.store.close()
                raise
            if failure is not None:
                raise StoreError(failure)
        trace = (
            Trace(o.trace, device.pump.serial, o.speed_milli, max_bytes=o.trace_max_bytes)
            if o.trace
            else None
        )
        self.runtime = rt = Runtime(device, trace=trace)
        if scenario is not None and scenario.exercise is not None:
            rt.exercise = (scenario.exercise, start_of(device.pump))
            rt.exercise_trace = ExerciseTrace(device.pump)
        try:
            if o.port is not None:
                self.serial_port = SerialPortLink(rt, o.port, baud=o.baud)
                self.serial_port.open()
            elif o.pty:
                self.pty = PtyLink(rt, baud=o.baud, link=o.link)
                self.pty.open()
            self._tasks.append(asyncio.create_task(rt.run_clock(), name="pump-clock"))
            if o.mqtt is not None:
                self.mqtt = MqttLink(rt, o.mqtt, beacon_interval_s=o.beacon_interval_s)
                self._tasks.append(asyncio.create_task(self.mqtt.run(), name="pump-mqtt"))
            control = o.control
            if control is None and o.console:
                control = ("127.0.0.1", 0)  # the console lives on the control plane
            if control is not None:
                self.control = ControlPlane(
                    {device.pump.serial: rt}, o.control_token, console=o.console
                )
                if notes:  # the scenario's narration, timed from its start
                    self.control.hub.narration_of(rt.serial).schedule(notes, device.pump.now)
                await self.control.start(*control)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the links, write the last state, close the memory. Idempotent."""
        if self._closed.is_set():
            return
        if self.mqtt is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.mqtt.say_offline(), 2)
        if self.control is not None:
            await self.control.close()
        if self.runtime is not None:
            self.runtime.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.pty is not None:
            self.pty.close()
        if self.serial_port is not None:
            self.serial_port.close()
        if self.runtime is not None:
            self.runtime.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def failed_task(self) -> BaseException | None:
        """The exception that ended a link or the clock, if one did (it should not)."""
        for t in self._tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                return t.exception()
        return None
