"""The control plane: every endpoint, bad input (4xx with a message, nothing changed), tokens,
and the OpenAPI document checked against the server with generated requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware_model as fm
import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._control import FAULTS, ROUTES, ControlPlane, openapi

from .emulator_helpers import http_request, wait_ready

MG = 1_000_000
SERIAL = 1234


async def http(
    server: EmulatorServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "default",
    raw: bytes | None = None,
) -> tuple[int, Any]:
    assert server.control is not None
    auth = server.control.token if token == "default" else token
    status, _, payload = await http_request(
        server.control.url, method, path, body, token=auth, raw=raw
    )
    return status, json.loads(payload)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(speed_milli=1000, control=("127.0.0.1", 0))
    async with EmulatorServer(tmp_path / "pump", options) as s:
        await asyncio.sleep(0)
        yield s


async def running(server: EmulatorServer, tmp_path: Path) -> None:
    """Past the self test, filled, 3 mg/day of morphine 25 mg/mL."""
    await http(server, "POST", f"/v1/pumps/{SERIAL}/advance", {"ms": 3_000})
    async with programmer.connect(
        f"serial://{server.port_path}",
        key=server.key_files[p.Role.CLINICIAN],
        journal=tmp_path / "j.sqlite",
    ) as pump:
        refill = await pump.prepare_refill(
            withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE, conc_ng_per_ml=25 * MG
        )
        await refill.commit()
        await (await pump.prepare_dose(3 * MG)).commit()


async def test_state_and_pumps(server: EmulatorServer) -> None:
    status, pumps = await http(server, "GET", "/v1/pumps")
    assert status == 200 and pumps[0]["serial"] == SERIAL
    status, state = await http(server, "GET", f"/v1/pumps/{SERIAL}")
    assert status == 200
    assert state["status"]["reservoir_nl"] == 0 and state["speed_factor"] == 1
    assert state["events"][0]["kind"] == "POWER_ON"
    status, events = await http(server, "GET", f"/v1/pumps/{SERIAL}/events?cursor=1&limit=1")
    assert status == 200 and [e["seq"] for e in events] == [1]


async def test_tokens_and_unknown_routes(server: EmulatorServer) -> None:
    assert (await http(server, "GET", "/v1/pumps", token=None))[0] == 401
    status, body = await http(server, "GET", "/v1/pumps", token="wrong")
    assert status == 401 and "token" in body["error"]
    assert (await http(server, "GET", "/openapi.json", token=None))[0] == 200
    assert (await http(server, "GET", "/v1/nothing"))[0] == 404
    assert (await http(server, "GET", "/v1/pumps/999"))[0] == 404
    assert (await http(server, "DELETE", f"/v1/pumps/{SERIAL}/speed"))[0] == 405


async def test_speed_pause_resume_and_advance(server: EmulatorServer, tmp_path: Path) -> None:
    await running(server, tmp_path)
    status, state = await http(server, "PUT", f"/v1/pumps/{SERIAL}/speed", {"factor": 500})
    assert status == 200 and server.device.clock.speed_milli == 500_000
    assert (await http(server, "POST", f"/v1/pumps/{SERIAL}/pause"))[0] == 200
    assert server.device.clock.speed_milli == 0
    assert (await http(server, "POST", f"/v1/pumps/{SERIAL}/pause"))[0] == 409
    assert (await http(server, "POST", f"/v1/pumps/{SERIAL}/resume"))[0] == 200
    assert server.device.clock.speed_milli == 500_000
    await http(server, "POST", f"/v1/pumps/{SERIAL}/pause")
    before = server.device.pump.status()
    status, state = await http(server, "POST", f"/v1/pumps/{SERIAL}/advance", {"ms": fm.DAY_MS})
    after = server.device.pump.status()
    assert status == 200 and after.now == before.now + fm.DAY_MS
    assert before.reservoir_nl - after.reservoir_nl == 120_000  # one day at 0.12 mL/day
    # until the low-reservoir alarm: (20 - 2) mL at 0.12 mL/day, 150 days after the fill
    status, state = await http(
        server, "POST", f"/v1/pumps/{SERIAL}/advance", {"until": "next-alarm"}
    )
    assert status == 200 and "LOW_RESERVOIR" in state["status"]["active_alarms"]
    low = next(a for a in server.device.pump.alarms() if a.alarm is fm.Alarm.LOW_RESERVOIR)
    fill = next(e for e in server.device.pump.events() if e.kind is fm.EventKind.REFILL)
    assert round((low.raised_at_ms - fill.time_ms) / fm.DAY_MS) == 150
    status, _ = await http(server, "POST", f"/v1/pumps/{SERIAL}/advance", {"until": "empty"})
    assert status == 200 and server.device.pump.status().reservoir_nl == 0
    controls = [e for e in server.device.pump.events() if e.kind is fm.EventKind.CONTROL]
    assert {e.a for e in controls} >= {3, 4}  # speed and advance are in the log


async def test_faults_reservoir_and_link(server: EmulatorServer, tmp_path: Path) -> None:
    await running(server, tmp_path)
    path = f"/v1/pumps/{SERIAL}"
    status, state = await http(server, "POST", f"{path}/faults", {"kind": "MOTOR_STALL"})
    assert status == 200 and "MOTOR_STALL" in state["status"]["faults"]
    assert "MOTOR_STALL" in state["status"]["active_alarms"]
    status, state = await http(server, "DELETE", f"{path}/faults/motor_stall")
    assert status == 200 and state["status"]["faults"] == []
    assert (await http(server, "DELETE", f"{path}/faults/motor_stall"))[0] == 409
    assert (await http(server, "DELETE", f"{path}/faults/nonsense"))[0] == 404
    status, _ = await http(
        server, "POST", f"{path}/faults", {"kind": "DELIVERY_INACCURACY", "error_ppm": 50_000}
    )
    assert status == 200
    status, body = await http(server, "POST", f"{path}/faults", {"kind": "POCKET_FILL"})
    assert status == 400 and "volume_nl" in body["error"]
    status, body = await http(
        server, "POST", f"{path}/faults", {"kind": "MOTOR_STALL", "share_ppm": 5}
    )
    assert status == 400 and "share_ppm" in body["error"]
    status, state = await http(server, "PUT", f"{path}/reservoir", {"true_volume_nl": 5_000_000})
    assert status == 200 and state["status"]["true_reservoir_nl"] == 5_000_000
    assert state["status"]["reservoir_nl"] > 19_000_000  # the pump does not know
    status, link = await http(server, "PUT", f"{path}/link", {"drop": 0.25, "delay_ms": 10})
    assert status == 200 and link["drop"] == 0.25 and server.runtime is not None
    assert server.runtime.impairment.delay_ms == 10
    status, link = await http(server, "GET", f"{path}/link")
    assert status == 200 and link["drop"] == 0.25


async def test_a_cut_link_silences_the_pump(server: EmulatorServer, tmp_path: Path) -> None:
    await running(server, tmp_path)
    await http(server, "PUT", f"/v1/pumps/{SERIAL}/link", {"cut": True})
    with pytest.raises(programmer.Unreachable):
        async with programmer.connect(
            f"serial://{server.port_path}",
            key=server.key_files[p.Role.CLINICIAN],
            journal=tmp_path / "j.sqlite",
            timeout_s=0.05,
            retries=1,
        ):
            pass
    await http(server, "PUT", f"/v1/pumps/{SERIAL}/link", {})
    async with programmer.connect(
        f"serial://{server.port_path}",
        key=server.key_files[p.Role.CLINICIAN],
        journal=tmp_path / "j.sqlite",
    ) as pump:
        assert (await pump.status()).daily_dose_ng == 3 * MG


@pytest.mark.parametrize(
    ("method", "path", "body", "fragment"),
    [
        ("PUT", "speed", {"factor": -1}, "factor"),
        ("PUT", "speed", {"factor": "fast"}, "number"),
        ("PUT", "speed", {}, "missing"),
        ("POST", "advance", {"ms": 0}, "ms"),
        ("POST", "advance", {"ms": 5, "until": "empty"}, "exactly one"),
        ("POST", "advance", {"until": "tomorrow"}, "one of"),
        ("POST", "faults", {"kind": "GREMLINS"}, "one of"),
        ("PUT", "reservoir", {"true_volume_nl": 30_000_000}, "volume_nl"),
        ("PUT", "link", {"drop": 2}, "drop"),
        ("PUT", "link", {"jitter": 1}, "unknown"),
        ("PUT", "link", [1, 2], "object"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    server: EmulatorServer, method: str, path: str, body: Any, fragment: str
) -> None:
    before = fm.snapshot(server.device.pump)
    impairment = server.runtime.impairment if server.runtime else None
    status, answer = await http(server, method, f"/v1/pumps/{SERIAL}/{path}", body)
    assert status == 400 and fragment in answer["error"]
    assert (
        fm.snapshot(server.device.pump)["state"]["program_version"]
        == (before["state"]["program_version"])
    )
    assert server.device.clock.speed_milli == 1000
    assert server.runtime is not None and server.runtime.impairment == impairment
    status, answer = await http(server, method, f"/v1/pumps/{SERIAL}/{path}", raw=b"{nope")
    assert status == 400 and "JSON" in answer["error"]


def _body_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Bodies drawn from a route's schema: valid ones and ones one mutation away."""

    def value(s: dict[str, Any]) -> st.SearchStrategy[Any]:
        if "enum" in s:
            return st.sampled_from(s["enum"])
        if s["type"] == "integer":
            return st.integers(s.get("minimum", -(2**40)), s.get("maximum", 2**40))
        if s["type"] == "number":
            return st.floats(s["minimum"], s["maximum"])
        if s["type"] == "boolean":
            return st.booleans()
        return st.text(max_size=5)

    props = schema.get("properties", {})
    valid = st.fixed_dictionaries(
        {k: value(props[k]) for k in schema.get("required", [])},
        optional={k: value(v) for k, v in props.items() if k not in schema.get("required", [])},
    )
    junk = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers()))
    broken = valid.flatmap(
        lambda d: st.sampled_from(sorted(d) or ["x"]).flatmap(
            lambda k: junk.map(lambda j: {**d, k: j})
        )
    )
    return st.one_of(valid, broken)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_openapi_document_describes_the_server(data: st.DataObject) -> None:
    """Every route of the document, with bodies generated from its schema: the server answers
    only with a status the document lists, 2xx only for bodies the schema accepts."""
    from emulator._control import ControlError, validate

    doc = openapi()
    route = data.draw(st.sampled_from([r for r in ROUTES if r.method != "GET"]))
    body = data.draw(_body_for(route.body)) if route.body else None
    documented = {int(c) for c in doc["paths"][route.path][route.method.lower()]["responses"]}

    async def run() -> tuple[int, Any]:
        cp = ControlPlane({}, token="t")
        return await cp.handle(
            route.method,
            route.path.replace("{serial}", "1").replace("{kind}", "MOTOR_STALL"),
            {"authorization": "Bearer t"},
            b"" if body is None else json.dumps(body).encode(),
        )

    status, answer = asyncio.run(run())
    assert status in documented
    accepted = True
    if route.body is not None:
        try:
            validate(route.body, body)
        except ControlError:
            accepted = False
    if not accepted:
        assert status == 400 and answer["error"]
    else:
        assert status == 404  # schema-valid, and no pump 1 here: the route is real


def test_every_fault_kind_is_documented() -> None:
    schema = next(r.body for r in ROUTES if r.path.endswith("/faults") and r.body)
    assert schema is not None
    assert set(schema["properties"]["kind"]["enum"]) == set(FAULTS)
    assert {k.name for k in fm.FaultKind} - set(FAULTS) == {"FLOW_VALVE_CLOSED"}  # via MRI


def test_serve_with_control_and_the_ctl_command(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    ready = tmp_path / "ready.json"
    with (tmp_path / "log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(tmp_path / "s"),
             "--ready-file", str(ready), "--control", "0"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        info = wait_ready(proc, ready, tmp_path / "log")
        env = {
            **os.environ,
            "ITP_CONTROL_URL": info["control"],
            "ITP_CONTROL_TOKEN": info["control_token"],
        }

        def ctl(*args: str, **extra: str) -> tuple[int, Any]:
            r = subprocess.run(
                [sys.executable, "-m", "emulator.cli", "ctl", *args],
                capture_output=True, env={**env, **extra}, timeout=30, check=False,
            )  # fmt: skip
            return r.returncode, json.loads(r.stdout) if r.stdout.strip() else r.stderr

        rc, state = ctl("state")
        assert rc == 0 and state["serial"] == 1234
        assert ctl("speed", "10")[1]["speed_factor"] == 10
        before = ctl("state")[1]["status"]["now"]
        rc, state = ctl("advance", "--days", "2")
        assert rc == 0 and state["status"]["now"] >= before + 2 * fm.DAY_MS
        assert "MOTOR_STALL" in ctl("fault", "motor_stall")[1]["status"]["faults"]
        assert ctl("fault", "motor_stall", "--clear")[1]["status"]["faults"] == []
        assert ctl("fault", "pocket_fill", "--param", "volume_nl=2000000")[0] == 0
        assert ctl("link", "--drop", "0.1")[1]["drop"] == 0.1
        assert ctl("link", "--drop", "3")[0] == 2  # bad input
        assert ctl("reservoir", "1.5")[1]["status"]["true_reservoir_nl"] == 1_500_000
        assert ctl("state", ITP_CONTROL_TOKEN="wrong")[0] == 5
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0


async def test_reset_to_a_training_scenario(tmp_path: Path) -> None:
    options = ServerOptions(control=("127.0.0.1", 0))
    async with EmulatorServer(tmp_path / "pump", options) as server:
        status, body = await http(server, "POST", f"/v1/pumps/{SERIAL}/reset", {"scenario": "x"})
        assert status == 404 and "low-reservoir-alarm-day" in body["error"]
        status, state = await http(
            server, "POST", f"/v1/pumps/{SERIAL}/reset", {"scenario": "low-reservoir-alarm-day"}
        )
        assert status == 200
        st = server.device.pump.status()
        assert (st.drug, st.reservoir_nl, st.daily_dose_ng) == (
            fm.Drug.BACLOFEN,
            20_000_000,
            500_000,
        )
        assert server.device.pump.events()[0].kind is fm.EventKind.POWER_ON
        status, state = await http(
            server, "POST", f"/v1/pumps/{SERIAL}/advance", {"until": "next-alarm"}
        )
        assert "LOW_RESERVOIR" in state["status"]["active_alarms"]
        seq = server.device.pump.event_seq
    async with EmulatorServer(tmp_path / "pump", options) as server:  # the reset was stored
        assert server.device.pump.status().drug is fm.Drug.BACLOFEN
        assert server.device.pump.event_seq >= seq
