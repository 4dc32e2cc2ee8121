"""The harness itself against a real kpy-apiserver: simulated nodes become Ready with renewed Leases, pods bound
to them run (and finish when annotated), deleted pods are finished off, a failed node stops renewing."""
from __future__ import annotations

import asyncio

import pytest

from conftest import eventually, exists
from kpy_components.api.meta import parse_rfc3339
from simnodes import EXIT_AFTER

pytestmark = pytest.mark.anyio


def _pod(name: str, namespace: str, node: str, annotations: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"nodeName": node, "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "registry.invalid/app:1"}]}}


async def test_nodes_pods_and_leases(client, nodes, namespace):
    pods, leases = client.resource("pods"), client.resource("leases", "coordination.k8s.io")
    node = await nodes.add("sim-a", cpu="2", labels={"zone": "a"})
    assert node["status"]["allocatable"]["cpu"] == "2"
    assert node["metadata"]["labels"]["zone"] == "a"
    await client.create(pods, _pod("runs", namespace, "sim-a"))
    await client.create(pods, _pod("finishes", namespace, "sim-a", {EXIT_AFTER: "0.5"}))

    async def status(name):
        return (await client.get(pods, name, namespace)).get("status", {})

    async def ready(name):
        return any(c["type"] == "Ready" and c["status"] == "True" for c in (await status(name)).get("conditions", []))

    async def phase_is(name, phase):
        return (await status(name)).get("phase") == phase

    await eventually(lambda: ready("runs"), message="pod Ready")
    assert (await status("runs"))["podIP"].startswith("10.244.")
    await eventually(lambda: phase_is("finishes", "Succeeded"), message="annotated pod Succeeded")

    async def renew_time():
        return (await client.get(leases, "sim-a", "kube-node-lease"))["spec"]["renewTime"]

    first = await renew_time()

    async def renewed():
        return parse_rfc3339(await renew_time()) > parse_rfc3339(first)

    await eventually(renewed, message="node lease renewed")

    await client.delete(pods, "runs", namespace)  # graceful: the simulated kubelet finishes the deletion

    async def gone():
        return not await exists(client, pods, "runs", namespace)

    await eventually(gone, message="pod deleted by its kubelet")

    nodes.fail("sim-a")
    await asyncio.sleep(2 * nodes.renew_interval)
    stale = await renew_time()
    await asyncio.sleep(2 * nodes.renew_interval)
    assert await renew_time() == stale
