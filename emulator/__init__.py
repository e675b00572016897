"""emulator: the firmware model as a device you can talk to.

It maps protocol messages to model commands (`PumpDevice`), runs the clock (real time x speed
factor), keeps the pump's memory in SQLite (`Store`), and serves the pump on a pseudo-terminal,
a serial port and MQTT (`EmulatorServer`, `pump-emulator serve`). See docs/emulator.md.
"""

from ._clock import VirtualClock
from ._device import ControlCode, DeviceStats, PumpDevice
from ._keys import KeyFileError, load_or_create_keys, read_key
from ._mqtt import MqttLink, MqttSettings, topics
from ._mqtt_acl import mosquitto_acl, pump_username
from ._runtime import Runtime, open_device
from ._serial import PtyLink, SerialPortLink
from ._server import EmulatorServer, ServerOptions
from ._store import CommandRecord, Store, StoreError
from ._trace import Trace

__all__ = [
    "CommandRecord",
    "ControlCode",
    "DeviceStats",
    "EmulatorServer",
    "KeyFileError",
    "MqttLink",
    "MqttSettings",
    "PtyLink",
    "PumpDevice",
    "Runtime",
    "SerialPortLink",
    "ServerOptions",
    "Store",
    "StoreError",
    "Trace",
    "VirtualClock",
    "load_or_create_keys",
    "mosquitto_acl",
    "open_device",
    "pump_username",
    "read_key",
    "topics",
]
