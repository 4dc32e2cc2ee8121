"""A StatefulSet's claims (statefulsetclaims): names, labels, the pod's claim volumes, and the ownerReferences each
retention policy wants (never over another controller's, never over a reference to an older set or pod)."""
from __future__ import annotations

import pytest

from kpy_components.controller_manager.controllers import statefulset as sts_module
from kpy_components.controller_manager.controllers import statefulsetclaims as claims


def stateful_set(replicas: int = 2, when_deleted: str = "Retain", when_scaled: str = "Retain", **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "ns", "uid": "s1"},
            "spec": {"replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                         "containers": [{"name": "db", "image": "db:1"}],
                         "volumes": [{"name": "data", "emptyDir": {}}, {"name": "config", "configMap": {"name": "c"}}]}},
                     "volumeClaimTemplates": [
                         {"metadata": {"name": "data", "labels": {"tier": "disk", "app": "other"}},
                          "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
                         {"metadata": {"name": "logs"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                                 "resources": {"requests": {"storage": "1Gi"}}}}],
                     "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": when_scaled},
                     **spec}}


def pod(ordinal: int, uid: str = "") -> dict:
    return {"metadata": {"name": f"db-{ordinal}", "namespace": "ns", "uid": uid or f"p{ordinal}"}}


def refs_of(wanted: list[dict] | None) -> list[tuple[str, str]] | None:
    return None if wanted is None else [(r["kind"], r["uid"]) for r in wanted]


def test_claims_are_named_and_labelled_as_upstream():
    made = claims.claims_for(stateful_set(), 1)
    assert list(made) == ["data", "logs"]
    assert made["data"]["metadata"] == {"name": "data-db-1", "namespace": "ns", "labels": {"tier": "disk", "app": "db"}}
    assert made["logs"]["metadata"]["labels"] == {"app": "db"}
    assert made["data"]["spec"]["resources"] == {"requests": {"storage": "1Gi"}}


def test_pod_gets_claim_volumes_replacing_same_named_template_volumes():
    made = sts_module.stateful_pod(stateful_set(), 0, "db-rev")
    assert made["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}},
        {"name": "logs", "persistentVolumeClaim": {"claimName": "logs-db-0"}},
        {"name": "config", "configMap": {"name": "c"}}]
    plain = sts_module.stateful_pod(stateful_set(volumeClaimTemplates=[]), 0, "db-rev")
    assert [v["name"] for v in plain["spec"]["volumes"]] == ["data", "config"]


@pytest.mark.parametrize("when_deleted,when_scaled,ordinal,expected", [
    ("Retain", "Retain", 0, []), ("Retain", "Retain", 5, []),
    ("Delete", "Retain", 0, [("StatefulSet", "s1")]), ("Delete", "Retain", 5, [("StatefulSet", "s1")]),
    ("Retain", "Delete", 0, []), ("Retain", "Delete", 5, [("Pod", "p5")]),
    ("Delete", "Delete", 0, [("StatefulSet", "s1")]), ("Delete", "Delete", 5, [("Pod", "p5")]),
])
def test_owner_refs_per_retention_policy(when_deleted, when_scaled, ordinal, expected):
    sts = stateful_set(2, when_deleted, when_scaled)
    claim = claims.claims_for(sts, ordinal)["data"]
    wanted = claims.wanted_owner_refs(claim, sts, pod(ordinal), ordinal)
    assert refs_of(wanted) == (None if not expected else expected)
    if wanted:
        assert all(r["controller"] and r["blockOwnerDeletion"] for r in wanted)
        claim["metadata"]["ownerReferences"] = wanted
        assert claims.wanted_owner_refs(claim, sts, pod(ordinal), ordinal) is None  # settled


def test_policy_change_moves_or_drops_refs():
    sts = stateful_set(2, "Delete", "Delete")
    claim = claims.claims_for(sts, 1)["data"]
    claim["metadata"]["ownerReferences"] = claims.wanted_owner_refs(claim, sts, pod(1), 1)
    scaled = stateful_set(1, "Delete", "Delete")
    assert refs_of(claims.wanted_owner_refs(claim, scaled, pod(1), 1)) == [("Pod", "p1")]
    retained = stateful_set(2, "Retain", "Retain")
    assert claims.wanted_owner_refs(claim, retained, pod(1), 1) == []


def test_claims_of_other_controllers_and_older_owners_are_left_alone():
    sts = stateful_set(2, "Delete", "Delete")
    claim = claims.claims_for(sts, 0)["data"]
    claim["metadata"]["ownerReferences"] = [{"apiVersion": "example.com/v1", "kind": "Backup", "name": "b",
                                             "uid": "b1", "controller": True}]
    assert claims.wanted_owner_refs(claim, sts, pod(0), 0) is None
    claim["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db",
                                             "uid": "an-older-set", "controller": True}]
    assert claims.wanted_owner_refs(claim, sts, pod(0), 0) is None
    claim["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "c1"}]
    assert refs_of(claims.wanted_owner_refs(claim, sts, pod(0), 0)) == [("ConfigMap", "c1"), ("StatefulSet", "s1")]


def test_in_range_follows_ordinals_start():
    sts = stateful_set(2, ordinals={"start": 3})
    assert [o for o in range(7) if claims.in_range(sts, o)] == [3, 4]
