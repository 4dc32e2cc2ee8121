"""A node failure end to end, on its own REAL kpy-apiserver (no other test's nodes): the node stops renewing its
Lease, the node lifecycle controller marks it Unknown and taints it, its pods are evicted once their
tolerationSeconds run out, and the ReplicaSet controller with the real scheduler replaces them on the node that is
still alive."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import cm_config, eventually, run_component

from kpy_components.controller_manager import manager
from kpy_components.scheduler import cli as scheduler_cli
from kpy_components.scheduler import config as scheduler_config

pytestmark = pytest.mark.anyio
REPLICAS = 4
TOLERATION_SECONDS = 5


def replicaset() -> dict:
    labels = {"app": "survivor"}
    tolerations = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": TOLERATION_SECONDS}
                   for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "survivor"}, "spec": {
        "replicas": REPLICAS, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {
            "tolerations": tolerations,
            "containers": [{"name": "app", "image": "registry.example/app:1",
                            "resources": {"requests": {"cpu": "100m"}}}]}}}}


async def test_pods_of_a_failed_node_are_evicted_after_their_toleration_and_replaced_elsewhere(cluster, client,
                                                                                             namespace, nodes):
    pods, node_info = client.resource("pods"), client.resource("nodes")
    await nodes.add("fail-a")
    await nodes.add("fail-b")
    config = cm_config(["replicaset", "nodelifecycle"])
    config = dataclasses.replace(config, node_lifecycle=dataclasses.replace(
        config.node_lifecycle, node_monitor_period=0.5, node_monitor_grace_period=4.0))

    async def running() -> dict[str, str]:
        """Running pods not being deleted -> their node."""
        listed = (await client.list(pods, namespace, label_selector="app=survivor"))["items"]
        return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in listed
                if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}

    async with run_component(scheduler_cli.run, scheduler_config.load(None), cluster, name="default-scheduler"), \
            run_component(manager.run, config, cluster, name="kube-controller-manager"):
        await client.create(client.resource("replicasets", "apps"), replicaset(), namespace)
        placed = await eventually(lambda: _at_least(running(), REPLICAS), message="all replicas running")
        victim = max(("fail-a", "fail-b"), key=lambda n: list(placed.values()).count(n))
        survivor = "fail-b" if victim == "fail-a" else "fail-a"
        doomed = {name for name, node in placed.items() if node == victim}
        nodes.fail(victim)

        async def unreachable():
            node = await client.get(node_info, victim)
            return {t["key"] for t in node["spec"].get("taints", [])} == {"node.kubernetes.io/unreachable"}
        await eventually(unreachable, timeout=20, message="failed node tainted unreachable")
        await eventually(lambda: _terminating(client, namespace, doomed), timeout=20, message="pods evicted")
        final = await eventually(lambda: _replaced(running(), survivor, doomed), timeout=30,
                                 message="replacements running on the surviving node")
        assert len(final) == REPLICAS and set(final.values()) == {survivor}
        ready = next(c for c in (await client.get(node_info, victim))["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "Unknown"


async def _at_least(awaitable, count: int):
    value = await awaitable
    return value if len(value) >= count else None


async def _terminating(client, namespace: str, names: set[str]) -> bool:
    for name in names:
        pod = await client.get(client.resource("pods"), name, namespace)
        if not pod["metadata"].get("deletionTimestamp"):
            return False
    return True


async def _replaced(awaitable, survivor: str, doomed: set[str]):
    value = await awaitable
    return value if len(value) == REPLICAS and set(value.values()) == {survivor} and not doomed & set(value) else None
