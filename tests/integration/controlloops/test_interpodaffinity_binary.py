"""Inter-pod affinity end to end: the `kpy-scheduler` console script (its default profile, its Namespace informer)
against a REAL kpy-apiserver, the deployment and replicaset controllers in-process, and three simulated nodes in two
zones. A Deployment with required anti-affinity on kubernetes.io/hostname puts one pod per node and its fourth
replica stays Pending with upstream's words in its PodScheduled condition and FailedScheduling event; preferred
affinity co-locates a Deployment with the pod it prefers; a namespaceSelector finds a pod in another namespace.

The module's API server is fresh, so the three nodes are the whole cluster (the messages count them)."""
from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cm_config, eventually, run_component

from apiserver.conftest import free_port
from kpy_components.controller_manager import manager
from processes import stop_process

pytestmark = pytest.mark.anyio
HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"
ZONES = ("zone-a", "zone-a", "zone-b")
_rounds = itertools.count()


@pytest.fixture
async def cluster_with_scheduler(cluster, nodes, tmp_path):
    """Three nodes (names new in each test: a deleted node's Lease stays), the real scheduler binary (no leader
    election) and the Deployment controllers; yields {node name: zone}."""
    round_ = next(_rounds)
    zones = {f"ipa{round_}-{number}": zone for number, zone in enumerate(ZONES)}
    for name, zone in zones.items():
        await nodes.add(name, cpu="8", labels={ZONE: zone})
    log = tmp_path / "kpy-scheduler.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kpy-scheduler"), "--kubeconfig", str(cluster.admin_kubeconfig),
             "--leader-elect=false", "--secure-port", str(free_port()), "--bind-address", "127.0.0.1"],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        async with run_component(manager.run, cm_config(["deployment", "replicaset"]), cluster,
                                 name="kube-controller-manager"):
            yield zones
        assert process.poll() is None, log.read_text()[-3000:]
    finally:
        stop_process(process, timeout=15)
        for name in zones:
            await nodes.client.delete(nodes.nodes_info, name)


def term(key: str, **labels) -> dict:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key}


def deployment(name: str, replicas: int, affinity: dict | None = None) -> dict:
    spec = {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9",
                            "resources": {"requests": {"cpu": "100m"}}}]}
    if affinity:
        spec["affinity"] = affinity
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


async def pods_of(client, namespace: str, app: str) -> list[dict]:
    listed = await client.list(client.resource("pods"), namespace, label_selector=f"app={app}")
    return [pod for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")]


async def placement(client, namespace: str, app: str, count: int) -> list[str] | None:
    """The nodes of the app's pods once `count` of them are bound, else None."""
    bound = [pod["spec"]["nodeName"] for pod in await pods_of(client, namespace, app) if pod["spec"].get("nodeName")]
    return sorted(bound) if len(bound) == count else None


async def test_required_anti_affinity_spreads_a_deployment_and_explains_the_extra_replica(
        client, namespace, cluster_with_scheduler):
    deployments = client.resource("deployments", "apps")
    spread = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term(HOST, app="web")]}}
    await client.create(deployments, deployment("web", 3, spread), namespace)
    placed = await eventually(lambda: placement(client, namespace, "web", 3), timeout=60,
                              message="three replicas bound")
    assert placed == sorted(cluster_with_scheduler)

    await client.patch(deployments, "web", {"spec": {"replicas": 4}}, namespace, patch_type="merge")
    expected = ("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are "
                "available: 3 No preemption victims found for incoming pod.")

    async def pending_condition():
        for pod in await pods_of(client, namespace, "web"):
            if not pod["spec"].get("nodeName"):
                for condition in pod.get("status", {}).get("conditions") or ():
                    if condition["type"] == "PodScheduled":
                        return pod["metadata"]["name"], condition
        return None
    name, condition = await eventually(pending_condition, message="the fourth replica's PodScheduled condition")
    assert (condition["status"], condition["reason"], condition["message"]) == ("False", "Unschedulable", expected)

    async def failed_events():
        events = await client.list(client.resource("events"), namespace)
        return [e["message"] for e in events["items"]
                if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"]
    assert expected in await eventually(failed_events, message="a FailedScheduling event")
    assert await placement(client, namespace, "web", 3) == sorted(cluster_with_scheduler)  # nothing moved or doubled up


async def test_preferred_affinity_co_locates_and_namespace_selector_reaches_other_namespaces(
        client, namespace, cluster_with_scheduler):
    deployments, pods = client.resource("deployments", "apps"), client.resource("pods")
    await client.create(deployments, deployment("cache", 1), namespace)
    (cache_node,) = await eventually(lambda: placement(client, namespace, "cache", 1), timeout=60,
                                     message="the cache bound")
    near = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term(HOST, app="cache")}]}}
    await client.create(deployments, deployment("app", 5, near), namespace)
    assert await eventually(lambda: placement(client, namespace, "app", 5), message="five replicas bound") == [
        cache_node] * 5

    # a pod in another namespace, required to share a zone with the cache, found through the namespace's labels
    await client.patch(client.resource("namespaces"), namespace, {"metadata": {"labels": {"tier": "cache"}}},
                       patch_type="merge")
    other = f"{namespace}-client"
    await client.create(client.resource("namespaces"), {"metadata": {"name": other}})
    await client.create(client.resource("serviceaccounts"), {"metadata": {"name": "default"}}, other)
    follower = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "follower", "labels": {"app": "follower"}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}],
                         "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                             dict(term(ZONE, app="cache"), namespaceSelector={"matchLabels": {"tier": "cache"}})]}}}}
    await client.create(pods, follower, other)

    async def follower_node():
        return (await client.get(pods, "follower", other))["spec"].get("nodeName")
    zones = cluster_with_scheduler
    assert zones[await eventually(follower_node, message="the follower bound")] == zones[cache_node]
