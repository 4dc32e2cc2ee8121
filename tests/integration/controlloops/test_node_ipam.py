"""Node IPAM against a REAL kpy-apiserver (its own, so that no other test's nodes share the range): a pod CIDR
per node, the same CIDRs after a controller restart, CIDRNotAvailable when the range is exhausted, and a freed
CIDR going to the node that waited."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import cm_config, eventually, run_component

from kpy_components.controller_manager import manager

pytestmark = pytest.mark.anyio


def ipam_config():
    config = cm_config(["nodeipam"], service_cidr="10.77.1.0/24")
    return dataclasses.replace(config, node_ipam=dataclasses.replace(
        config.node_ipam, allocate_node_cidrs=True, cluster_cidr="10.77.0.0/22", node_cidr_mask_size=24))


async def test_each_node_gets_its_own_pod_cidr_kept_across_restarts(cluster, client):
    nodes = client.resource("nodes")

    async def cidrs() -> dict:
        return {n["metadata"]["name"]: n.get("spec", {}).get("podCIDR") for n in (await client.list(nodes))["items"]}

    async def all_have(names) -> dict | None:
        seen = await cidrs()
        return seen if all(seen.get(name) for name in names) else None

    for name in ("ipam-a", "ipam-b"):
        await client.create(nodes, {"metadata": {"name": name}})
    async with run_component(manager.run, ipam_config(), cluster):
        first = await eventually(lambda: all_have(["ipam-a", "ipam-b"]), message="CIDRs allocated")
    assert sorted(first.values()) == ["10.77.0.0/24", "10.77.2.0/24"]  # 10.77.1.0/24 is the Service network
    node = await client.get(nodes, "ipam-a")
    assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]

    await client.create(nodes, {"metadata": {"name": "ipam-c"}})
    await client.create(nodes, {"metadata": {"name": "ipam-d"}})
    async with run_component(manager.run, ipam_config(), cluster):
        seen = await eventually(lambda: all_have(["ipam-c"]), message="third CIDR")
        assert {k: seen[k] for k in ("ipam-a", "ipam-b")} == first  # a restart keeps what nodes hold
        assert seen["ipam-c"] == "10.77.3.0/24"

        async def exhausted():
            events = (await client.list(client.resource("events"), "default",
                                        field_selector="involvedObject.name=ipam-d")).get("items", [])
            return [e for e in events if e["reason"] == "CIDRNotAvailable"]
        [event] = await eventually(exhausted, message="CIDRNotAvailable event")
        assert event["message"] == "Node ipam-d status is now: CIDRNotAvailable"
        assert not (await cidrs())["ipam-d"]
        await client.delete(nodes, "ipam-b")
        freed = await eventually(lambda: all_have(["ipam-d"]), message="the freed CIDR handed on")
        assert freed["ipam-d"] == first["ipam-b"]
