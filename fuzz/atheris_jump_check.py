"""Check atheris' bytecode instrumentation of the project's packages for misplaced loop jumps.

    .venv/bin/python fuzz/atheris_jump_check.py [PACKAGE ...]

(default packages: protocol firmware_model emulator)

For every code object, the targets of the backward jumps (loop heads) before and after
`atheris.instrument_bytecode.patch_code` must be the same instruction; a target that moved to
another instruction means the instrumented loop skips or repeats code. Prints the functions
affected (README.md, "Known tool issue"). Needs atheris.
"""

from __future__ import annotations

import dis
import importlib
import pkgutil
import sys
import types
from collections.abc import Iterator
from typing import Any

import protocol as p

patch_code: Any = importlib.import_module("atheris.instrument_bytecode").patch_code

_PREFIXES = {"EXTENDED_ARG", "PUSH_NULL"}  # atheris' own code or an argument prefix may lead


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _loop_heads(code: types.CodeType) -> list[tuple[str, str]]:
    instructions = list(dis.get_instructions(code))
    at = {i.offset: i for i in instructions}
    heads = []
    for i in instructions:
        if "BACKWARD" in i.opname:
            t = at[i.argval]
            jump = t.opcode in dis.hasjrel or t.opcode in dis.hasjabs
            heads.append((t.opname, "" if jump else t.argrepr))
    return heads


def misplaced(code: types.CodeType) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    before = _loop_heads(code)
    after = _loop_heads(patch_code(code, True, True)) if before else []
    if len(before) != len(after):
        return [(("jumps", str(len(before))), ("jumps", str(len(after))))]
    return [(a, b) for a, b in zip(before, after, strict=True) if a != b and b[0] not in _PREFIXES]


def _module_codes(package: str) -> Iterator[tuple[str, types.CodeType]]:
    pkg = importlib.import_module(package)
    names = [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
    for name in names:
        path = importlib.import_module(name).__file__
        assert path is not None
        with open(path, encoding="utf-8") as f:
            top = compile(f.read(), path, "exec")
        for code in _codes(top):
            yield name, code


def _codec_codes() -> Iterator[tuple[str, types.CodeType]]:
    for cls in p.MESSAGES.values():
        for attr in ("_decode", "_encode", "_validate", "_from_values"):
            fn = cls.__dict__.get(attr)
            if fn is not None and hasattr(fn, "__code__"):
                for code in _codes(fn.__code__):
                    yield f"{cls.__name__}.{attr}", code


def main(argv: list[str]) -> int:
    packages = argv[1:] or ["protocol", "firmware_model", "emulator"]
    checked = bad = 0
    sources = [_module_codes(pkg) for pkg in packages] + [_codec_codes()]
    for source in sources:
        for where, code in source:
            checked += 1
            for before, after in misplaced(code):
                bad += 1
                print(
                    f"{where}.{code.co_qualname} (line {code.co_firstlineno}): {before} -> {after}"
                )
    print(f"{checked} code objects checked, {bad} misplaced loop jumps")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
