"""The Node authorizer and persistent volumes: a node may get a volume only when a claim one of its pods uses is
bound to it (pod -> claim -> volume, as upstream's graph), kept current by claim events and re-lists."""
from kpy_components.apiserver.auth.authz import Decision
from kpy_components.apiserver.auth.node import NodeAuthorizer, NodeGraph
from kpy_components.apiserver.http.context import RequestInfo, User

N1 = User("system:node:n1", ("system:nodes", "system:authenticated"))
N2 = User("system:node:n2", ("system:nodes", "system:authenticated"))


def req(verb: str, name: str = "pv-web", subresource: str = "") -> RequestInfo:
    return RequestInfo(verb=verb, path="/x", is_resource_request=True, api_group="", api_version="v1",
                       resource="persistentvolumes", subresource=subresource, namespace="", name=name)


def claim(name: str, volume: str = "") -> dict:
    return {"metadata": {"name": name, "namespace": "app"}, "spec": {"volumeName": volume} if volume else {}}


def authorizer() -> tuple[NodeAuthorizer, NodeGraph]:
    graph = NodeGraph()
    graph.replace([{"metadata": {"name": "web", "namespace": "app"}, "spec": {
        "nodeName": "n1", "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "web-data"}}]}}])
    graph.replace_claims([claim("web-data", "pv-web"), claim("other", "pv-other")])
    return NodeAuthorizer(graph), graph


def test_node_gets_only_volumes_of_its_pods_claims():
    nodes, _ = authorizer()
    assert nodes.authorize(N1, req("get")) == (Decision.ALLOW, "")
    assert nodes.authorize(N1, req("get", "pv-other")) == (
        Decision.NO_OPINION, "no relationship found between node 'n1' and this object")
    assert nodes.authorize(N2, req("get"))[0] == Decision.NO_OPINION
    assert nodes.authorize(N1, req("list", "")) == (Decision.NO_OPINION,
                                                    "can only get individual resources of this type")
    assert nodes.authorize(N1, req("get", subresource="status")) == (Decision.NO_OPINION, "cannot get subresource")


def test_claim_events_move_the_relationship():
    nodes, graph = authorizer()
    graph.apply_claim("MODIFIED", claim("web-data", "pv-new"))
    assert nodes.authorize(N1, req("get", "pv-new")) == (Decision.ALLOW, "")
    assert nodes.authorize(N1, req("get"))[0] == Decision.NO_OPINION
    graph.apply_claim("DELETED", claim("web-data", "pv-new"))
    assert nodes.authorize(N1, req("get", "pv-new"))[0] == Decision.NO_OPINION
