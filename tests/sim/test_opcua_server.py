"""The simulated plant over OPC UA: address space, publishing, writes, cross-protocol equality."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asyncua import Client, ua

import bifrost as bf
from bifrost.sim import Plant
from bifrost.sim.tagmap import OPCUA_TAGS, opcua_aux_tags


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=7, realtime=False) as plant:
        plant.serve(modbus=0, opcua=0)
        plant.step(20)
        yield plant


def _run(url: str, job: Any) -> Any:
    async def main() -> Any:
        client = Client(url)
        await client.connect()
        try:
            return await job(client)
        finally:
            await client.disconnect()

    return asyncio.run(main())


def test_url_and_tag_table(plant: Plant) -> None:
    url = plant.urls["opcua"]
    assert url.startswith("opc.tcp://127.0.0.1:")
    assert url.endswith("/bifrost/")
    names = {t.name for t in plant.tags("opcua")}
    assert names >= {t.name for t in plant.tags("modbus")}
    assert "pump.vibration" in names
    assert plant.opcua_security is None


def test_address_space_layout(plant: Plant) -> None:
    async def job(client: Client) -> dict[str, Any]:
        level = await client.nodes.objects.get_child(["2:Plant", "2:Tank", "2:Level"])
        units = await level.get_child("0:EngineeringUnits")
        setpoint = client.get_node("ns=2;s=Plant.Reactor.Setpoint")
        children = await client.get_node("ns=2;s=Plant").get_children()
        return {
            "level_id": level.nodeid.to_string(),
            "description": (await level.read_description()).Text,
            "units": (await units.read_value()).DisplayName.Text,
            "access": await setpoint.read_attribute(ua.AttributeIds.AccessLevel),
            "children": sorted([(await c.read_browse_name()).Name for c in children]),
            "vibration": await client.get_node("ns=2;s=Plant.Pump.Vibration").read_value(),
        }

    found = _run(plant.urls["opcua"], job)
    assert found["level_id"] == "ns=2;s=Plant.Tank.Level"
    assert found["description"] == "Tank level (0-5 m)"
    assert found["units"] == "m"
    assert found["access"].Value.Value == 7  # CurrentRead | CurrentWrite | HistoryRead
    assert found["children"] == ["Heartbeat", "Line", "Pump", "Reactor", "Tank"]  # no Aux
    assert len(found["vibration"]) == 64


def test_same_values_over_modbus_and_opcua(plant: Plant) -> None:
    plant.step(7)
    names = [spec.name for spec in OPCUA_TAGS if spec.name != "pump.vibration"]
    with plant.connect("modbus") as modbus, plant.connect("opcua") as opcua:
        over_modbus = modbus.read(names)["value"]
        over_opcua = opcua.read(names)["value"]
    for name in names:
        assert over_modbus[name] == over_opcua[name], name
    snapshot = plant.snapshot()
    with plant.connect("opcua") as opcua:
        np.testing.assert_array_equal(
            opcua.read_value("pump.vibration"), snapshot["pump.vibration"]
        )


def test_stepped_publish_is_seen_at_once(plant: Plant) -> None:
    with plant.connect("opcua") as plc:
        for _ in range(5):
            plant.step(1)
            assert plc.read_value("plant.heartbeat") == plant.snapshot()["plant.heartbeat"]


def test_writes_reach_the_model_and_refusals(plant: Plant) -> None:
    async def job(client: Client) -> ua.StatusCode:
        await client.get_node("ns=2;s=Plant.Reactor.Setpoint").write_value(
            ua.DataValue(ua.Variant(42.0, ua.VariantType.Float))
        )
        try:
            await client.get_node("ns=2;s=Plant.Tank.Level").write_value(
                ua.DataValue(ua.Variant(1.0, ua.VariantType.Float))
            )
        except ua.UaStatusCodeError as exc:
            return ua.StatusCode(exc.code)
        return ua.StatusCode(0)

    refused = _run(plant.urls["opcua"], job)
    assert refused.is_bad()
    plant.step(1)
    assert plant.snapshot()["reactor.setpoint"] == 42.0


def test_aux_variables_only_when_asked() -> None:
    with Plant(seed=1, realtime=False) as plant:
        plant.serve(opcua=0, opcua_aux=20)
        url = plant.urls["opcua"]
        with bf.connect(url, security="None", tags=opcua_aux_tags(20)) as plc:
            first = plc.read([f"aux.{i:04d}" for i in range(20)])["value"].to_numpy()
            np.testing.assert_array_equal(first.astype(np.uint16), plant.aux_values()[:20])
            plant.step(5)  # half of the 10-step (0.1 s) pace: not published yet
            assert (
                plc.read([f"aux.{i:04d}" for i in range(20)])["value"].to_numpy() == first
            ).all()
            plant.step(5)
            now = plc.read([f"aux.{i:04d}" for i in range(20)])["value"].to_numpy()
            np.testing.assert_array_equal(now.astype(np.uint16), plant.aux_values()[:20])
            assert plc.browse("/Objects/2:Plant/2:Aux", depth=1).shape[0] == 20


def test_secured_endpoint_and_cleanup() -> None:
    with Plant(seed=1, realtime=False) as plant:
        plant.serve(opcua=0, opcua_security=True)
        security = plant.opcua_security
        assert security is not None
        directory = Path(security.directory)
        assert security.server_certificate.is_file()
        assert "operator" in repr(security)
        assert security.password.reveal() not in repr(security)

        async def endpoints() -> list[str]:
            client = Client(plant.urls["opcua"])
            return sorted(
                f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]},{e.SecurityMode.name}"
                for e in await client.connect_and_get_server_endpoints()
            )

        assert asyncio.run(endpoints()) == [
            "Basic256Sha256,Sign",
            "Basic256Sha256,SignAndEncrypt",
        ]
        with plant.connect("opcua") as plc:
            assert plc.read_value("line.recipe") == plant.snapshot()["line.recipe"]
    assert not directory.exists()


def test_port_in_use_is_a_configuration_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with Plant(seed=1, realtime=False) as plant, pytest.raises(bf.ConfigurationError):
            plant.serve(opcua=port)


def test_realtime_plant_serves_changing_values() -> None:
    with Plant(seed=2) as plant, plant.connect("opcua") as plc:
        first = plc.read_value("plant.heartbeat")
        for _ in range(200):
            if plc.read_value("plant.heartbeat") != first:
                break
            asyncio.run(asyncio.sleep(0.01))
        else:
            pytest.fail("the heartbeat never moved")
