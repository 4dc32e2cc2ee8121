"""Job failure and success policies end to end, as Kubernetes 1.31 behaves: a REAL kpy-apiserver, the scheduler and
the job controller in-process, simulated nodes whose pods end with the exit codes and conditions a kubelet would
report, and the real kubectl where users meet the API:

- a FailJob rule on an exit code fails the Job at once (FailureTarget, then Failed, reason PodFailurePolicy, with
  upstream's message), far below its backoffLimit;
- an Ignore rule on DisruptionTarget: an evicted pod is replaced and not counted, so backoffLimit 0 holds;
- backoffLimitPerIndex: an index fails after its own limit (its pods carry the index failure count), the other
  indexes complete, the Job fails with FailedIndexes and status.failedIndexes; FailIndex with maxFailedIndexes
  fails it with MaxFailedIndexesExceeded and no pod is run again;
- a successPolicy met by index 0 completes the Job (SuccessCriteriaMet, then Complete) and stops the other pods;
- an Indexed Job's completions change with its parallelism through kubectl (alone they are refused), and the pods
  of indexes beyond the new completions are deleted;
- bad policies are refused through kubectl with 422 field errors, changes to immutable ones too, and a misspelt
  field inside a rule with strict field validation.
"""
from __future__ import annotations

import asyncio
import json
import re

import pytest
from conftest import eventually, scheduled_cluster

from kpy_components.api.errors import APIError
from kpy_components.controller_manager.controllers.jobindexes import parse_indexes

pytestmark = pytest.mark.anyio
INDEX = "batch.kubernetes.io/job-completion-index"
DISRUPTED = {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
             "message": "The node was low on resource: memory."}


@pytest.fixture
async def job_controller(cluster, nodes):
    """Two simulated nodes (removed afterwards), the scheduler and the job controller."""
    async with scheduled_cluster(cluster, nodes, ["job"], "jobs"):
        yield


def job(name: str, annotations: dict | None = None, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"metadata": {"annotations": annotations or {}}, "spec": {
                "restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}


async def job_status(client, namespace: str, name: str) -> dict:
    return (await client.get(client.resource("jobs", "batch"), name, namespace)).get("status") or {}


async def finished(client, namespace: str, name: str, kind: str) -> dict:
    """The Job's status once it has the terminal condition `kind` (Complete or Failed)."""
    async def done():
        status = await job_status(client, namespace, name)
        done = any(c["type"] == kind and c["status"] == "True" for c in status.get("conditions") or ())
        return status if done else None
    return await eventually(done, timeout=60, interval=0.3, message=f"job {name} {kind}")


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status.get("conditions") or ()}


async def job_pods(client, namespace: str, name: str) -> list[dict]:
    return (await client.list(client.resource("pods"), namespace, label_selector=f"job-name={name}"))["items"]


async def running_pods(client, namespace: str, name: str, count: int) -> list[dict]:
    """Once `count` pods of the Job run (and none is pending), those pods, by completion index if any."""
    async def running():
        pods = [p for p in await job_pods(client, namespace, name)
                if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
        return pods if len(pods) == count else None
    pods = await eventually(running, timeout=30, message=f"{count} running pods of {name}")
    return sorted(pods, key=lambda p: int(p["metadata"].get("annotations", {}).get(INDEX, 0)))


async def test_a_fail_job_rule_fails_the_job_at_once(client, namespace, job_controller):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                                              "values": [42]}}]}
    await client.create(client.resource("jobs", "batch"), job(
        "broken", {"sim.kpy.io/exit-after": "0.3", "sim.kpy.io/exit-code": "42"},
        completions=3, parallelism=2, backoffLimit=6, podFailurePolicy=policy), namespace)
    status = await finished(client, namespace, "broken", "Failed")
    by_type = conditions(status)
    assert [c["type"] for c in status["conditions"]] == ["FailureTarget", "Failed"]
    assert by_type["Failed"]["reason"] == by_type["FailureTarget"]["reason"] == "PodFailurePolicy"
    message = by_type["Failed"]["message"]
    assert message == by_type["FailureTarget"]["message"]
    named = re.fullmatch(rf"Container main for pod {namespace}/(broken-\w+) failed with exit code 42 matching "
                         r"FailJob rule at index 0", message)
    pods = await job_pods(client, namespace, "broken")
    assert named and named.group(1) in {p["metadata"]["name"] for p in pods}
    # no replacement; the pod still running when the rule matched was stopped (gone) and counts as failed
    assert len(pods) <= 2 and not status.get("active") and status["terminating"] == 0
    assert status["failed"] == 2 and "completionTime" not in status
    spec = (await client.get(client.resource("jobs", "batch"), "broken", namespace))["spec"]
    assert spec["podReplacementPolicy"] == "Failed"  # defaulted so by the podFailurePolicy
    events = (await client.list(client.resource("events"), namespace))["items"]
    assert any(e["reason"] == "PodFailurePolicy" and e["message"] == message and e["type"] == "Warning"
               for e in events)


async def test_an_ignored_disruption_is_replaced_without_counting(client, namespace, nodes, job_controller):
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}
    await client.create(client.resource("jobs", "batch"), job("tolerant", backoffLimit=0, podFailurePolicy=policy),
                        namespace)
    [first] = await running_pods(client, namespace, "tolerant", 1)
    await nodes.finish(first, 137, DISRUPTED)  # evicted by its kubelet
    [second] = await running_pods(client, namespace, "tolerant", 1)  # after the 10 s pod failure backoff
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert "conditions" not in await job_status(client, namespace, "tolerant")  # backoffLimit 0 not reached
    await nodes.finish(second, 0)
    status = await finished(client, namespace, "tolerant", "Complete")
    assert status["succeeded"] == 1 and not status.get("failed")
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]


async def test_an_index_fails_alone_after_its_backoff_limit_per_index(client, namespace, nodes, job_controller):
    await client.create(client.resource("jobs", "batch"), job(
        "shards", completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=1), namespace)
    zero, one, two = await running_pods(client, namespace, "shards", 3)
    assert {p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] for p in (zero, one, two)} \
        == {"0"}
    await nodes.finish(zero, 0)
    await nodes.finish(one, 1)
    pods = await running_pods(client, namespace, "shards", 2)  # index 1 again after its 10 s backoff
    [again] = [p for p in pods if p["metadata"]["uid"] != two["metadata"]["uid"]]
    assert again["metadata"]["annotations"][INDEX] == "1"
    assert again["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
    await nodes.finish(again, 1)

    async def index_failed():
        status = await job_status(client, namespace, "shards")
        return status if status.get("failedIndexes") == "1" else None
    status = await eventually(index_failed, timeout=30, message="index 1 failed")
    assert "conditions" not in status and status["active"] == 1  # index 2 goes on
    await asyncio.sleep(1)
    assert len(await job_pods(client, namespace, "shards")) == 4  # a failed index is not run again
    await nodes.finish(two, 0)
    status = await finished(client, namespace, "shards", "Failed")
    failed = conditions(status)["Failed"]
    assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
    assert [c["type"] for c in status["conditions"]] == ["FailureTarget", "Failed"]
    assert (status["completedIndexes"], status["failedIndexes"], status["succeeded"], status["failed"]) == (
        "0,2", "1", 2, 2)


async def test_fail_index_beyond_max_failed_indexes_fails_the_job(client, namespace, job_controller):
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}]}
    await client.create(client.resource("jobs", "batch"), job(
        "fragile", {"sim.kpy.io/exit-after": "0.3", "sim.kpy.io/exit-code": "3"}, completionMode="Indexed",
        completions=3, parallelism=3, backoffLimitPerIndex=6, maxFailedIndexes=1, podFailurePolicy=policy),
        namespace)
    status = await finished(client, namespace, "fragile", "Failed")
    failed = conditions(status)["Failed"]
    assert (failed["reason"], failed["message"]) == (
        "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes")
    assert len(parse_indexes(status["failedIndexes"])) >= 2  # more than maxFailedIndexes: "0-1", "0,2", ...
    await asyncio.sleep(1)
    indexes = [p["metadata"]["annotations"][INDEX] for p in await job_pods(client, namespace, "fragile")]
    assert len(indexes) == len(set(indexes))  # FailIndex: no index ran again (a pod still running was stopped)


async def test_a_met_success_policy_completes_the_job_and_stops_the_rest(client, namespace, nodes, job_controller):
    await client.create(client.resource("jobs", "batch"), job(
        "leader", completionMode="Indexed", completions=3, parallelism=3,
        successPolicy={"rules": [{"succeededIndexes": "0"}]}), namespace)
    leader, *workers = await running_pods(client, namespace, "leader", 3)
    await nodes.finish(leader, 0)
    status = await finished(client, namespace, "leader", "Complete")
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    for kind in ("SuccessCriteriaMet", "Complete"):
        assert (conditions(status)[kind]["reason"], conditions(status)[kind]["message"]) == (
            "SuccessPolicy", "Matched rules at index 0")
    assert (status["succeeded"], status["completedIndexes"], status.get("failed")) == (1, "0", None)
    assert status["completionTime"] and not status.get("active") and status["terminating"] == 0
    left = {p["metadata"]["uid"] for p in await job_pods(client, namespace, "leader")}
    assert not left & {w["metadata"]["uid"] for w in workers}  # the other indexes' pods were deleted


INVALID = [
    ({"podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}},
     'spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be '
     'set'),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0, 2]}}]}},
     "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
    ({"backoffLimitPerIndex": 1}, "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"),
    ({"completionMode": "Indexed", "completions": 2, "backoffLimitPerIndex": 1, "maxFailedIndexes": 3},
     "spec.maxFailedIndexes: Invalid value: 3: must be less than or equal to completions"),
    ({"completionMode": "Indexed", "completions": 2, "successPolicy": {"rules": [{"succeededIndexes": "1-2"}]}},
     'spec.successPolicy.rules[0].succeededIndexes: Invalid value: "1-2": error parsing succeededIndexes: too '
     'large index: "2"'),
]


@pytest.mark.parametrize("spec, error", INVALID, ids=lambda value: "" if isinstance(value, str) else
                         "-".join(value))
async def test_bad_policies_are_refused_through_kubectl(client, namespace, kubectl, spec, error):
    bad = job("bad", **spec)
    refused = await asyncio.to_thread(kubectl, "-n", namespace, "create", "-f", "-", input=json.dumps(bad),
                                      check=False)
    assert refused.returncode == 1 and f'The Job "bad" is invalid: {error}' in refused.stderr, refused.stderr
    with pytest.raises(APIError) as raised:
        await client.create(client.resource("jobs", "batch"), bad, namespace)
    assert raised.value.code == 422
    assert error.split(": ", 1)[0] in [cause["field"] for cause in raised.value.details["causes"]]


async def test_policies_are_immutable_and_strictly_decoded_through_kubectl(client, namespace, kubectl):
    good = job("steady", completionMode="Indexed", completions=2, backoffLimitPerIndex=1,
               podFailurePolicy={"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [9]}}]})
    await asyncio.to_thread(kubectl, "-n", namespace, "create", "-f", "-", input=json.dumps(good))
    refused = await asyncio.to_thread(kubectl, "-n", namespace, "patch", "job", "steady", "--type=merge", "-p",
                                      '{"spec":{"backoffLimitPerIndex":2}}', check=False)
    assert refused.returncode == 1
    assert "spec.backoffLimitPerIndex: Invalid value: 2: field is immutable" in refused.stderr, refused.stderr
    changed = await asyncio.to_thread(kubectl, "-n", namespace, "patch", "job", "steady", "--type=merge", "-p",
                                      '{"spec":{"maxFailedIndexes":1}}', check=False)
    assert changed.returncode == 0, changed.stderr  # maxFailedIndexes may change
    misspelt = job("typo", podFailurePolicy={"rules": [{"action": "Ignore", "onExitCode": {
        "operator": "In", "values": [9]}}]})
    refused = await asyncio.to_thread(kubectl, "-n", namespace, "create", "-f", "-", input=json.dumps(misspelt),
                                      check=False)
    assert refused.returncode == 1
    assert 'unknown field "spec.podFailurePolicy.rules[0].onExitCode"' in refused.stderr, refused.stderr


async def test_an_indexed_job_scales_completions_with_parallelism(client, namespace, nodes, job_controller, kubectl):
    await client.create(client.resource("jobs", "batch"), job(
        "elastic", completionMode="Indexed", completions=4, parallelism=4), namespace)
    await running_pods(client, namespace, "elastic", 4)
    refused = await asyncio.to_thread(kubectl, "-n", namespace, "patch", "job", "elastic", "--type=merge", "-p",
                                      '{"spec":{"completions":2}}', check=False)
    assert refused.returncode == 1
    assert "spec.completions: Invalid value: 2: can only be modified in tandem with spec.parallelism" in \
        refused.stderr, refused.stderr
    await asyncio.to_thread(kubectl, "-n", namespace, "patch", "job", "elastic", "--type=merge", "-p",
                            '{"spec":{"completions":2,"parallelism":2}}')

    async def shrunk():
        pods = await job_pods(client, namespace, "elastic")
        return pods if sorted(p["metadata"]["annotations"][INDEX] for p in pods) == ["0", "1"] else None
    for pod in await eventually(shrunk, timeout=30, message="pods of indexes 2 and 3 deleted"):
        await nodes.finish(pod, 0)
    status = await finished(client, namespace, "elastic", "Complete")
    assert (status["succeeded"], status["completedIndexes"]) == (2, "0-1")
