"""NodeRestriction: a node may modify only its own Node (never its taints or restricted labels), only mirror pods
and pods bound to it, tokens only for its pods, only its own lease; other users are untouched."""
import pytest
from test_admission_chain import ALICE, api, pod, request  # noqa: F401

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.node_restriction import NodeRestriction, forbidden_labels
from kpy_components.apiserver.http.context import User

pytestmark = pytest.mark.anyio
N1 = User("system:node:n1", ("system:nodes", "system:authenticated"))


def node(name="n1", labels=None, taints=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def mirror_pod(node_name="n1", **changes):
    obj = pod("static-web", nodeName=node_name)
    obj["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    obj["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": "u",
                                           "controller": True}]
    obj["spec"].update(changes)
    return obj


async def _check(api, operation, info, obj=None, old=None, user=N1):
    await AdmissionChain([], [NodeRestriction(api)]).admit(operation, info, obj, old, user)


async def _refused(api, operation, info, obj=None, old=None) -> str:
    with pytest.raises(APIError) as caught:
        await _check(api, operation, info, obj, old)
    assert caught.value.code == 403
    return caught.value.message


@pytest.fixture
async def bound_pods(api):
    for name, node_name in (("mine", "n1"), ("theirs", "n2")):
        await api.create("", "pods", "app", pod(name, nodeName=node_name))


def test_restricted_labels():
    assert forbidden_labels({"node-restriction.kubernetes.io/pool", "foo.node-restriction.kubernetes.io/x",
                             "kubernetes.io/hostname", "node.kubernetes.io/instance-type", "example.com/rack",
                             "node-role.kubernetes.io/control-plane", "kubelet.kubernetes.io/x", "plain"}) == [
        "foo.node-restriction.kubernetes.io/x", "node-restriction.kubernetes.io/pool",
        "node-role.kubernetes.io/control-plane"]


async def test_own_node_registration_and_status_updates(api):
    await _check(api, "CREATE", request("create", "nodes"), node(labels={"kubernetes.io/hostname": "n1"},
                                                                  taints=[{"key": "k", "effect": "NoSchedule"}]))
    await _check(api, "UPDATE", request("update", "nodes", name="n1", subresource="status"), node(), node())


async def test_other_nodes_taints_and_labels_are_refused(api):
    assert await _refused(api, "UPDATE", request("patch", "nodes", name="n2"), node("n2"), node("n2")) == (
        'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"')
    assert await _refused(api, "UPDATE", request("patch", "nodes", name="n1"),
                          node(taints=[{"key": "k", "effect": "NoSchedule"}]), node()) == (
        'nodes "n1" is forbidden: node "n1" is not allowed to modify taints')
    assert await _refused(api, "UPDATE", request("patch", "nodes", name="n1"),
                          node(labels={"node-restriction.kubernetes.io/pool": "gpu"}), node()) == (
        'nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool')
    assert await _refused(api, "CREATE", request("create", "nodes"),
                          node(labels={"node-role.kubernetes.io/master": ""})) == (
        'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
        "node-role.kubernetes.io/master")
    await _check(api, "UPDATE", request("patch", "nodes", name="n1"), node(labels={"example.com/rack": "r1"}),
                 node())


async def test_mirror_pods_only(api):
    await _check(api, "CREATE", request("create", "pods", "app"), mirror_pod())
    plain = pod(nodeName="n1")
    assert await _refused(api, "CREATE", request("create", "pods", "app"), plain) == (
        'pods "web" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only '
        "create mirror pods")
    assert "can only create pods with spec.nodeName set to itself" in await _refused(
        api, "CREATE", request("create", "pods", "app"), mirror_pod("n2"))
    assert "can not create pods that reference secrets" in await _refused(
        api, "CREATE", request("create", "pods", "app"),
        mirror_pod(volumes=[{"name": "s", "secret": {"secretName": "token"}}]))
    assert "can not create pods that reference a service account" in await _refused(
        api, "CREATE", request("create", "pods", "app"), mirror_pod(serviceAccountName="default"))
    unowned = mirror_pod()
    del unowned["metadata"]["ownerReferences"]
    assert "can only create pods with an owner reference set to itself" in await _refused(
        api, "CREATE", request("create", "pods", "app"), unowned)


async def test_pods_bound_elsewhere_cannot_be_touched(api, bound_pods):
    mine, theirs = await api.get("", "pods", "app", "mine"), await api.get("", "pods", "app", "theirs")
    await _check(api, "DELETE", request("delete", "pods", "app", "mine"), None, mine)
    await _check(api, "UPDATE", request("patch", "pods", "app", "mine", subresource="status"), mine, mine)
    await _check(api, "CREATE", request("create", "pods", "app", "mine", subresource="eviction"),
                 {"metadata": {"name": "mine"}})
    assert await _refused(api, "DELETE", request("delete", "pods", "app", "theirs"), None, theirs) == (
        'pods "theirs" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself')
    assert "can only update pod status for pods with spec.nodeName set to itself" in await _refused(
        api, "UPDATE", request("patch", "pods", "app", "theirs", subresource="status"), theirs, theirs)
    assert "can only evict pods with spec.nodeName set to itself" in await _refused(
        api, "CREATE", request("create", "pods", "app", "theirs", subresource="eviction"),
        {"metadata": {"name": "theirs"}})
    assert 'unexpected operation "UPDATE", node "n1" can only create and delete mirror pods' in await _refused(
        api, "UPDATE", request("update", "pods", "app", "mine"), mine, mine)


async def test_tokens_only_for_pods_on_the_node(api, bound_pods):
    def token_request(pod_name):
        return {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod_name}}}
    info = request("create", "serviceaccounts", "app", "default", subresource="token")
    await _check(api, "CREATE", info, token_request("mine"))
    assert "node requested token bound to a pod scheduled on a different node" in await _refused(
        api, "CREATE", info, token_request("theirs"))
    assert "node requested token not bound to a pod" in await _refused(api, "CREATE", info, {"spec": {}})


async def test_only_its_own_lease(api):
    lease = {"metadata": {"name": "n1", "namespace": "kube-node-lease"}}
    await _check(api, "CREATE", request("create", "leases", "kube-node-lease", group="coordination.k8s.io"), lease)
    assert "can only access node lease with the same name as the requesting node" in await _refused(
        api, "UPDATE", request("update", "leases", "kube-node-lease", "n2", group="coordination.k8s.io"),
        {"metadata": {"name": "n2"}}, {"metadata": {"name": "n2"}})


async def test_other_users_are_not_restricted(api):
    await _check(api, "UPDATE", request("patch", "nodes", name="n2"), node("n2", taints=[{"key": "k"}]),
                 node("n2"), user=ALICE)
    await _check(api, "CREATE", request("create", "pods", "app"), pod(), user=ALICE)
