"""Which UDP conntrack entries kpy-proxy deletes after a sync, and how it runs conntrack."""

from prometheus_client import CollectorRegistry

from kpy_components.proxy import conntrack_flows
from kpy_components.proxy.config import ProxyConfig
from kpy_components.proxy.metrics import ProxyMetrics
from kpy_components.proxy.model import Endpoint, ServicePort
from kpy_components.proxy.nft import Nft
from kpy_components.proxy.proxier import Proxier, Snapshot

A, B = Endpoint("10.244.1.10", 53, node_name="n1"), Endpoint("10.244.2.10", 53, node_name="n2")


def dns(*endpoints, protocol="udp", **fields) -> ServicePort:
    return ServicePort("kube-system", "kube-dns", "dns", protocol, 53, ("10.96.0.10",), endpoints=endpoints, **fields)


def test_a_removed_udp_endpoint_loses_its_entries():
    assert conntrack_flows.stale_flows([dns(A, B)], [dns(B)], "n1") == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--reply-src", "10.244.1.10"]]


def test_an_unready_endpoint_counts_as_removed_and_node_ports_and_external_ips_are_covered():
    unready = Endpoint("10.244.1.10", 53, ready=False, node_name="n1")
    commands = conntrack_flows.stale_flows([dns(A, B, node_port=30053, external_ips=("192.0.2.7",))],
                                           [dns(unready, B, node_port=30053, external_ips=("192.0.2.7",))], "n1")
    assert commands == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--reply-src", "10.244.1.10"],
        ["-D", "-p", "udp", "--orig-dst", "192.0.2.7", "--orig-port-dst", "53", "--reply-src", "10.244.1.10"],
        ["-D", "-p", "udp", "--orig-port-dst", "30053", "--reply-src", "10.244.1.10"]]


def test_a_port_getting_its_first_endpoints_loses_its_entries():
    assert conntrack_flows.stale_flows([dns()], [dns(A)], "n1") == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"]]


def test_a_removed_service_loses_its_entries_and_tcp_and_unchanged_ports_are_left_alone():
    assert conntrack_flows.stale_flows([dns(A)], [], "n1") == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--reply-src", "10.244.1.10"]]
    assert conntrack_flows.stale_flows([dns(A, B, protocol="tcp")], [dns(B, protocol="tcp")], "n1") == []
    assert conntrack_flows.stale_flows([dns(A, B)], [dns(B, A)], "n1") == []
    assert conntrack_flows.stale_flows([], [dns(A)], "n1") == []  # new: nothing to clear


def test_local_endpoints_of_a_local_policy_count_as_used():
    draining = Endpoint("10.244.1.10", 53, ready=False, serving=True, terminating=True, node_name="n1")
    # Cluster-wide B is ready, so the draining local A is used only through the local chain.
    assert conntrack_flows.stale_flows([dns(draining, B, internal_local=True)], [dns(draining, B,
                                                                                    internal_local=True)], "n1") == []
    assert conntrack_flows.stale_flows([dns(draining, B, internal_local=True)], [dns(B, internal_local=True)],
                                       "n1")[0][-1] == "10.244.1.10"


def test_delete_runs_conntrack_and_tolerates_no_match_and_a_missing_binary(tmp_path, caplog):
    fake = tmp_path / "conntrack"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\n[ \"$3\" = udp ] && exit 1\nexit 2\n")
    fake.chmod(0o755)
    assert conntrack_flows.delete([["-D", "-p", "udp", "--orig-dst", "10.96.0.10"]], str(fake)) == 1
    assert (tmp_path / "calls").read_text() == "-D -p udp --orig-dst 10.96.0.10\n"
    assert "Failed clearing" not in caplog.text  # exit 1: no entry matched
    conntrack_flows.delete([["-D", "-p", "tcp"]], str(fake))
    assert "Failed clearing stale UDP flows args=-D -p tcp" in caplog.text
    assert conntrack_flows.delete([["-D"], ["-D"]], str(tmp_path / "missing")) == 0
    assert "Skipped clearing stale UDP flows" in caplog.text


def test_the_proxier_clears_flows_after_a_sync_that_removed_udp_endpoints():
    cleared = []
    proxier = Proxier(ProxyConfig(), "n1", Nft(lambda argv, stdin: ""), ProxyMetrics(CollectorRegistry()),
                      clear_flows=cleared.append)
    service = {"metadata": {"namespace": "kube-system", "name": "kube-dns"},
               "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}

    def slice_(*ips):
        return {"metadata": {"namespace": "kube-system", "name": "kube-dns-1",
                             "labels": {"kubernetes.io/service-name": "kube-dns"}},
                "addressType": "IPv4", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
                "endpoints": [{"addresses": [ip]} for ip in ips]}
    proxier.sync(Snapshot([service], [slice_("10.244.1.10", "10.244.2.10")], None))
    assert cleared == []  # the first sync knows no earlier state
    proxier.sync(Snapshot([service], [slice_("10.244.2.10")], None))
    assert cleared == [[["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53",
                         "--reply-src", "10.244.1.10"]]]
