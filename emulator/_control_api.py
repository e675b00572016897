"""What every resource module of the control plane declares its routes with: the `Route` record
(the one declaration that routes, validates and documents), the request a handler is given, the
refusal it raises, and the JSON-schema helpers and validator the route tables use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import firmware_model as fm

if TYPE_CHECKING:
    from ._control import ControlPlane
    from ._runtime import Runtime

MAX_ADVANCE_MS = 10 * 365 * fm.DAY_MS


class ControlError(Exception):
    """A refused control request: HTTP status and a message that says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- JSON schema ---------------------------------------------------------------------------


def integer(lo: int, hi: int, doc: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi, "description": doc}


def share(doc: str) -> dict[str, Any]:
    return {"type": "number", "minimum": 0, "maximum": 1, "description": doc}


def obj(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    """A request body: exactly these fields, `required` among them."""
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def answer(**props: dict[str, Any]) -> dict[str, Any]:
    """An answer: at least these fields (a client ignores fields it does not know)."""
    return {"type": "object", "properties": props, "required": sorted(props)}


def by_name(schema: dict[str, Any]) -> dict[str, Any]:
    """An object whose every field (a name: a fault kind, an alarm) is a `schema`."""
    return {"type": "object", "additionalProperties": schema}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}  # OpenAPI 3.0 spelling of `T | null`


INT: dict[str, Any] = {"type": "integer"}
NUMBER: dict[str, Any] = {"type": "number"}
STRING: dict[str, Any] = {"type": "string"}
BOOL: dict[str, Any] = {"type": "boolean"}
OBJECT: dict[str, Any] = {"type": "object"}
NAMES: dict[str, Any] = {"type": "array", "items": STRING}
ERROR = answer(error=STRING)


def validate(schema: Mapping[str, Any], value: Any, where: str = "body") -> None:
    """The subset of JSON Schema the routes use; raises ControlError(400) naming the field."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise ControlError(400, f"{where} must be a JSON object")
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                raise ControlError(400, f"{where}: unknown field(s) {', '.join(extra)}")
        for name in schema.get("required", []):
            if name not in value:
                raise ControlError(400, f"{where}: missing field {name}")
        if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", 99):
            raise ControlError(400, f"{where}: give exactly one of {', '.join(props)}")
        for name, v in value.items():
            validate(props[name], v, f"{where}.{name}")
        return
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        raise ControlError(400, f"{where} must be an integer")
    if kind == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ControlError(400, f"{where} must be a number")
    if kind == "boolean" and not isinstance(value, bool):
        raise ControlError(400, f"{where} must be true or false")
    if kind == "string" and not isinstance(value, str):
        raise ControlError(400, f"{where} must be a string")
    if "enum" in schema and value not in schema["enum"]:
        raise ControlError(400, f"{where} must be one of {', '.join(schema['enum'])}")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ControlError(400, f"{where} must be {lo} .. {hi}")


# --- routes ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Call:
    """One request as a handler sees it: the pump of `{serial}` (None on a route without one),
    the other path parameters, the validated body and the query."""

    plane: ControlPlane
    path: str
    runtime: Runtime | None
    params: Mapping[str, str]
    body: Any
    query: Mapping[str, str]
    headers: Mapping[str, str]

    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None, "a route without {serial}"
        return self.runtime


Handler = Callable[[Call], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {serial}, {kind} and {file} placeholders
    summary: str
    handler: Handler
    body: dict[str, Any] | None = None  # JSON schema of the request body
    answer: dict[str, Any] | None = None  # JSON schema of the 200 answer (kind "json")
    public: bool = False
    kind: str = "json"  # "json" answer, "stream" (text/event-stream) or "static" (console file)
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of query parameters

    @property
    def regex(self) -> re.Pattern[str]:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        return re.compile(f"^{pattern}$")

    @property
    def placeholders(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


def jsonable(value: Any) -> Any:
    """A model value as JSON: enums by name, flags as lists of names, bytes in hex."""
    if isinstance(value, fm.Alarm | fm.Capability):
        return [m.name for m in type(value) if m.value and m in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, type):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
