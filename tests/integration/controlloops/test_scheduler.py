"""kpy-scheduler's work (cli.run, in-process as the runner runs it while leading) against a REAL kpy-apiserver with
simulated nodes created through the API: pods land where nodeSelector, taints and requests allow; a pod that fits
nowhere gets Kubernetes' FailedScheduling event and PodScheduled=False condition, and lands once a node that fits
is added; pods for other schedulers are left alone; the attempts show in the component's metrics.

The module's API server is fresh, so the first test knows every node in the cluster (the exact message counts
them); later tests pin their pods to their own nodes with a group label.
"""
from __future__ import annotations

import pytest
from conftest import eventually, run_component

from kpy_components.scheduler import cli, config

pytestmark = pytest.mark.anyio
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def pod(name: str, cpu: str = "100m", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9",
                                     "resources": {"requests": {"cpu": cpu}}}], **spec}}


async def node_of(client, namespace: str, name: str) -> str | None:
    return (await client.get(client.resource("pods"), name, namespace)).get("spec", {}).get("nodeName")


async def failed_scheduling_events(client, namespace: str, name: str) -> list[str]:
    events = await client.list(client.resource("events"), namespace)
    return [e["message"] for e in events["items"]
            if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"]


@pytest.fixture
async def scheduler(cluster):
    async with run_component(cli.run, config.load(None), cluster, name="default-scheduler") as context:
        yield context


async def test_unschedulable_pod_is_explained_then_lands_on_a_new_node(client, namespace, nodes, scheduler):
    pods = client.resource("pods")
    await nodes.add("small-1", cpu="1")
    await nodes.add("small-2", cpu="1")
    await nodes.add("control-plane-1", cpu="8", taints=[CONTROL_PLANE_TAINT])
    await client.create(pods, pod("big", cpu="2"), namespace)

    expected = ("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
                "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for "
                "scheduling, 2 No preemption victims found for incoming pod.")
    messages = await eventually(lambda: failed_scheduling_events(client, namespace, "big"),
                                message="a FailedScheduling event")
    assert messages == [expected]

    async def condition():
        current = await client.get(pods, "big", namespace)
        return [c for c in current["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
    conditions = await eventually(condition, message="the PodScheduled condition")
    assert conditions[0]["status"] == "False" and conditions[0]["reason"] == "Unschedulable"
    assert conditions[0]["message"] == expected
    assert await node_of(client, namespace, "big") is None

    await nodes.add("large-1", cpu="4")  # a node-add event moves the pod back to the active queue
    assert await eventually(lambda: node_of(client, namespace, "big"), message="pod bound") == "large-1"


async def test_pods_respect_node_selector_taints_and_requests(client, namespace, nodes, scheduler):
    pods = client.resource("pods")
    group = {"kpy.test/group": "placement"}
    await nodes.add("ssd-1", cpu="2", labels={**group, "disk": "ssd"})
    await nodes.add("hdd-1", cpu="2", labels={**group, "disk": "hdd"})
    await nodes.add("gpu-1", cpu="2", labels={**group, "gpu": "true"},
                    taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    await client.create(pods, pod("wants-ssd", nodeSelector={**group, "disk": "ssd"}), namespace)
    await client.create(pods, pod("tolerates-gpu", nodeSelector={**group, "gpu": "true"},
                                  tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                                "effect": "NoSchedule"}]), namespace)
    # 8 x 500m into the 2 x 2 cpu of the untainted nodes (ssd-1 already holds 100m): 7 fit, the 8th cannot
    fillers = [f"filler-{index}" for index in range(8)]
    for name in fillers:
        await client.create(pods, pod(name, cpu="500m", nodeSelector=group), namespace)

    assert await eventually(lambda: node_of(client, namespace, "wants-ssd")) == "ssd-1"
    assert await eventually(lambda: node_of(client, namespace, "tolerates-gpu")) == "gpu-1"

    async def placed():
        return {name: await node_of(client, namespace, name) for name in fillers}
    placement = await eventually(lambda: _at_least(placed(), 7), message="7 fillers bound")
    assert set(placement.values()) - {None} <= {"ssd-1", "hdd-1"}  # never the tainted node
    assert sum(1 for n in placement.values() if n == "ssd-1") == 3  # 100m + 3 x 500m <= 2 cpu
    assert sum(1 for n in placement.values() if n == "hdd-1") == 4
    unplaced = [name for name, node in placement.items() if node is None]
    assert len(unplaced) == 1
    messages = await eventually(lambda: failed_scheduling_events(client, namespace, unplaced[0]))
    assert "Insufficient cpu" in messages[0] and "node(s) had untolerated taint {dedicated: gpu}" in messages[0]


async def test_other_schedulers_pods_are_left_alone_and_attempts_are_counted(client, namespace, nodes, scheduler):
    pods = client.resource("pods")
    group = {"kpy.test/group": "names"}
    await nodes.add("names-1", labels=group)
    await client.create(pods, pod("someone-elses", schedulerName="other-scheduler", nodeSelector=group), namespace)
    await client.create(pods, pod("ours", nodeSelector=group), namespace)
    assert await eventually(lambda: node_of(client, namespace, "ours")) == "names-1"
    assert await node_of(client, namespace, "someone-elses") is None
    registry = scheduler.metrics
    assert registry.get_sample_value("scheduler_schedule_attempts_total",
                                     {"result": "scheduled", "profile": "default-scheduler"}) >= 1
    assert registry.get_sample_value("scheduler_pending_pods", {"queue": "active"}) == 0


async def _at_least(placement_coroutine, count: int):
    placement = await placement_coroutine
    return placement if sum(1 for node in placement.values() if node) >= count else None


async def test_pending_pods_move_back_on_node_updates_and_pod_deletes(client, namespace, nodes, scheduler):
    pods, node_info = client.resource("pods"), client.resource("nodes")
    group = {"kpy.test/group": "events"}
    await nodes.add("events-1", cpu="1", labels=group, taints=[{"key": "maintenance", "effect": "NoSchedule"}])
    await client.create(pods, pod("first", nodeSelector=group), namespace)
    await eventually(lambda: failed_scheduling_events(client, namespace, "first"), message="first unschedulable")

    await client.patch(node_info, "events-1", {"spec": {"taints": None}})  # a node update: the taint is gone
    assert await eventually(lambda: node_of(client, namespace, "first")) == "events-1"
    events = await client.list(client.resource("events"), namespace)
    assert f"Successfully assigned {namespace}/first to events-1" in [
        e["message"] for e in events["items"] if e["reason"] == "Scheduled" and e["source"]["component"] ==
        "default-scheduler"]

    await client.create(pods, pod("second", cpu="1", nodeSelector=group), namespace)
    messages = await eventually(lambda: failed_scheduling_events(client, namespace, "second"))
    assert "1 Insufficient cpu" in messages[0]
    await client.delete(pods, "first", namespace, grace_period_seconds=0)  # frees the node's cpu
    assert await eventually(lambda: node_of(client, namespace, "second")) == "events-1"
