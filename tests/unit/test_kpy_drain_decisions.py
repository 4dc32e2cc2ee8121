"""The kpy_drain module's decisions - which pods of a node it evicts, leaves or refuses - on plain pod dicts, in
`kubectl drain`'s order and words. The API calls are exercised against a real API server in
tests/integration/test_kpy_drain.py."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("kpy_drain", REPO / "library/kpy_drain.py")
kpy_drain = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kpy_drain)

DEFAULTS = {"ignore_daemonsets": True, "delete_emptydir_data": False, "force": False}


def pod(name, owner=None, phase="Running", empty_dir=False, mirror=False):
    metadata = {"name": name, "namespace": "app"}
    if owner:
        kind, owner_name = owner
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": owner_name,
                                        "uid": "u", "controller": True}]
    if mirror:
        metadata["annotations"] = {kpy_drain.MIRROR_ANNOTATION: "hash"}
    spec = {"nodeName": "n1", "volumes": [{"name": "v", "emptyDir": {}}] if empty_dir else []}
    return {"metadata": metadata, "spec": spec, "status": {"phase": phase}}


def decide(subject, daemonsets=("agent",), **options):
    asked = []

    def exists(namespace, name):
        asked.append(f"{namespace}/{name}")
        return name in daemonsets
    return kpy_drain.decide(subject, exists, **{**DEFAULTS, **options}), asked


REPLICASET = ("ReplicaSet", "web-5d9c7")
DAEMONSET = ("DaemonSet", "agent")


@pytest.mark.parametrize("subject, options, expected", [
    (pod("web", REPLICASET), {}, ("evict", "")),
    (pod("agent", DAEMONSET), {}, ("skip", "managed by DaemonSet agent")),
    (pod("agent", DAEMONSET), {"ignore_daemonsets": False},
     ("refuse", "managed by DaemonSet agent (ignore_daemonsets: true leaves it)")),
    (pod("agent", DAEMONSET, empty_dir=True), {}, ("skip", "managed by DaemonSet agent")),
    (pod("etcd-n1", ("Node", "n1"), mirror=True), {}, ("skip", "mirror pod of a static pod")),
    (pod("etcd-n1", mirror=True), {}, ("skip", "mirror pod of a static pod")),
    (pod("cache", REPLICASET, empty_dir=True), {},
     ("refuse", "has emptyDir data (delete_emptydir_data: true deletes it)")),
    (pod("cache", REPLICASET, empty_dir=True), {"delete_emptydir_data": True}, ("evict", "")),
    (pod("bare"), {}, ("refuse", "no controller manages it (force: true evicts it)")),
    (pod("bare"), {"force": True}, ("evict", "")),
    (pod("bare", empty_dir=True), {"force": True},
     ("refuse", "has emptyDir data (delete_emptydir_data: true deletes it)")),
    (pod("bare", empty_dir=True), {"delete_emptydir_data": True},
     ("refuse", "no controller manages it (force: true evicts it)")),
    (pod("done", phase="Succeeded", empty_dir=True), {}, ("evict", "")),
    (pod("failed-agent", DAEMONSET, phase="Failed"), {"ignore_daemonsets": False}, ("evict", "")),
], ids=["replicaset", "daemonset-left", "daemonset-refused", "daemonset-before-emptydir", "mirror", "mirror-bare",
        "emptydir-refused", "emptydir-allowed", "unmanaged-refused", "unmanaged-forced", "force-is-not-emptydir",
        "emptydir-is-not-force", "finished-bare-with-emptydir", "finished-daemonset-pod"])
def test_each_pod_is_evicted_left_or_refused_as_kubectl_drain_decides(subject, options, expected):
    assert decide(subject, **options)[0] == expected


def test_only_the_daemonset_of_a_running_pod_is_looked_up():
    assert decide(pod("agent", DAEMONSET))[1] == ["app/agent"]
    assert decide(pod("web", REPLICASET))[1] == []
    assert decide(pod("old-agent", DAEMONSET, phase="Succeeded"))[1] == []


def test_a_pod_of_a_deleted_daemonset_is_refused_unless_forced():
    orphan = pod("agent", ("DaemonSet", "gone"))
    assert decide(orphan)[0] == ("refuse", "its DaemonSet gone is gone (force: true evicts it)")
    assert decide(orphan, force=True)[0] == ("evict", "")
    assert decide(pod("agent", ("DaemonSet", "gone"), empty_dir=True), force=True)[0][0] == "refuse"


def test_plan_sorts_the_node_and_names_every_refused_pod():
    pods = [pod("web", REPLICASET), pod("agent", DAEMONSET), pod("bare"), pod("cache", REPLICASET, empty_dir=True)]
    sorted_pods = kpy_drain.plan(pods, lambda namespace, name: True, **DEFAULTS)
    assert [p["metadata"]["name"] for p in sorted_pods["evict"]] == ["web"]
    assert sorted_pods["skip"] == [{"pod": "app/agent", "reason": "managed by DaemonSet agent"}]
    assert sorted_pods["refuse"] == [
        {"pod": "app/bare", "reason": "no controller manages it (force: true evicts it)"},
        {"pod": "app/cache", "reason": "has emptyDir data (delete_emptydir_data: true deletes it)"}]
    assert kpy_drain.refusal(sorted_pods["refuse"], "n1") == (
        "cannot drain node n1: app/bare no controller manages it (force: true evicts it); app/cache has emptyDir "
        "data (delete_emptydir_data: true deletes it)")


def test_an_owner_reference_that_is_not_the_controller_does_not_count():
    subject = pod("adopted")
    subject["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u"}]
    assert decide(subject)[0] == ("refuse", "no controller manages it (force: true evicts it)")


def test_api_messages_carry_the_budget_cause():
    error = kpy_drain.ApiException(status=429, reason="Too Many Requests")
    error.body = ('{"kind": "Status", "message": "Cannot evict pod as it would violate the pod\'s disruption budget.",'
                  ' "details": {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web needs'
                  ' 1 healthy pods and has 1 currently"}]}}')
    assert kpy_drain.api_message(error) == ("Cannot evict pod as it would violate the pod's disruption budget. "
                                            "The disruption budget web needs 1 healthy pods and has 1 currently")
    error.body = "<html>bad gateway</html>"
    assert kpy_drain.api_message(error) == "HTTP 429 Too Many Requests"
