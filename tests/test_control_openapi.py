"""The control plane tested from its own OpenAPI document: schemathesis reads /openapi.json from
a live control plane, generates requests for every operation (bodies and parameters that fit
the schemas, and ones that do not) and checks each answer: never a server error, only statuses
the document lists, and bodies of the declared content type that match their schema.

Streams are left out (an event stream never ends, so it has no body to check); they are tested
by tests/test_console.py. Each operation gets a fresh pump, so what one operation did (a jump of
ten years, a battery fault) never changes what another one is checked against.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emulator import EmulatorServer, ServerOptions
from emulator._console import FILES
from emulator._control import FAULTS, ROUTES

EXAMPLES = 25  # per operation and generation mode: the whole file takes a few seconds
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [(r.method, r.path) for r in ROUTES if r.kind != "stream"]


class LivePlane:
    """An emulator with its control plane (and console) on a loopback port, run by its own
    event loop in a thread: schemathesis calls it with blocking requests."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.url = ""
        self.token = ""
        self.serial = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-control-plane")

    def __enter__(self) -> LivePlane:
        self._thread.start()
        assert self._ready.wait(30), "the control plane did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        options = ServerOptions(control=("127.0.0.1", 0), console=True, pty=False)
        async with EmulatorServer(self.state_dir, options) as server:
            assert server.control is not None
            self.url, self.token = server.control.url, server.control.token
            self.serial = server.device.pump.serial
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()


def aim(case: Any, data: st.DataObject, live: LivePlane) -> None:
    """Mostly name what exists: generated path parameters alone would only ever meet 404."""
    real = {"serial": [str(live.serial)], "kind": sorted(FAULTS), "file": sorted(FILES)}
    for name, values in real.items():
        if name in (case.path_parameters or {}) and data.draw(st.integers(0, 3), name) > 0:
            case.path_parameters[name] = data.draw(st.sampled_from(values), name)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LivePlane]:
    with LivePlane(tmp_path / "pump") as plane:
        yield plane


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_its_document_says(
    live: LivePlane, method: str, path: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", timeout=10)
    operation = schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    auth = {"Authorization": f"Bearer {live.token}"}

    with requests.Session() as session:

        @settings(
            max_examples=EXAMPLES * 2,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=strategy, data=st.data())
        def check(case: Any, data: st.DataObject) -> None:
            aim(case, data, live)
            response = case.call(base_url=live.url, session=session, headers=auth, timeout=30)
            case.validate_response(response, checks=CHECKS)

        check()
