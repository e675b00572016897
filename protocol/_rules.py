"""Cross-field rules in machine-readable form, for protocol/schema.json and its code generators.

A record's `_check` (see `_schema.Record`) implements the rules that no single field's range can
say. Each `_check` is decorated with `@rules(...)` naming them as data, so schema.json can carry
them for a generator to turn into code: `nonzero(field)` (a flag set names at least one bit),
`single_bit(field)` (exactly one bit), `increasing(array, key, first=...)` (the items' `key`
strictly increases, and the first item's is `first`). The Python `_check` stays the
implementation; tests/test_schema_codegen.py checks that the C code generated from the data
refuses exactly what it refuses. `_gen_schema` refuses a `_check` without declared rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

#: Every rule kind, with what it means (copied into schema.json).
RULE_KINDS = {
    "nonzero": "the field (a flag set) is not 0",
    "single_bit": "the field (a flag set) has exactly one bit set",
    "increasing": "the array's items' `key` values strictly increase; if `first` is given, "
    "the first item's `key` equals it",
}


@dataclasses.dataclass(frozen=True)
class Rule:
    kind: str
    field: str
    key: str | None = None
    first: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "field": self.field}
        if self.key is not None:
            out["key"] = self.key
        if self.first is not None:
            out["first"] = self.first
        return out


def nonzero(field: str) -> Rule:
    return Rule("nonzero", field)


def single_bit(field: str) -> Rule:
    return Rule("single_bit", field)


def increasing(field: str, key: str, *, first: int | None = None) -> Rule:
    return Rule("increasing", field, key, first)


_F = TypeVar("_F", bound=Callable[..., Any])


def rules(*items: Rule) -> Callable[[_F], _F]:
    """Attach the rules a `_check` implements to it (as its `RULES` attribute)."""

    def wrap(fn: _F) -> _F:
        setattr(fn, "RULES", items)  # noqa: B010 (a function attribute mypy cannot declare)
        return fn

    return wrap


def rules_of(check: Any) -> tuple[Rule, ...]:
    found: tuple[Rule, ...] = getattr(check, "RULES", ())
    return found
