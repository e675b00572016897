"""Versioned snapshots: the whole pump as JSON-compatible data, restoring to an identical model.

The encoding is derived from the dataclass type hints of State (and Profile, DrugLimits), so a
new state field is snapshotted without anyone remembering to add it; a field missing from a
snapshot, an unknown field or a wrongly typed value is a SnapshotError, never a half-restored pump.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import SnapshotError
from ._profiles import Battery, DrugLimits, Profile
from ._pump import Pump
from ._state import Event, State
from ._types import Drug

SNAPSHOT_FORMAT = "itp-firmware-model"
SNAPSHOT_VERSION = 2
# Fields a version lacks, with the value that reproduces that version's pump exactly.
# 2: the catheter's partial obstructions (kink, granuloma: _catheter.py), absent = none.
_ADDED_FAULTS: dict[int, dict[str, int]] = {
    1: {
        "kink_ppm": 0,
        "granuloma_ppm": 0,
        "granuloma_from_ppm": 0,
        "granuloma_to_ppm": 0,
        "granuloma_days": 0,
        "granuloma_since": -1,
        "granuloma_steps": 0,
        "restriction_carry": 0,
    },
}

# 2: also the clinic's clock (State.utc_offset_ms, State.zone: _clock.py), absent = UTC.
_ADDED_STATE: dict[int, dict[str, int | str]] = {1: {"utc_offset_ms": 0, "zone": "UTC"}}

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    h = _HINTS.get(cls)
    if h is None:
        h = _HINTS[cls] = typing.get_type_hints(cls)
    return h


def _enc(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, bytes):
        return v.hex()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _enc(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, list | tuple):
        return [_enc(x) for x in v]
    raise TypeError(f"cannot snapshot {type(v).__name__}")


def _dec(tp: Any, v: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if v is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _dec(inner, v, where)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if not isinstance(v, list):
            raise SnapshotError(f"{where}: expected a list")
        if origin is list:
            return [_dec(args[0], x, f"{where}[{i}]") for i, x in enumerate(v)]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_dec(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
        if len(args) != len(v):
            raise SnapshotError(f"{where}: expected {len(args)} items")
        return tuple(
            _dec(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, v, strict=True))
        )
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(v)
        except ValueError as exc:
            raise SnapshotError(f"{where}: {v!r} is not a {tp.__name__}") from exc
    if tp is bool:
        if not isinstance(v, bool):
            raise SnapshotError(f"{where}: expected a boolean")
        return v
    if tp is int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise SnapshotError(f"{where}: expected an integer")
        return v
    if tp is str:
        if not isinstance(v, str):
            raise SnapshotError(f"{where}: expected a string")
        return v
    if tp is bytes:
        try:
            return bytes.fromhex(v)
        except (TypeError, ValueError) as exc:
            raise SnapshotError(f"{where}: expected hex bytes") from exc
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(v, dict):
            raise SnapshotError(f"{where}: expected an object")
        hints = _hints(tp)
        names = [f.name for f in dataclasses.fields(tp)]
        if set(v) != set(names):
            missing, extra = set(names) - set(v), set(v) - set(names)
            raise SnapshotError(f"{where}: missing {sorted(missing)}, unknown {sorted(extra)}")
        return tp(**{n: _dec(hints[n], v[n], f"{where}.{n}") for n in names})
    raise SnapshotError(f"{where}: unsupported type {tp!r}")


def snapshot(pump: Pump, *, include_events: bool = True) -> dict[str, Any]:
    """The pump as JSON-compatible data (ints, strings, lists, dicts).

    `include_events=False` leaves the event log out (`state.events` is empty): a runtime that
    stores the log record by record saves re-encoding thousands of records on every commit and
    puts them back with `encode_events` before `restore`."""
    s = pump._s
    state = {
        f.name: ([] if f.name == "events" and not include_events else _enc(getattr(s, f.name)))
        for f in dataclasses.fields(s)
    }
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "profile": _enc(pump.profile),
        "library": [_enc(e) for e in pump.library.values()],
        "state": state,
    }


def encode_events(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Event records in the snapshot encoding (for `state.events`)."""
    return [_enc(e) for e in events]


def _upgrade(data: Mapping[str, Any], added: Mapping[str, int]) -> dict[str, Any]:
    """An older snapshot with the fields it lacks (a field it already has is an error)."""
    state = data["state"]
    faults = state.get("faults") if isinstance(state, Mapping) else None
    if not isinstance(faults, Mapping):
        raise SnapshotError("state.faults: expected an object")
    if set(added) & set(faults):
        raise SnapshotError(f"state.faults: version {data['version']} has no {sorted(added)}")
    clock = _ADDED_STATE[data["version"]]
    if set(clock) & set(state):
        raise SnapshotError(f"state: version {data['version']} has no {sorted(clock)}")
    return {**data, "state": {**state, **clock, "faults": {**faults, **added}}}


def _clinic_clock_defaults(state: Any) -> Any:
    """A version 2 snapshot written before the clinic's clock joined version 2 (main between
    the i15-cath and i15-tz merges) lacks both fields: that pump ran on UTC."""
    if isinstance(state, Mapping) and "utc_offset_ms" not in state and "zone" not in state:
        return {**state, **_ADDED_STATE[1]}
    return state


def restore(data: Mapping[str, Any]) -> Pump:
    """The pump a snapshot describes (this version or an older one, upgraded: an old pump
    restores to exactly the pump it was). Raises SnapshotError on anything unexpected."""
    if not isinstance(data, Mapping):
        raise SnapshotError("a snapshot is an object")
    if data.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError("not a firmware-model snapshot")
    version = data.get("version")
    if version != SNAPSHOT_VERSION and version not in _ADDED_FAULTS:
        raise SnapshotError(f"snapshot version {version!r} is not {SNAPSHOT_VERSION}")
    if set(data) != {"format", "version", "profile", "library", "state"}:
        raise SnapshotError("snapshot has missing or unknown sections")
    if version != SNAPSHOT_VERSION:
        data = _upgrade(data, _ADDED_FAULTS[version])
    try:
        profile = _dec(Profile, data["profile"], "profile")
        entries = _dec(list[DrugLimits], data["library"], "library")
        state = _dec(State, _clinic_clock_defaults(data["state"]), "state")
    except (TypeError, KeyError) as exc:
        raise SnapshotError(str(exc)) from exc
    library: dict[Drug, DrugLimits] = {e.drug: e for e in entries}
    _ = Battery  # Profile.battery's type, resolved through the hints
    return Pump(profile, library, state)
