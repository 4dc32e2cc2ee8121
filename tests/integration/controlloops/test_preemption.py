"""Pod priority and preemption end to end: a REAL kpy-apiserver (PriorityClasses, the Priority admission plugin),
kpy-scheduler in-process, simulated nodes, and the real kubectl 1.27 and 1.33 (fresh cache each):

- `kubectl get priorityclasses` shows the built-in classes with upstream's columns, `create priorityclass` works
  and refuses a user value above 1000000000, the built-ins cannot be deleted;
- pods naming a class get its priority; an unknown class is refused with upstream's words through kubectl;
- a cluster full of low-priority pods, then a high-priority pod: it is nominated to a node, one victim there gets
  the DisruptionTarget condition, is deleted and gets a `Preempted` event, and the high-priority pod is bound to
  that node once the victim is gone; a pod of the same priority with preemptionPolicy Never preempts nothing and
  does not take the nominated room.

The victims carry a finalizer of the test's, so their terminating state can be looked at before they go.
"""
from __future__ import annotations

import asyncio
import itertools

import pytest
from apiserver.conftest import Kubectl
from conftest import eventually, run_component

from kpy_components.scheduler import cli, config

pytestmark = pytest.mark.anyio
HOLD = "kpy.test/hold"
_groups = itertools.count()


@pytest.fixture
async def scheduler(cluster):
    async with run_component(cli.run, config.load(None), cluster, name="default-scheduler") as context:
        yield context


@pytest.fixture
async def classes(client):
    """PriorityClasses low (10), high (1000) and high-never (1000, preemptionPolicy Never), once per module."""
    info = client.resource("priorityclasses", "scheduling.k8s.io")
    names = {item["metadata"]["name"] for item in (await client.list(info))["items"]}
    for name, value, policy in (("low", 10, "PreemptLowerPriority"), ("high", 1000, "PreemptLowerPriority"),
                                ("high-never", 1000, "Never")):
        if name not in names:
            await client.create(info, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                       "metadata": {"name": name}, "value": value, "preemptionPolicy": policy})


def pod(name: str, group: str, priority_class: str, cpu: str = "1", **metadata) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **metadata},
            "spec": {"priorityClassName": priority_class, "nodeSelector": {"group": group},
                     "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9",
                                     "resources": {"requests": {"cpu": cpu}}}]}}


async def run(kubectl: Kubectl, *args: str, input: str | None = None):
    return await asyncio.to_thread(kubectl, *args, check=False, input=input, timeout=60)


async def test_get_priorityclasses_shows_the_builtins_with_upstreams_columns(kubectl):
    result = await run(kubectl, "get", "priorityclasses", "system-cluster-critical", "system-node-critical")
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    assert [row.split()[:3] + row.split()[4:] for row in rows] == [
        ["system-cluster-critical", "2000000000", "false", "PreemptLowerPriority"],
        ["system-node-critical", "2000001000", "false", "PreemptLowerPriority"]]
    name = f"made-by-{kubectl.version.replace('.', '')}"  # kubectl >= 1.32 sends this create as protobuf
    made = await run(kubectl, "create", "priorityclass", name, "--value=7", "--preemption-policy=Never")
    assert made.stdout.strip() == f"priorityclass.scheduling.k8s.io/{name} created", made.stderr
    shown = await run(kubectl, "get", "pc", name, "-o", "jsonpath={.value} {.globalDefault} {.preemptionPolicy}")
    assert shown.stdout == "7  Never"
    too_big = await run(kubectl, "create", "priorityclass", "too-big", "--value=1000000001")
    assert "value: Forbidden: maximum allowed value of a user defined priority is 1000000000" in too_big.stderr
    refused = await run(kubectl, "delete", "pc", "system-node-critical")
    assert refused.stderr.strip() == ('Error from server (Forbidden): priorityclasses.scheduling.k8s.io '
                                      '"system-node-critical" is forbidden: this is a system priority class and '
                                      'cannot be deleted')


async def test_classes_resolve_into_priorities_and_unknown_ones_are_refused(client, namespace, classes, kubectl):
    created = await client.create(client.resource("pods"), pod("critical", "none", "system-cluster-critical"),
                                  namespace)
    assert (created["spec"]["priority"], created["spec"]["preemptionPolicy"]) == (2000000000, "PreemptLowerPriority")
    plain = await client.create(client.resource("pods"), pod("plain", "none", ""), namespace)
    assert plain["spec"]["priority"] == 0
    manifest = ('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"priorityClassName": '
                '"foo", "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}')
    refused = await run(kubectl, "create", "-n", namespace, "-f", "-", input=manifest)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ('Error from server (Forbidden): error when creating "STDIN": pods "x" is '
                                      'forbidden: no PriorityClass with name foo was found')


async def test_a_high_priority_pod_preempts_a_low_priority_one(client, namespace, nodes, classes, scheduler):
    pods, events = client.resource("pods"), client.resource("events")
    group = f"preempt-{next(_groups)}"
    for index in range(2):
        await nodes.add(f"{group}-{index}", cpu="1", labels={"group": group})
    for index in range(2):
        await client.create(pods, pod(f"low-{index}", group, "low", finalizers=[HOLD]), namespace)

    async def running(name: str) -> bool:
        return (await client.get(pods, name, namespace)).get("status", {}).get("phase") == "Running"
    for index in range(2):
        await eventually(lambda i=index: running(f"low-{i}"), message=f"low-{index} running")

    await client.create(pods, pod("never", group, "high-never"), namespace)

    async def failure_messages(name: str) -> list[str]:
        listed = await client.list(events, namespace)
        return [e["message"] for e in listed["items"]
                if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"]
    never = await eventually(lambda: failure_messages("never"), message="the Never pod's FailedScheduling")
    assert never[0] == ("0/2 nodes are available: 2 Insufficient cpu. preemption: not eligible due to "
                        "preemptionPolicy=Never.")

    high = await client.create(pods, pod("high", group, "high"), namespace)
    assert high["spec"]["priority"] == 1000

    async def nominated() -> str:
        return (await client.get(pods, "high", namespace)).get("status", {}).get("nominatedNodeName", "")
    node = await eventually(nominated, message="the high-priority pod nominated")

    async def victims() -> list[dict]:
        listed = (await client.list(pods, namespace))["items"]
        return [p for p in listed if p["metadata"]["name"].startswith("low-")
                and p["metadata"].get("deletionTimestamp")]
    (victim,) = await eventually(victims, message="a victim being deleted")
    assert victim["spec"]["nodeName"] == node
    (condition,) = [c for c in victim["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "True", "PreemptionByScheduler", "default-scheduler: preempting to accommodate a higher priority pod")

    async def preempted() -> list[str]:
        listed = await client.list(events, namespace)
        return [e["message"] for e in listed["items"]
                if e["involvedObject"]["name"] == victim["metadata"]["name"] and e["reason"] == "Preempted"]
    assert await eventually(preempted, message="the Preempted event") == [
        f"Preempted by pod {high['metadata']['uid']} on node {node}"]

    await asyncio.sleep(1.0)  # time for a wrong second preemption to show
    assert len(await victims()) == 1, "the preemptor waits for its victim instead of preempting again"
    await client.patch(pods, victim["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace)

    async def bound(name: str) -> str:
        return (await client.get(pods, name, namespace)).get("spec", {}).get("nodeName", "")
    assert await eventually(lambda: bound("high"), message="the high-priority pod bound") == node
    assert await bound("never") == "", "the Never pod must not take the room the preemptor was nominated to"
    other = next(p for p in ("low-0", "low-1") if p != victim["metadata"]["name"])
    assert not (await client.get(pods, other, namespace))["metadata"].get("deletionTimestamp")
    for name in ("never", "high", other):
        await client.patch(pods, name, {"metadata": {"finalizers": None}}, namespace)
