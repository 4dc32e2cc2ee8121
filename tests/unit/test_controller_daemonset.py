"""The DaemonSet controller's decisions (daemonset.plan): which nodes should run a daemon pod (selectors, affinity,
taints against the default daemon tolerations), pods pinned to their node, rolling updates within maxUnavailable,
and the status counts."""
from __future__ import annotations

from kpy_components.controller_manager.controllers import daemonset as ds_module
from kpy_components.controller_manager.controllers import pods as podutil

NOW = 1_700_000_000.0


def daemon_set(**template_spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-1", "generation": 2},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "a", "image": "agent:1"}], **template_spec}}}}


def node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints} if taints else {}}


def daemon_pod(ds: dict, node_name: str, *, ready: bool = True, revision: str | None = None,
               phase: str = "Running", scheduled: bool = True) -> dict:
    pod = ds_module.daemon_pod(ds, node_name, revision or podutil.template_hash(ds["spec"]["template"]))
    pod["metadata"]["name"] = f"agent-{node_name}"
    if scheduled:
        pod["spec"]["nodeName"] = node_name
    pod["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                     "lastTransitionTime": podutil.now_rfc3339(NOW - 60)}]}
    return pod


def test_nodes_are_chosen_by_selector_affinity_and_taints():
    ds = daemon_set(nodeSelector={"role": "edge"})
    assert ds_module.should_run(ds, node("a", {"role": "edge"}))
    assert not ds_module.should_run(ds, node("b", {"role": "core"}))
    plain = daemon_set()
    assert not ds_module.should_run(plain, node("t", taints=[{"key": "dedicated", "value": "db",
                                                               "effect": "NoSchedule"}]))
    assert ds_module.should_run(plain, node("p", taints=[{"key": "slow", "effect": "PreferNoSchedule"}]))
    for default in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        assert ds_module.should_run(plain, node("x", taints=[{"key": default, "effect": "NoExecute"}]))
    assert ds_module.should_run(plain, node("c", taints=[{"key": "node.kubernetes.io/unschedulable",
                                                          "effect": "NoSchedule"}]))
    affine = daemon_set(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]}}})
    assert ds_module.should_run(affine, node("z", {"zone": "z1"}))
    assert not ds_module.should_run(affine, node("y", {"zone": "z2"}))


def test_daemon_pods_are_pinned_and_tolerate_the_defaults():
    pod = ds_module.daemon_pod(daemon_set(hostNetwork=True, tolerations=[{"key": "node.kubernetes.io/not-ready",
                                                                          "operator": "Exists",
                                                                          "effect": "NoExecute",
                                                                          "tolerationSeconds": 5}]), "n1", "h")
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                             "values": ["n1"]}]}]}
    keys = [(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]]
    assert keys.count(("node.kubernetes.io/not-ready", "NoExecute")) == 1  # the pod's own one kept
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") in keys
    assert pod["metadata"]["labels"][ds_module.REVISION_LABEL] == "h"
    assert ds_module.target_node(pod) == "n1"


def test_plan_creates_missing_removes_misplaced_extra_and_failed_pods():
    ds = daemon_set(nodeSelector={"role": "edge"})
    nodes = [node("a", {"role": "edge"}), node("b", {"role": "edge"}), node("c", {"role": "edge"}),
             node("d")]
    extra = daemon_pod(ds, "b")
    extra["metadata"]["name"] = "agent-b-2"
    extra["metadata"]["creationTimestamp"] = "2030-01-01T00:00:00Z"
    pods = [daemon_pod(ds, "b"), extra, daemon_pod(ds, "c", phase="Failed"), daemon_pod(ds, "d"),
            daemon_pod(ds, "gone")]
    create, doomed, status = ds_module.plan(ds, nodes, pods, NOW)
    assert sorted(create) == ["a", "c"]
    assert sorted(p["metadata"]["name"] for p in doomed) == ["agent-b-2", "agent-c", "agent-d", "agent-gone"]
    assert status["desiredNumberScheduled"] == 3 and status["currentNumberScheduled"] == 1
    assert status["numberMisscheduled"] == 1 and status["observedGeneration"] == 2


def test_rolling_update_replaces_at_most_max_unavailable_and_unavailable_old_pods_first():
    ds = daemon_set()
    nodes = [node(name) for name in "abcd"]
    old = [daemon_pod(ds, "a", revision="old"), daemon_pod(ds, "b", revision="old", ready=False),
           daemon_pod(ds, "c", revision="old"), daemon_pod(ds, "d")]
    create, doomed, status = ds_module.plan(ds, nodes, old, NOW)
    assert not create
    assert [p["metadata"]["name"] for p in doomed] == ["agent-b"]  # already unavailable: 1 of 1 used up
    ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "50%"
    _, doomed, status = ds_module.plan(ds, nodes, old, NOW)
    assert [p["metadata"]["name"] for p in doomed] == ["agent-b", "agent-a"]
    assert (status["updatedNumberScheduled"], status["numberAvailable"], status["numberReady"],
            status["numberUnavailable"]) == (1, 3, 3, 1)
    ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert ds_module.plan(ds, nodes, old, NOW)[1] == []
