"""kpy-proxy's reading of Services and EndpointSlices: which ports are proxied and which endpoints they use."""
import pytest

from kpy_components.proxy.model import (Endpoint, ServicePortCache, all_service_ports, service_ports, slice_endpoints,
                                        usable)


def svc(name="web", namespace="demo", **spec):
    spec = {"type": "ClusterIP", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


def slice_(*endpoints, name="web", namespace="demo", port_name="http", port=8080, protocol="TCP",
           address_type="IPv4", slice_name=None):
    return {"metadata": {"namespace": namespace, "name": slice_name or f"{name}-x",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": address_type, "ports": [{"name": port_name, "port": port, "protocol": protocol}],
            "endpoints": list(endpoints)}


def ep(ip, node="n1", **conditions):
    return {"addresses": [ip], "nodeName": node, "conditions": conditions}


@pytest.mark.parametrize("spec", [
    {"type": "ExternalName", "externalName": "example.test"},
    {"clusterIP": "None", "clusterIPs": ["None"]},
    {"clusterIP": "", "clusterIPs": []},
    {"clusterIP": "fd00::1", "clusterIPs": ["fd00::1"]},
], ids=["external-name", "headless", "no-cluster-ip", "ipv6-only"])
def test_services_without_an_ipv4_cluster_ip_are_not_proxied(spec):
    assert service_ports(svc(**spec), [slice_(ep("10.244.1.10"))]) == []


def test_a_port_gets_its_fields_and_endpoints():
    [port] = service_ports(svc(), [slice_(ep("10.244.1.10"), ep("10.244.2.10", node="n2"))])
    assert (port.key, port.protocol, port.port, port.cluster_ips, port.node_port) == (
        "demo/web/tcp/http", "tcp", 80, ("10.96.0.20",), 0)
    assert [e.address for e in port.endpoints] == ["10.244.1.10/8080", "10.244.2.10/8080"]
    assert (port.affinity_seconds, port.external_local, port.internal_local, port.has_external) == (0, False, False,
                                                                                                    False)


def test_node_ports_external_ips_and_policies():
    service = svc(type="NodePort", externalTrafficPolicy="Local", internalTrafficPolicy="Local",
                  externalIPs=["192.0.2.7", "not-an-ip"],
                  ports=[{"name": "http", "port": 80, "nodePort": 30080}, {"name": "dns", "port": 53,
                                                                             "protocol": "UDP", "nodePort": 30053}])
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}, {"hostname": "lb.example"}]}}
    tcp, udp = service_ports(service, [])
    assert (tcp.protocol, tcp.node_port, udp.protocol, udp.node_port) == ("tcp", 30080, "udp", 30053)
    assert tcp.external_ips == ("192.0.2.7", "198.51.100.1") and tcp.has_external
    assert tcp.external_local and tcp.internal_local


def test_a_cluster_ip_service_ignores_node_ports_and_the_external_policy():
    [port] = service_ports(svc(externalTrafficPolicy="Local", ports=[{"port": 80, "nodePort": 30080}]), [])
    assert port.node_port == 0 and not port.external_local and port.port_name == ""


def test_session_affinity_timeout_defaults_to_three_hours():
    [default] = service_ports(svc(sessionAffinity="ClientIP"), [])
    [given] = service_ports(svc(sessionAffinity="ClientIP",
                                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}), [])
    [none] = service_ports(svc(sessionAffinity="None", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
                           [])
    assert (default.affinity_seconds, given.affinity_seconds, none.affinity_seconds) == (10800, 60, 0)


def test_unknown_protocols_and_portless_entries_are_skipped():
    ports = service_ports(svc(ports=[{"port": 80, "protocol": "QUIC"}, {"name": "x"}, {"port": 81}]), [])
    assert [(p.port, p.protocol) for p in ports] == [(81, "tcp")]


def test_conditions_default_as_the_api_defines_them():
    [unset] = slice_endpoints([slice_(ep("10.244.1.10"))], "http", "TCP")
    assert (unset.ready, unset.serving, unset.terminating) == (True, True, False)
    [not_ready] = slice_endpoints([slice_(ep("10.244.1.10", ready=False))], "http", "TCP")
    assert (not_ready.ready, not_ready.serving) == (False, False)
    [draining] = slice_endpoints([slice_(ep("10.244.1.10", ready=False, serving=True, terminating=True))],
                                 "http", "TCP")
    assert (draining.ready, draining.serving, draining.terminating) == (False, True, True)


def test_slices_match_by_port_name_and_protocol_and_an_address_counts_once():
    slices = [slice_(ep("10.244.1.10"), ep("10.244.1.11"), slice_name="a"),
              slice_(ep("10.244.1.10"), slice_name="b"),  # listed twice: once
              slice_(ep("10.244.1.12"), port_name="metrics", slice_name="c"),  # another port
              slice_(ep("10.244.1.13"), protocol="UDP", slice_name="d"),  # another protocol
              slice_({"addresses": ["fd00::1"]}, address_type="IPv6", slice_name="e"),
              slice_({"addresses": ["web.example"]}, address_type="FQDN", slice_name="f"),
              slice_({"addresses": []}, slice_name="g")]
    assert [e.ip for e in slice_endpoints(slices, "http", "TCP")] == ["10.244.1.10", "10.244.1.11"]
    assert [e.ip for e in slice_endpoints(slices, "http", "UDP")] == ["10.244.1.13"]


def test_usable_prefers_ready_and_falls_back_to_serving_terminating_endpoints():
    ready = Endpoint("10.244.1.10", 80)
    draining = Endpoint("10.244.1.11", 80, ready=False, serving=True, terminating=True)
    stopped = Endpoint("10.244.1.12", 80, ready=False, serving=False, terminating=True)
    unready = Endpoint("10.244.1.13", 80, ready=False, serving=False)
    assert usable([ready, draining, stopped, unready]) == (ready,)
    assert usable([draining, stopped, unready]) == (draining,)
    assert usable([stopped, unready]) == ()


def test_local_endpoints_are_this_nodes_with_their_own_fallback():
    [port] = service_ports(svc(), [slice_(ep("10.244.1.10", node="n1", ready=False, serving=True, terminating=True),
                                          ep("10.244.2.10", node="n2"))])
    assert [e.ip for e in port.cluster_endpoints()] == ["10.244.2.10"]
    assert [e.ip for e in port.local_endpoints("n1")] == ["10.244.1.10"]
    assert port.local_endpoints("n3") == ()


def test_all_service_ports_pair_slices_by_namespace_and_service_label():
    services = [svc("web"), svc("web", namespace="other"), svc("api")]
    slices = [slice_(ep("10.244.1.10"), name="web"), slice_(ep("10.244.1.20"), name="web", namespace="other"),
              {"metadata": {"namespace": "demo", "name": "orphan"}, "addressType": "IPv4", "endpoints": []}]
    ports = {(p.namespace, p.name): [e.ip for e in p.endpoints] for p in all_service_ports(services, slices)}
    assert ports == {("demo", "web"): ["10.244.1.10"], ("other", "web"): ["10.244.1.20"], ("demo", "api"): []}


def test_the_cache_reuses_ports_only_for_the_very_same_objects():
    cache = ServicePortCache()
    service, own = svc(), slice_(ep("10.244.1.10"))
    first = cache.ports([service], [own])
    assert cache.ports([service], [own])[0] is first[0]
    changed = slice_(ep("10.244.1.11"))  # a new object, as an informer stores an update
    assert [e.ip for e in cache.ports([service], [changed])[0].endpoints] == ["10.244.1.11"]
    assert cache.ports([service], [changed, slice_(ep("10.244.1.12"), slice_name="y")])[0].endpoints[-1].ip == \
        "10.244.1.12"
    assert cache.ports([], []) == [] and cache.ports([service], [])[0].endpoints == ()
