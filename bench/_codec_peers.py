"""The two peers bench/codec.py measures `protocol` against, each doing the same work.

The hand-written baseline is a `struct` + `binascii` codec of the same wire layout, its formats
typed by hand: a STATUS frame encoder and decoder, a sealed SET_CONTINUOUS_DOSE sender and
receiver on a pre-keyed OpenSSL HMAC-SHA256 (CRC, session, strictly increasing counter, tag),
and a hunting stream decoder. The pymavlink peer is MAVLink 2 (`common` dialect): a HIGHRES_IMU
message for the plain rows and a signed COMMAND_LONG for the authenticated one, with sender and
receiver `MAVLink` objects as `mavutil` connections set them up.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import importlib
import importlib.metadata
import importlib.util
import struct
from collections.abc import Sequence
from typing import Any

import protocol as p

# --- hand-written baseline: struct + binascii, formats typed by hand -----------------------------

HW_MAGIC = b"\xe7\x1a"
HW_VERSION = 1
HW_AUTH = 0x01
HW_FROM_PUMP = 0x04
HW_KNOWN_FLAGS = HW_AUTH | HW_FROM_PUMP
HW_HEADER = struct.Struct("<2sBBHHHI")  # magic, version, flags, length, seq, msg_id, pump_id
HW_AUTH_HEADER = struct.Struct("<II")  # session_id, counter
HW_STATUS = struct.Struct("<QIIBBBIIBIBIIIBHQQQQ")  # 80 bytes
HW_DOSE = struct.Struct("<16sIIB")  # 25 bytes
HW_CRC = struct.Struct("<H")
HW_TAG = 16
HW_PLAIN_OVERHEAD = 16  # header 14 + crc 2
HW_AUTH_OVERHEAD = 40  # header 14 + auth 8 + tag 16 + crc 2
STATUS_ID = p.Status.MSG_ID
DOSE_ID = p.SetContinuousDose.MSG_ID


def hw_crc_init(seed: int) -> int:
    return binascii.crc_hqx(seed.to_bytes(2, "little"), 0xFFFF)


STATUS_CRC_INIT = hw_crc_init(p.Status.SEED)
DOSE_CRC_INIT = hw_crc_init(p.SetContinuousDose.SEED)


def _keyed(key: bytes) -> Any:
    """Pre-keyed HMAC-SHA256; the OpenSSL object under the stdlib wrapper, as ours uses."""
    wrapper = hmac.new(key, digestmod=hashlib.sha256)
    return getattr(wrapper, "_hmac", None) or wrapper


class HandError(ValueError):
    """The hand-written decoder refused a frame."""


def hw_encode_status(values: Sequence[int], pump_id: int, seq: int) -> bytes:
    body = HW_HEADER.pack(
        HW_MAGIC, HW_VERSION, HW_FROM_PUMP, HW_STATUS.size, seq, STATUS_ID, pump_id
    ) + HW_STATUS.pack(*values)
    return body + HW_CRC.pack(binascii.crc_hqx(body, STATUS_CRC_INIT))


def hw_decode_status(data: bytes) -> tuple[Any, ...]:
    i = data.find(HW_MAGIC)
    if i < 0:
        raise HandError("no magic")
    if len(data) - i < HW_HEADER.size:
        raise HandError("truncated header")
    _, version, flags, length, _seq, msg_id, _pump_id = HW_HEADER.unpack_from(data, i)
    if (
        version != HW_VERSION
        or flags & ~HW_KNOWN_FLAGS
        or msg_id != STATUS_ID
        or length != HW_STATUS.size
    ):
        raise HandError("bad header")
    end = i + length + HW_PLAIN_OVERHEAD
    if end > len(data):
        raise HandError("truncated frame")
    if binascii.crc_hqx(data[i : end - 2], STATUS_CRC_INIT) != data[end - 2] | data[end - 1] << 8:
        raise HandError("bad crc")
    return HW_STATUS.unpack_from(data, i + HW_HEADER.size)


class HandAuthSender:
    """Seals SET_CONTINUOUS_DOSE frames host -> pump with a pre-keyed HMAC-SHA256."""

    __slots__ = ("counter", "mac", "pump_id", "session_id")

    def __init__(self, key: bytes, session_id: int, pump_id: int, counter: int = 0) -> None:
        self.mac = _keyed(key)
        self.session_id = session_id
        self.pump_id = pump_id
        self.counter = counter

    def seal(self, values: Sequence[Any], seq: int) -> bytes:
        self.counter += 1
        body = (
            HW_HEADER.pack(HW_MAGIC, HW_VERSION, HW_AUTH, HW_DOSE.size, seq, DOSE_ID, self.pump_id)
            + HW_AUTH_HEADER.pack(self.session_id, self.counter)
            + HW_DOSE.pack(*values)
        )
        h = self.mac.copy()
        h.update(body[2:])
        tag: bytes = h.digest()
        body += tag[:HW_TAG]
        return body + HW_CRC.pack(binascii.crc_hqx(body, DOSE_CRC_INIT))


class HandAuthReceiver:
    """Opens sealed SET_CONTINUOUS_DOSE frames: CRC, session, counter, tag, then payload."""

    __slots__ = ("highest", "mac", "pump_id", "session_id")

    def __init__(self, key: bytes, session_id: int, pump_id: int) -> None:
        self.mac = _keyed(key)
        self.session_id = session_id
        self.pump_id = pump_id
        self.highest = 0

    def open(self, data: bytes) -> tuple[Any, ...]:
        i = data.find(HW_MAGIC)
        if i < 0:
            raise HandError("no magic")
        if len(data) - i < HW_HEADER.size:
            raise HandError("truncated header")
        _, version, flags, length, _seq, msg_id, pump_id = HW_HEADER.unpack_from(data, i)
        if (
            version != HW_VERSION
            or flags != HW_AUTH
            or msg_id != DOSE_ID
            or length != HW_DOSE.size
            or pump_id != self.pump_id
        ):
            raise HandError("bad header")
        end = i + length + HW_AUTH_OVERHEAD
        if end > len(data):
            raise HandError("truncated frame")
        if binascii.crc_hqx(data[i : end - 2], DOSE_CRC_INIT) != data[end - 2] | data[end - 1] << 8:
            raise HandError("bad crc")
        session_id, counter = HW_AUTH_HEADER.unpack_from(data, i + HW_HEADER.size)
        if session_id != self.session_id:
            raise HandError("unknown session")
        if counter <= self.highest:
            raise HandError("replayed")
        tag_at = end - 2 - HW_TAG
        h = self.mac.copy()
        h.update(data[i + 2 : tag_at])
        if not hmac.compare_digest(h.digest()[:HW_TAG], data[tag_at : end - 2]):
            raise HandError("bad tag")
        self.highest = counter
        return HW_DOSE.unpack_from(data, i + HW_HEADER.size + HW_AUTH_HEADER.size)


class HandStreamDecoder:
    """Hunting stream decoder for STATUS frames: any chunking, skips bad candidates by 1 byte."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        buf = self.buf
        buf += data
        out: list[tuple[Any, ...]] = []
        unpack_header = HW_HEADER.unpack_from
        unpack_status = HW_STATUS.unpack_from
        crc = binascii.crc_hqx
        n = len(buf)
        pos = 0
        while True:
            i = buf.find(HW_MAGIC, pos)
            if i < 0:
                pos = n - 1 if n > pos and buf[n - 1] == 0xE7 else n
                break
            if n - i < HW_HEADER.size:
                pos = i
                break
            _, version, flags, length, _seq, msg_id, _pid = unpack_header(buf, i)
            if (
                version != HW_VERSION
                or flags & ~HW_KNOWN_FLAGS
                or msg_id != STATUS_ID
                or length != HW_STATUS.size
            ):
                pos = i + 1
                continue
            end = i + length + HW_PLAIN_OVERHEAD
            if end > n:
                pos = i
                break
            if crc(buf[i : end - 2], STATUS_CRC_INIT) != buf[end - 2] | buf[end - 1] << 8:
                pos = i + 1
                continue
            out.append(unpack_status(buf, i + HW_HEADER.size))
            pos = end
        del buf[:pos]
        return out


# --- pymavlink peer ------------------------------------------------------------------------------

MAV_SIGNING_KEY = bytes(range(100, 132))
# 10 us units since 2015-01-01, at about the same moment as the status values above.
MAV_TIMESTAMP = (1_790_000_000 - 1_420_070_400) * 100_000


def load_pymavlink() -> Any | None:
    """The MAVLink 2 `common` dialect module of pymavlink, or None if not installed."""
    try:
        return importlib.import_module("pymavlink.dialects.v20.common")
    except ImportError:
        return None


def pymavlink_description(mav: Any) -> str:
    version = importlib.metadata.version("pymavlink")
    has_mavnative = importlib.util.find_spec("pymavlink.mavnative") is not None
    native = getattr(mav, "native_supported", None)
    parser = (
        "C parser (mavnative) available"
        if has_mavnative or native
        else "no C parser (no mavnative module; MAVLink(use_native=...) is ignored: pure Python)"
    )
    crc = "fastcrc (Rust)" if getattr(mav, "mcrf4xx", None) is not None else "pure-Python CRC"
    return f"pymavlink {version}, dialect v20/common; {parser}; CRC via {crc}"


def mav_highres_imu(mav: Any) -> Any:
    # Values exact in float32 so a decoded message compares equal; id=1 keeps all 63 bytes.
    return mav.MAVLink_highres_imu_message(
        1_790_000_000_000_000,
        0.5, -0.25, -9.75,
        0.125, -0.0625, 0.03125,
        0.25, 0.125, -0.5,
        1013.25, 0.5, 120.5, 36.5,
        0x1FFF, 1,
    )  # fmt: skip


def mav_command_long(mav: Any) -> Any:
    # confirmation=1 keeps the MAVLink 2 payload at its full 33 bytes (no zero trimming).
    return mav.MAVLink_command_long_message(
        1, 1, 400, 1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 21196.0
    )  # fmt: skip


def mav_pair(mav: Any, signed: bool) -> tuple[Any, Any]:
    """A sender and a receiver `MAVLink` object; signed: both hold the key, sender signs."""
    tx = mav.MAVLink(None, srcSystem=1, srcComponent=1)
    rx = mav.MAVLink(None, srcSystem=255, srcComponent=190)
    rx.robust_parsing = True  # as in every mavutil connection
    if signed:
        tx.signing.secret_key = MAV_SIGNING_KEY
        tx.signing.link_id = 1
        tx.signing.timestamp = MAV_TIMESTAMP
        tx.signing.sign_outgoing = True
        rx.signing.secret_key = MAV_SIGNING_KEY
    return tx, rx


def mav_receiver(mav: Any, signed: bool) -> Any:
    return mav_pair(mav, signed)[1]


def mav_fix_crc(mav: Any, frame: bytearray, crc_extra: int) -> None:
    """Recompute a MAVLink 2 frame's CRC in place (so only the signature can catch a change)."""
    end = 10 + frame[1]
    crc = mav.x25crc(bytes(frame[1:end]))
    crc.accumulate(bytes([crc_extra]))
    frame[end : end + 2] = HW_CRC.pack(crc.crc)


def mav_accepted(rx: Any, data: bytes, expected: Any) -> bool:
    msgs = rx.parse_buffer(data) or []
    return any(m == expected for m in msgs)
