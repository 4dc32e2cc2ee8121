"""The ReplicaSet controller's pure parts and the pod helpers every workload controller shares
(controllers/pods.py): Kubernetes' deletion ranking, availability after minReadySeconds, int-or-percent rounding,
pod-template-hash, pods from templates, claiming by selector, expectations, and the ReplicaSet's status."""
from __future__ import annotations

import asyncio

import pytest

from kpy_components.controller_manager.controllers import pods as podutil
from kpy_components.controller_manager.controllers.replicaset import replica_set_status

NOW = 1_700_000_000.0
OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-1", "generation": 3},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True, ready_at: float = NOW - 100,
        created: str = "2024-01-01T00:00:00Z", restarts: int = 0, labels: dict | None = None,
        owner: dict | None = None) -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": podutil.now_rfc3339(ready_at)}]
    metadata = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": created,
                "labels": {"app": "web", "tier": "front"} if labels is None else labels}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {"metadata": metadata, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


# --- deletion order ------------------------------------------------------------------------------------------------

def test_deletion_order_unscheduled_pending_not_ready_then_newer_first():
    pods = [pod("ready-old", created="2024-01-01T00:00:00Z"),
            pod("ready-new", created="2024-01-02T00:00:00Z", ready_at=NOW - 100),
            pod("not-ready", ready=False),
            pod("pending", phase="Pending", ready=False),
            pod("unscheduled", node="", phase="Pending", ready=False)]
    order = [p["metadata"]["name"] for p in podutil.pods_to_delete(pods, 5)]
    assert order == ["unscheduled", "pending", "not-ready", "ready-new", "ready-old"]


def test_deletion_order_prefers_crowded_nodes_shorter_readiness_and_restarts():
    crowded = [pod("a", node="busy"), pod("b", node="busy")]
    alone = pod("c", node="quiet")
    assert podutil.pods_to_delete([alone, *crowded], 1)[0]["metadata"]["name"] in ("a", "b")
    recently_ready = pod("recent", ready_at=NOW - 5)
    long_ready = pod("long", ready_at=NOW - 500)
    assert podutil.pods_to_delete([long_ready, recently_ready], 1)[0]["metadata"]["name"] == "recent"
    restarting = pod("restarting", restarts=4, ready_at=NOW - 500)
    assert podutil.pods_to_delete([long_ready, restarting], 1)[0]["metadata"]["name"] == "restarting"
    assert podutil.pods_to_delete([long_ready], 0) == []


# --- readiness, availability, int-or-percent -----------------------------------------------------------------------

def test_available_only_after_min_ready_seconds():
    fresh = pod("p", ready_at=NOW - 5)
    assert podutil.is_available(fresh, 0, NOW)
    assert not podutil.is_available(fresh, 10, NOW)
    assert podutil.seconds_until_available(fresh, 10, NOW) == pytest.approx(5)
    assert podutil.is_available(fresh, 10, NOW + 6)
    assert not podutil.is_available(pod("q", ready=False), 0, NOW)


@pytest.mark.parametrize("value,total,round_up,expected", [
    (3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("0%", 10, True, 0), ("100%", 7, False, 7),
    ("33%", 3, False, 0), ("4", 10, False, 4)])
def test_scaled_value(value, total, round_up, expected):
    assert podutil.scaled_value(value, total, round_up) == expected


@pytest.mark.parametrize("value", ["x%", "-1", True, "2.5"])
def test_scaled_value_refuses_what_is_neither_int_nor_percent(value):
    with pytest.raises(podutil.IntOrPercentError, match="is not an integer or a percentage"):
        podutil.scaled_value(value, 10, True)


# --- templates -----------------------------------------------------------------------------------------------------

def test_template_hash_is_stable_safe_and_ignores_null_metadata():
    template = OWNER["spec"]["template"]
    first = podutil.template_hash(template)
    assert first == podutil.template_hash({**template, "metadata": {**template["metadata"],
                                                                    "creationTimestamp": None}})
    assert set(first) <= set(podutil.SAFE_ALPHABET)
    assert podutil.template_hash(template, 1) != first
    changed = {**template, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert podutil.template_hash(changed) != first


def test_templates_compare_without_the_hash_label():
    template = OWNER["spec"]["template"]
    labelled = {**template, "metadata": {"labels": {**template["metadata"]["labels"],
                                                    podutil.POD_TEMPLATE_HASH: "abc"}}}
    assert podutil.template_without_hash(labelled) == podutil.template_without_hash(template)


def test_pod_from_template_carries_labels_spec_and_controller_reference():
    created = podutil.pod_from_template(OWNER["spec"]["template"], OWNER, labels={"extra": "1"})
    assert created["metadata"]["generateName"] == "web-abc-"
    assert created["metadata"]["labels"] == {"app": "web", "tier": "front", "extra": "1"}
    assert created["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                       "name": "web-abc", "uid": "rs-1", "controller": True,
                                                       "blockOwnerDeletion": True}]
    assert created["spec"] == OWNER["spec"]["template"]["spec"]
    assert created["spec"] is not OWNER["spec"]["template"]["spec"]
    assert podutil.pod_from_template(OWNER["spec"]["template"], OWNER, name="web-0")["metadata"]["name"] == "web-0"


# --- claiming ------------------------------------------------------------------------------------------------------

def test_claim_adopts_orphans_releases_strays_and_leaves_others_alone():
    ours = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-1", "controller": True}
    theirs = {**ours, "name": "other", "uid": "rs-2"}
    candidates = [pod("orphan"), pod("orphan-mismatch", labels={"app": "db"}), pod("owned", owner=ours),
                  pod("stray", labels={"app": "db"}, owner=ours), pod("foreign", owner=theirs)]
    patches = {}

    async def patch(child, body):  # stands in for the API's PATCH
        patches[child["metadata"]["name"]] = body

    claimed = asyncio.run(podutil.claim(OWNER, candidates, patch))
    assert [p["metadata"]["name"] for p in claimed] == ["orphan", "owned"]
    assert patches["orphan"]["metadata"]["ownerReferences"][0]["uid"] == "rs-1"
    assert patches["stray"]["metadata"]["ownerReferences"] == []
    assert set(patches) == {"orphan", "stray"}


# --- expectations --------------------------------------------------------------------------------------------------

def test_expectations_hold_until_the_cache_shows_every_write():
    expectations = podutil.Expectations()
    assert expectations.satisfied("ns/web")
    expectations.expect_creations("ns/web", 2)
    assert not expectations.satisfied("ns/web")
    expectations.creation_observed("ns/web")
    assert not expectations.satisfied("ns/web")
    expectations.creation_observed("ns/web")
    assert expectations.satisfied("ns/web")
    expectations.expect_deletions("ns/web", ["ns/a", "ns/b"])
    expectations.deletion_observed("ns/web", "ns/a")
    assert not expectations.satisfied("ns/web")
    expectations.deletion_observed("ns/web", "ns/b")
    assert expectations.satisfied("ns/web")


def test_expectations_expire():
    expectations = podutil.Expectations(timeout=0.0)
    expectations.expect_creations("ns/web", 5)
    assert expectations.satisfied("ns/web")


# --- status --------------------------------------------------------------------------------------------------------

def test_replica_set_status_counts():
    active = [pod("a"), pod("b", ready_at=NOW - 1), pod("c", ready=False), pod("d", labels={"app": "web"})]
    rs = {**OWNER, "spec": {**OWNER["spec"], "minReadySeconds": 10}}
    status = replica_set_status(rs, active, now=NOW)
    assert status == {"replicas": 4, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 2,
                      "observedGeneration": 3}


def test_replica_set_status_reports_and_clears_failed_creates():
    failing = replica_set_status(OWNER, [], "pods \"web-abc-x\" is forbidden: exceeded quota", now=NOW)
    condition = podutil.condition({"status": failing}, "ReplicaFailure")
    assert condition["reason"] == "FailedCreate" and "exceeded quota" in condition["message"]
    recovered = replica_set_status({**OWNER, "status": failing}, [pod("a"), pod("b"), pod("c")], now=NOW)
    assert "conditions" not in recovered
