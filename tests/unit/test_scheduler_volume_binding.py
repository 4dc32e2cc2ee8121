"""VolumeBinding: claims must exist, not be terminating and be bound; bound local volumes' node affinity filters
nodes; reasons worded as kube-scheduler's; pods without claims skip the plugin."""
from __future__ import annotations

from kpy_components.scheduler import messages
from kpy_components.scheduler.cache import NodeInfo
from kpy_components.scheduler.framework import SKIP, SUCCESS, UNSCHEDULABLE_AND_UNRESOLVABLE
from kpy_components.scheduler.plugins.volume_binding import VolumeBinding
from kpy_components.scheduler.podinfo import PodInfo


def pod(*claims: str) -> PodInfo:
    return PodInfo.of({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "containers": [{"name": "c", "image": "x"}],
        "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
        + [{"name": "scratch", "emptyDir": {}}]}})


def node(name: str) -> NodeInfo:
    return NodeInfo({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                     "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})


def plugin(claims: dict, volumes: dict, classes: dict | None = None) -> VolumeBinding:
    made = VolumeBinding()
    made.use_stores({f"ns/{k}": v for k, v in claims.items()}, volumes, classes or {})
    return made


def claim(volume: str = "", cls: str = "", terminating: bool = False) -> dict:
    metadata = {"deletionTimestamp": "2024-01-01T00:00:00Z"} if terminating else {}
    return {"metadata": metadata, "spec": {"volumeName": volume, "storageClassName": cls}}


LOCAL = {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}}


def run(made: VolumeBinding, info: PodInfo, nodes: list[NodeInfo]):
    state = {}
    status = made.pre_filter(state, info, nodes)
    return status, {n.name: made.filter(state, info, n) for n in nodes} if status.code == SUCCESS else None


def test_pods_without_claims_and_unwired_plugins_skip():
    assert VolumeBinding().pre_filter({}, pod("data"), []).code == SKIP
    assert plugin({}, {}).pre_filter({}, pod(), []).code == SKIP
    assert plugin({"data": claim("pv1")}, {"pv1": {"spec": {}}}).pre_filter({}, pod("data"), []).code == SKIP


def test_missing_terminating_and_unbound_claims_are_unresolvable():
    for claims, reason in (({}, 'persistentvolumeclaim "data" not found'),
                           ({"data": claim("pv1", terminating=True)}, 'persistentvolumeclaim "data" is being deleted'),
                           ({"data": claim()}, "pod has unbound immediate PersistentVolumeClaims")):
        status = plugin(claims, {"pv1": {}}).pre_filter({}, pod("data"), [])
        assert (status.code, status.message) == (UNSCHEDULABLE_AND_UNRESOLVABLE, reason)
    status = plugin({}, {}).pre_filter({}, pod("data"), [])
    assert messages.fit_error(2, {}, status).startswith(
        '0/2 nodes are available: persistentvolumeclaim "data" not found.')


def test_local_volume_node_affinity_filters_nodes():
    status, filtered = run(plugin({"data": claim("local")}, {"local": LOCAL}), pod("data"), [node("n1"), node("n2")])
    assert status.code == SUCCESS and filtered["n1"] is None
    assert (filtered["n2"].code, filtered["n2"].message) == (UNSCHEDULABLE_AND_UNRESOLVABLE,
                                                             "node(s) had volume node affinity conflict")


def test_missing_volume_and_wait_for_first_consumer_reject_every_node():
    _, filtered = run(plugin({"data": claim("gone")}, {}), pod("data"), [node("n1")])
    assert filtered["n1"].message == "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
    classes = {"late": {"volumeBindingMode": "WaitForFirstConsumer"}}
    _, filtered = run(plugin({"data": claim(cls="late")}, {}, classes), pod("data"), [node("n1")])
    assert filtered["n1"].message == "node(s) didn't find available persistent volumes to bind"
    beta = claim()  # the beta annotation names the class as spec.storageClassName does
    beta["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "late"}
    _, filtered = run(plugin({"data": beta}, {}, classes), pod("data"), [node("n1")])
    assert filtered["n1"].message == "node(s) didn't find available persistent volumes to bind"
