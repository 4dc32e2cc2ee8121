"""Cascading deletion with the real controllers, on its own REAL kpy-apiserver: a Deployment applied with kubectl
is rolled out by the deployment and replicaset controllers and the scheduler onto simulated nodes, then deleted
with kubectl --cascade=background|foreground|orphan while the garbage collector runs: background and foreground
take the ReplicaSet and pods along, orphan leaves them running without an owner."""
from __future__ import annotations

import asyncio
import json

import pytest
from conftest import cm_config, eventually, run_component

from apiserver.conftest import Kubectl
from kpy_components.controller_manager import manager
from kpy_components.scheduler import cli as scheduler_cli
from kpy_components.scheduler import config as scheduler_config

pytestmark = pytest.mark.anyio
REPLICAS = 3


@pytest.fixture
async def controllers(cluster, nodes, namespace):
    """Two simulated nodes (removed afterwards: no kubelet would look after them in the next test), the scheduler,
    the deployment and replicaset controllers and the garbage collector."""
    names = [f"{namespace}-{index}" for index in range(2)]
    for name in names:
        await nodes.add(name)
    try:
        async with run_component(scheduler_cli.run, scheduler_config.load(None), cluster, name="default-scheduler"), \
                run_component(manager.run, cm_config(["deployment", "replicaset", "garbagecollector"]), cluster,
                              name="kube-controller-manager"):
            yield
    finally:
        for name in names:
            await nodes.client.delete(nodes.nodes_info, name)


def manifest(name: str) -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": REPLICAS, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
            {"name": "app", "image": "registry.example/app:1", "resources": {"requests": {"cpu": "10m"}}}]}}}})


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
async def test_kubectl_delete_deployment(cluster, client, namespace, controllers, tmp_path, cascade):
    kubectl = Kubectl("1.33", cluster.admin_kubeconfig, tmp_path / "cache")
    replicasets, pods = client.resource("replicasets", "apps"), client.resource("pods")
    name = f"app-{cascade}"
    await asyncio.to_thread(kubectl, "apply", "-n", namespace, "-f", "-", input=manifest(name))

    async def running() -> list[dict]:
        listed = (await client.list(pods, namespace, label_selector=f"app={name}"))["items"]
        return [p for p in listed if p.get("status", {}).get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")]
    before = await eventually(lambda: _exactly(running(), REPLICAS), timeout=30, message="rolled out")
    [replicaset] = (await client.list(replicasets, namespace, label_selector=f"app={name}"))["items"]

    await asyncio.to_thread(kubectl, "delete", "deployment", name, "-n", namespace, f"--cascade={cascade}",
                            "--timeout=60s", timeout=90)
    if cascade == "orphan":
        await asyncio.sleep(1)  # give the collector the chance to get it wrong
        kept = (await client.get(replicasets, replicaset["metadata"]["name"], namespace))["metadata"]
        assert kept["uid"] == replicaset["metadata"]["uid"] and "ownerReferences" not in kept
        assert {p["metadata"]["uid"] for p in await running()} == {p["metadata"]["uid"] for p in before}
        return

    async def remaining() -> int:
        listed = (await client.list(pods, namespace, label_selector=f"app={name}"))["items"]
        left = (await client.list(replicasets, namespace, label_selector=f"app={name}"))["items"]
        return len(listed) + len(left)
    if cascade == "foreground":  # kubectl returned once the Deployment was gone: after its dependents
        assert await remaining() == 0
    await eventually(lambda: _equals(remaining(), 0), timeout=30, message="ReplicaSet and pods collected")


async def _exactly(awaitable, count: int):
    value = await awaitable
    return value if len(value) == count else None


async def _equals(awaitable, expected) -> bool:
    return await awaitable == expected
