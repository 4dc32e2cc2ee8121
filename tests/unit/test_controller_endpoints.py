"""Endpoint computation shared by the endpoints and endpoint-slice controllers: which pods, which ports (named
targetPorts per pod), ready/notReady, subsets grouped by port set, slices grouped by port set and family and cut at
100 endpoints."""
import pytest

from kpy_components.controller_manager.controllers.endpoints import subsets
from kpy_components.controller_manager.controllers.endpointslice import MAX_ENDPOINTS, chunks, desired_groups
from kpy_components.controller_manager.controllers.servicepods import find_port, service_labels


def service(ports=None, publish=False, selector=None, **spec) -> dict:
    return {"metadata": {"name": "web", "namespace": "app", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"} if selector is None else selector, "publishNotReadyAddresses": publish,
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "web"}],
                     **spec}}


def pod(name, ip="10.0.0.1", ready=True, port=8080, labels=None, phase="Running", deleting=False, node="n1") -> dict:
    metadata = {"name": name, "namespace": "app", "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata,
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": "web", "containerPort": port}]}]},
            "status": {"phase": phase, "podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]}}


@pytest.mark.parametrize("service_port, expected", [
    ({"port": 80}, 80), ({"port": 80, "targetPort": 9000}, 9000), ({"port": 80, "targetPort": "9001"}, 9001),
    ({"port": 80, "targetPort": "web"}, 8080), ({"port": 80, "targetPort": "web", "protocol": "UDP"}, None),
    ({"port": 80, "targetPort": "nope"}, None)])
def test_find_port(service_port, expected):
    assert find_port(pod("a"), service_port) == expected


def test_ready_and_not_ready_pods_with_the_same_ports_share_a_subset():
    result = subsets(service(), [pod("b", "10.0.0.2", ready=False), pod("a", "10.0.0.1")])
    assert result == [{"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                       "addresses": [{"ip": "10.0.0.1", "nodeName": "n1", "targetRef": {
                           "kind": "Pod", "namespace": "app", "name": "a", "uid": "uid-a"}}],
                       "notReadyAddresses": [{"ip": "10.0.0.2", "nodeName": "n1", "targetRef": {
                           "kind": "Pod", "namespace": "app", "name": "b", "uid": "uid-b"}}]}]


def test_pods_resolving_named_ports_differently_get_their_own_subsets():
    result = subsets(service(), [pod("a", "10.0.0.1", port=8080), pod("b", "10.0.0.2", port=9090)])
    assert [(s["ports"][0]["port"], [a["ip"] for a in s["addresses"]]) for s in result] == \
        [(8080, ["10.0.0.1"]), (9090, ["10.0.0.2"])]


def test_pods_left_out_of_endpoints():
    excluded = [pod("x", labels={"app": "other"}), pod("y", ip=""), pod("z", phase="Succeeded"),
                pod("t", deleting=True), pod("p", port=1)]
    excluded[-1]["spec"]["containers"][0]["ports"][0]["name"] = "other"  # no port named web
    assert subsets(service(), excluded) == []


def test_publish_not_ready_lists_everyone_ready_including_terminating_pods():
    result = subsets(service(publish=True), [pod("a", ready=False), pod("t", "10.0.0.9", deleting=True)])
    assert [a["ip"] for a in result[0]["addresses"]] == ["10.0.0.1", "10.0.0.9"]
    assert "notReadyAddresses" not in result[0]


def test_a_service_without_ports_lists_addresses_only_and_none_without_selector():
    assert subsets(service(ports=[]), [pod("a")]) == [{"addresses": [
        {"ip": "10.0.0.1", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "app", "name": "a",
                                                           "uid": "uid-a"}}]}]
    assert subsets(service(selector={}), [pod("a")]) == []


def test_headless_services_label_what_they_generate():
    assert service_labels(service(clusterIP="None")) == {"tier": "front", "service.kubernetes.io/headless": ""}


def test_slices_keep_terminating_pods_with_their_conditions_and_zones():
    groups = desired_groups(service(), [pod("a"), pod("b", "10.0.0.2", ready=False),
                                        pod("t", "10.0.0.3", deleting=True)], {"n1": "zone-a"})
    [(group, endpoints)] = groups.items()
    assert group[0] == "IPv4"
    assert [(e["targetRef"]["name"], e["conditions"]) for e in endpoints] == [
        ("a", {"ready": True, "serving": True, "terminating": False}),
        ("b", {"ready": False, "serving": False, "terminating": False}),
        ("t", {"ready": False, "serving": True, "terminating": True})]
    assert endpoints[0]["zone"] == "zone-a" and endpoints[0]["nodeName"] == "n1"


def test_slices_group_by_family_and_port_and_cut_at_the_maximum():
    pods = [pod(f"p{i:03}", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(250)] + [pod("v6", "fd00::1")]
    groups = desired_groups(service(), pods, {})
    assert sorted(len(e) for e in groups.values()) == [1, 250]
    assert {g[0] for g in groups} == {"IPv4", "IPv6"}
    parts = chunks(groups[next(g for g in groups if g[0] == "IPv4")])
    assert [len(p) for p in parts] == [MAX_ENDPOINTS, MAX_ENDPOINTS, 50]
    assert chunks([]) == [[]]  # a placeholder slice when nothing backs the service
