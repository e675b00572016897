"""`connect()`: open a link, identify the pump, run the handshake (async); and the same for
scripts and notebooks without asyncio (`connect_sync`)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import protocol as p

from ._change import Change
from ._errors import BadInput
from ._journal import Journal
from ._links import open_link, parse_address
from ._pump import RETRIES, Pump

KeySource = p.SecretKey | bytes | str | Path


def load_key(source: KeySource) -> p.SecretKey:
    """A role key from a SecretKey, 32 raw bytes, 64 hex characters, or a key file (which
    group and others must not be able to read)."""
    if isinstance(source, p.SecretKey):
        return source
    if isinstance(source, bytes):
        if len(source) != 32:
            raise BadInput("a role key is 32 bytes")
        return p.SecretKey(source)
    if isinstance(source, str) and len(source) == 64:
        try:
            return p.SecretKey.from_hex(source)
        except ValueError:
            pass  # not hex: a file name of 64 characters
    path = Path(source)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read key file {path}: {type(exc).__name__}") from None
    try:
        return p.key_from_file(text, mode, str(path))
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _role(role: str | p.Role) -> p.Role:
    if isinstance(role, p.Role):
        return role
    try:
        return p.Role[role.upper()]
    except KeyError:
        raise BadInput(f"role must be clinician or patient, not {role!r}") from None


@contextlib.asynccontextmanager
async def connect(
    address: str,
    *,
    key: KeySource,
    role: str | p.Role = "clinician",
    journal: Journal | Path | str | None = None,
    timeout_s: float | None = None,
    retries: int = RETRIES,
    pump_serial: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> AsyncIterator[Pump]:
    """A session with the pump at `address` (see programmer._links for the grammar).
    `progress`, if given, is told each attempt to reach the pump and "" once it answered.

    async with connect("serial:///dev/pts/5", key=Path("clinician.key")) as pump:
        snapshot = await pump.interrogate()
    """
    addr = parse_address(address)
    if pump_serial is not None:
        addr = type(addr)(**{**addr.__dict__, "pump_serial": pump_serial})
    secret = load_key(key)
    own_journal = not isinstance(journal, Journal)
    jrn = journal if isinstance(journal, Journal) else Journal(journal)
    try:
        link = await open_link(addr)
        pump = Pump(link, addr, _role(role), secret, jrn, timeout_s=timeout_s, retries=retries)
        pump.progress = progress  # "connecting to ...: attempt n of m", then "" (the CLI's)
        try:
            await pump.start()
            yield pump
        finally:
            await pump.close()
    finally:
        if own_journal:
            jrn.close()


class SyncChange:
    """A prepared change for synchronous code: same fields, blocking `commit()`."""

    def __init__(self, change: Change, run: Callable[[Any], Any]) -> None:
        self._change = change
        self._run = run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._change, name)

    def commit(self, *, confirm: bool = False) -> Any:
        return self._run(self._change.commit(confirm=confirm))


class SyncPump:
    """The async `Pump` for scripts and notebooks: the same methods, blocking. An event loop
    runs in a background thread; `events()` returns a list."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._cm = connect(address, **kwargs)
        try:
            self._pump: Pump = self._run(self._cm.__aenter__())
        except BaseException:
            self._stop()
            raise

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._pump, name)
        if inspect.isasyncgenfunction(attr):

            def collect(*args: Any, **kwargs: Any) -> list[Any]:
                async def run() -> list[Any]:
                    return [x async for x in attr(*args, **kwargs)]

                return self._run(run())  # type: ignore[no-any-return]

            return collect
        if inspect.iscoroutinefunction(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                result = self._run(attr(*args, **kwargs))
                return SyncChange(result, self._run) if isinstance(result, Change) else result

            return call
        return attr

    def close(self) -> None:
        try:
            self._run(self._cm.__aexit__(None, None, None))
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> SyncPump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_sync(address: str, **kwargs: Any) -> SyncPump:
    """`connect()` for code without asyncio: `with connect_sync(...) as pump: pump.status()`."""
    return SyncPump(address, **kwargs)
