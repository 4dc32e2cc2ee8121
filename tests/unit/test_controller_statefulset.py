"""The StatefulSet controller's decisions (statefulset.plan): ordered creation waiting for Running and Ready,
Parallel, reverse-ordered scale down one at a time, the rolling update from the highest ordinal down to the
partition, and the revisions in status."""
from __future__ import annotations

from kpy_components.controller_manager.controllers import statefulset as sts_module

NOW = 1_700_000_000.0


def stateful_set(replicas: int = 3, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns", "uid": "sts-1", "generation": 4},
            "spec": {"replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "podManagementPolicy": "OrderedReady",
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                     "template": {"metadata": {"labels": {"app": "db"}},
                                  "spec": {"containers": [{"name": "db", "image": "db:1"}]}}, **spec}}


def pod(sts: dict, ordinal: int, *, healthy: bool = True, revision: str | None = None, phase: str = "Running",
        terminating: bool = False) -> dict:
    made = sts_module.stateful_pod(sts, ordinal, revision or sts_module.update_revision(sts))
    made["status"] = {"phase": phase if healthy else "Pending",
                      "conditions": [{"type": "Ready", "status": "True" if healthy else "False"}]}
    if terminating:
        made["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return made


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_pods_have_stable_names_hostnames_and_labels():
    sts = stateful_set()
    made = sts_module.stateful_pod(sts, 2, "db-abc")
    assert made["metadata"]["name"] == "db-2" and "generateName" not in made["metadata"]
    assert (made["spec"]["hostname"], made["spec"]["subdomain"]) == ("db-2", "db")
    assert made["metadata"]["labels"] == {"app": "db", "controller-revision-hash": "db-abc",
                                          "statefulset.kubernetes.io/pod-name": "db-2",
                                          "apps.kubernetes.io/pod-index": "2"}
    assert sts_module.ordinal_of(sts, made) == 2
    assert sts_module.ordinal_of(sts, {"metadata": {"name": "db-x"}}) is None


def test_ordered_ready_creates_one_at_a_time_after_the_previous_is_ready():
    sts = stateful_set()
    assert sts_module.plan(sts, [])[0] == [0]
    assert sts_module.plan(sts, [pod(sts, 0, healthy=False)])[0] == []
    assert sts_module.plan(sts, [pod(sts, 0)])[0] == [1]
    parallel = stateful_set(podManagementPolicy="Parallel")
    assert sts_module.plan(parallel, [])[0] == [0, 1, 2]


def test_failed_pods_are_deleted_to_be_recreated():
    sts = stateful_set()
    create, delete, _ = sts_module.plan(sts, [pod(sts, 0), pod(sts, 1, phase="Failed"), pod(sts, 2)])
    assert create == [] and names(delete) == ["db-1"]


def test_scale_down_removes_the_highest_ordinal_first_one_at_a_time():
    sts = stateful_set(replicas=1)
    pods = [pod(sts, 0), pod(sts, 1), pod(sts, 2)]
    assert names(sts_module.plan(sts, pods)[1]) == ["db-2"]
    pods[2] = pod(sts, 2, terminating=True)
    assert sts_module.plan(sts, pods)[1] == []  # waits until db-2 is gone
    assert names(sts_module.plan(stateful_set(replicas=1, podManagementPolicy="Parallel"), pods)[1]) == ["db-1"]


def test_rolling_update_goes_from_the_highest_ordinal_down_to_the_partition():
    sts = stateful_set()
    old = [pod(sts, n, revision="db-old") for n in range(3)]
    assert names(sts_module.plan(sts, old)[1]) == ["db-2"]
    mixed = [old[0], old[1], pod(sts, 2)]
    assert names(sts_module.plan(sts, mixed)[1]) == ["db-1"]
    unhealthy = [old[0], pod(sts, 1, healthy=False), pod(sts, 2)]
    assert sts_module.plan(sts, unhealthy)[1] == []  # one at a time, each Ready first
    partitioned = stateful_set(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert sts_module.plan(partitioned, [old[0], old[1], pod(partitioned, 2)])[1] == []
    assert sts_module.plan(stateful_set(updateStrategy={"type": "OnDelete"}), old)[1] == []


def test_status_revisions_follow_the_rollout():
    sts = stateful_set()
    sts["status"] = {"currentRevision": "db-old"}
    _, _, status = sts_module.plan(sts, [pod(sts, 0, revision="db-old"), pod(sts, 1), pod(sts, 2)], NOW)
    assert status["currentRevision"] == "db-old" and status["updateRevision"] == sts_module.update_revision(sts)
    assert (status["replicas"], status["readyReplicas"], status["currentReplicas"], status["updatedReplicas"],
            status["observedGeneration"]) == (3, 3, 1, 2, 4)
    _, _, status = sts_module.plan(sts, [pod(sts, n) for n in range(3)], NOW)
    assert status["currentRevision"] == status["updateRevision"] and status["currentReplicas"] == 3
