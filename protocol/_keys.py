"""Role keys and the handshake's cryptography (security.md 2.4): `SecretKey` (a 32-byte role
key that never shows itself), `key_from_file` (parsing a 0600 key file the caller has read),
HKDF-SHA256, the handshake transcript, the tags tag_P / tag_H, and the derivation of the two
per-direction session keys. All pure functions of their inputs; the formulas are in the theory
of operation of `_session.py`, and tests/vectors/handshake.json pins every value.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from typing import Any, Final

from ._enums import Role
from ._frame import TAG_SIZE

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 16
HKDF_INFO_PREFIX: Final = b"itp1"

RandBytes = Callable[[int], bytes]


class SecretKey:
    """A 32-byte role key. Never shown: repr and str give only a short fingerprint."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
            raise ValueError(f"a role key is exactly {KEY_SIZE} bytes")
        self._key = bytes(key)

    @classmethod
    def from_hex(cls, text: str) -> SecretKey:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("a role key is 64 hexadecimal digits") from None
        return cls(raw)

    def to_hex(self) -> str:
        """For writing the 0600 key file only. Never log the result."""
        return self._key.hex()

    @property
    def fingerprint(self) -> str:
        """8 hex digits identifying the key without revealing it (for 'wrong key?' messages)."""
        return hashlib.sha256(b"itp1 key fingerprint" + self._key).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"SecretKey(fingerprint={self.fingerprint})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> Any:
        raise TypeError("role keys are not picklable: store them with to_hex() in a 0600 file")


def key_from_file(text: str, mode: int, name: str) -> SecretKey:
    """Parse a role-key file: exactly 64 hexadecimal characters, either case, nothing else but
    whitespace before or after (docs/protocol.md section 20). A file that group or others may
    access (`mode` from stat) is refused, as ssh does. Pure: the caller reads the file and its
    mode. Raises ValueError with a message naming `name`."""
    if mode & 0o077:
        raise ValueError(f"key file {name} is accessible by others: chmod 600 it")
    digits = text.strip()
    if len(digits) != 2 * KEY_SIZE or not all(c in _HEX for c in digits):
        raise ValueError(f"key file {name} must hold 64 hexadecimal characters")
    return SecretKey.from_hex(digits)


_HEX = frozenset("0123456789abcdefABCDEF")


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869) with SHA-256."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF length out of range")
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    okm, block, i = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes((i,)), "sha256")
        okm += block
        i += 1
    return okm[:length]


_TRANSCRIPT = struct.Struct("<IB16sII16s")


def transcript(
    host_id: int, role: Role, nonce_h: bytes, pump_id: int, session_id: int, nonce_p: bytes
) -> bytes:
    return _TRANSCRIPT.pack(host_id, role, nonce_h, pump_id, session_id, nonce_p)


def handshake_tags(key: SecretKey, transcript_bytes: bytes) -> tuple[bytes, bytes]:
    """(tag_P, tag_H) for a transcript."""
    k = key._key
    return (
        hmac.digest(k, b"P" + transcript_bytes, "sha256")[:TAG_SIZE],
        hmac.digest(k, b"H" + transcript_bytes, "sha256")[:TAG_SIZE],
    )


def session_keys(
    key: SecretKey, nonce_h: bytes, nonce_p: bytes, session_id: int, role: Role
) -> tuple[bytes, bytes]:
    """(k_h2p, k_p2h): one key per direction, so a frame cannot be reflected back."""
    info = HKDF_INFO_PREFIX + struct.pack("<IB", session_id, role)
    okm = hkdf_sha256(key._key, nonce_h + nonce_p, info, 64)
    return okm[:32], okm[32:]
