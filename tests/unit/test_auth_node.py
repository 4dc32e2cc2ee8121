"""The Node authorizer: a node reads only what its pods reference, its own lease, pods bound to it; static node rules
for the rest; Kubernetes' reasons for what it refuses."""
import pytest

from kpy_components.apiserver.auth.authz import PrivilegedGroups, Union, forbidden
from kpy_components.apiserver.auth.bootstrap import default_policy
from kpy_components.apiserver.auth.node import NodeAuthorizer, NodeGraph, node_name, pod_references
from kpy_components.apiserver.auth.rbac import RBACAuthorizer, RBACIndex
from kpy_components.apiserver.http.context import RequestInfo, User

N1 = User("system:node:n1", ("system:nodes", "system:authenticated"))


def req(verb, resource, namespace="", name="", group="", subresource=""):
    return RequestInfo(verb=verb, path="/x", is_resource_request=True, api_group=group, api_version="v1",
                       resource=resource, subresource=subresource, namespace=namespace, name=name)


def pod(name, node, namespace="app", **spec):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"nodeName": node, **spec}}


WEB = pod("web", "n1", serviceAccountName="web-sa",
          volumes=[{"name": "cert", "secret": {"secretName": "tls"}},
                   {"name": "cfg", "configMap": {"name": "settings"}},
                   {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                   {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
                   {"name": "proj", "projected": {"sources": [{"secret": {"name": "proj-secret"}},
                                                              {"configMap": {"name": "proj-cm"}}]}}],
          imagePullSecrets=[{"name": "registry"}],
          containers=[{"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret"}}},
                                            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm"}}}],
                       "envFrom": [{"secretRef": {"name": "bulk-secret"}}, {"configMapRef": {"name": "bulk-cm"}}]}],
          initContainers=[{"name": "i", "envFrom": [{"secretRef": {"name": "init-secret"}}]}])


@pytest.fixture
def graph():
    graph = NodeGraph()
    graph.replace([WEB, pod("db", "n2", volumes=[{"name": "s", "secret": {"secretName": "db-secret"}}]),
                   pod("pending", "", volumes=[{"name": "s", "secret": {"secretName": "pending-secret"}}])])
    return graph


@pytest.fixture
def node_authorizer(graph):
    return NodeAuthorizer(graph)


def test_node_identity():
    assert node_name(N1) == "n1"
    assert node_name(User("system:node:n1", ("system:authenticated",))) is None
    assert node_name(User("alice", ("system:nodes",))) is None
    assert node_name(User("system:node:", ("system:nodes",))) == ""


def test_pod_references_cover_volumes_env_and_pull_secrets():
    refs = pod_references(WEB)
    secrets = {name for kind, _, name in refs if kind == "secret"}
    configmaps = {name for kind, _, name in refs if kind == "configmap"}
    assert secrets == {"tls", "proj-secret", "registry", "env-secret", "bulk-secret", "init-secret"}
    assert configmaps == {"settings", "proj-cm", "env-cm", "bulk-cm"}
    assert {name for kind, _, name in refs if kind == "pvc"} == {"web-data", "web-scratch"}
    assert ("serviceaccount", "app", "web-sa") in refs


@pytest.mark.parametrize("info", [
    req("get", "secrets", "app", "tls"), req("get", "secrets", "app", "env-secret"),
    req("watch", "secrets", "app", "registry"), req("list", "configmaps", "app", "bulk-cm"),
    req("get", "persistentvolumeclaims", "app", "web-scratch"),
    req("create", "serviceaccounts", "app", "web-sa", subresource="token"),
    req("get", "pods", "app", "web"),
    req("get", "leases", "kube-node-lease", "n1", group="coordination.k8s.io"),
    req("create", "leases", "kube-node-lease", group="coordination.k8s.io"),
    req("list", "nodes"), req("get", "nodes", name="n2"), req("watch", "services"), req("list", "endpoints"),
    req("patch", "nodes", name="n1", subresource="status"), req("update", "pods", "app", "web", subresource="status"),
    req("create", "events", "app"), req("list", "pods"),
])
def test_allowed(node_authorizer, info):
    assert node_authorizer.authorize(N1, info)[0].value == "allow"


@pytest.mark.parametrize("info, reason", [
    (req("get", "secrets", "app", "db-secret"), "no relationship found between node 'n1' and this object"),
    (req("get", "secrets", "app", "pending-secret"), "no relationship found between node 'n1' and this object"),
    (req("get", "secrets", "other", "tls"), "no relationship found between node 'n1' and this object"),
    (req("list", "secrets", "app"), "No Object name found"),
    (req("list", "secrets"), "can only read namespaced object of this type"),
    (req("update", "secrets", "app", "tls"), "can only read resources of this type"),
    (req("get", "pods", "app", "db"), "no relationship found between node 'n1' and this object"),
    (req("list", "persistentvolumeclaims", "app"), "can only get individual resources of this type"),
    (req("get", "serviceaccounts", "app", "web-sa"), "can only create tokens for individual service accounts"),
    (req("create", "serviceaccounts", "app", "default", subresource="token"),
     "no relationship found between node 'n1' and this object"),
    (req("update", "leases", "kube-node-lease", "n2", group="coordination.k8s.io"),
     "can only access node lease with the same name as the requesting node"),
    (req("get", "leases", "kube-system", "n1", group="coordination.k8s.io"),
     'can only access leases in the "kube-node-lease" system namespace'),
    (req("delete", "namespaces", name="app"), ""),
])
def test_refused_with_kubernetes_reasons(node_authorizer, info, reason):
    decision, given = node_authorizer.authorize(N1, info)
    assert decision.value == "no-opinion" and given == reason


def test_non_nodes_get_no_opinion(node_authorizer):
    alice = User("alice", ("system:authenticated",))
    decision, reason = node_authorizer.authorize(alice, req("get", "secrets", "app", "tls"))
    assert decision.value == "no-opinion" and reason == ""


def test_graph_follows_pod_events(graph, node_authorizer):
    moved = pod("web", "n2", volumes=[{"name": "cert", "secret": {"secretName": "tls"}}])
    graph.apply("MODIFIED", moved)
    assert node_authorizer.authorize(N1, req("get", "secrets", "app", "tls"))[0].value == "no-opinion"
    graph.apply("ADDED", pod("web2", "n1", volumes=[{"name": "cert", "secret": {"secretName": "tls"}}]))
    graph.apply("ADDED", pod("web3", "n1", volumes=[{"name": "cert", "secret": {"secretName": "tls"}}]))
    graph.apply("DELETED", pod("web2", "n1"))
    assert node_authorizer.authorize(N1, req("get", "secrets", "app", "tls"))[0].value == "allow"  # web3 still uses it
    graph.apply("DELETED", pod("web3", "n1"))
    assert node_authorizer.authorize(N1, req("get", "secrets", "app", "tls"))[0].value == "no-opinion"


def test_node_denial_through_the_union_reads_as_upstream(node_authorizer):
    union = Union([PrivilegedGroups(), node_authorizer, RBACAuthorizer(RBACIndex())])
    info = req("get", "secrets", "app", "db-secret")
    allowed, reason = union.decide(N1, info)
    assert not allowed
    assert forbidden(N1, info, reason).message == (
        'secrets "db-secret" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in '
        "the namespace \"app\": no relationship found between node 'n1' and this object")


def test_the_empty_system_node_binding_grants_nodes_nothing_through_rbac(node_authorizer):
    index = RBACIndex()
    for obj in default_policy():
        index.apply(obj["kind"].lower() + "s", "ADDED", obj)
    union = Union([node_authorizer, RBACAuthorizer(index)])
    assert not union.decide(N1, req("get", "secrets", "app", "db-secret"))[0]
    assert union.decide(N1, req("get", "secrets", "app", "tls"))[0]


def test_nodes_rules_review_is_incomplete(node_authorizer):
    rules = node_authorizer.rules_for(N1, "app")
    assert rules.incomplete and rules.errors == ["node authorizer does not support user rule resolution"]
