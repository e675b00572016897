"""`frozen_maker`: a cheaper constructor for a frozen, slotted dataclass on a frame's path.

The protocol's own copy of `firmware_model._fast.frozen_maker` (the layers import nothing from
each other). A frozen dataclass's `__init__` stores each field through `object.__setattr__`;
the maker stores the same values into a mutable twin class with the identical slot layout and
then gives the object the frozen class: the result is indistinguishable (same type, fields,
equality, hash, repr, still frozen). Used for `Request` and `Response`, built once per frame
(`tests/test_protocol_makers.py`). Only for dataclasses without `__post_init__`, field
factories or init=False fields, which the maker refuses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")


def frozen_maker(cls: type[_T]) -> Callable[..., _T]:
    """A function taking exactly `cls`'s init arguments (positional or keyword, the same
    defaults) and returning an instance equal to `cls(...)` with the same arguments."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    if (
        not getattr(cls, "__dataclass_params__").frozen  # noqa: B009
        or "__slots__" not in cls.__dict__
        or hasattr(cls, "__post_init__")
        or any(not f.init or f.default_factory is not dataclasses.MISSING for f in params)
    ):
        raise TypeError(f"{cls.__name__}: frozen_maker needs a plain frozen slotted dataclass")
    slots = cls.__dict__["__slots__"]
    twin = type(f"_{cls.__name__}Twin", cls.__bases__, {"__slots__": slots})
    ns: dict[str, Any] = {"new": object.__new__, "Twin": twin, "cls": cls}
    args = []
    for f in params:
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            ns[f"D_{f.name}"] = f.default
            args.append(f"{f.name}=D_{f.name}")
    body = [f"def make({', '.join(args)}):", "    o = new(Twin)"]
    body += [f"    o.{f.name} = {f.name}" for f in params]
    body += ["    o.__class__ = cls", "    return o"]
    exec(compile("\n".join(body), f"<frozen_maker {cls.__name__}>", "exec"), ns)
    make: Callable[..., _T] = ns["make"]
    return make
