"""The cluster_dns role's filters: API paths of its objects, and which objects must be applied (missing, or live
ones lacking a wanted field; fields the server adds do not count)."""
import importlib.util
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cluster_dns_filters",
                                               REPO / "roles/cluster_dns/filter_plugins/cluster_dns.py")
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
           "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}


def test_paths():
    assert filters.cluster_dns_path(SERVICE) == "/api/v1/namespaces/kube-system/services/kube-dns"
    rbac = yaml.safe_load((REPO / "roles/cluster_dns/files/rbac.yml").read_text())
    assert [filters.cluster_dns_path(obj) for obj in rbac] == [
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:coredns",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:coredns"]


def test_only_missing_or_different_objects_are_applied():
    live = {**SERVICE, "metadata": {**SERVICE["metadata"], "uid": "u", "resourceVersion": "7"},
            "spec": {**SERVICE["spec"], "clusterIPs": ["10.96.0.10"], "sessionAffinity": "None",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]}}
    assert filters.cluster_dns_stale([{"item": SERVICE, "status": 200, "json": live}]) == []
    assert filters.cluster_dns_stale([{"item": SERVICE, "status": 404, "json": {}}]) == [SERVICE]
    moved = {**live, "spec": {**live["spec"], "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}]}}
    assert filters.cluster_dns_stale([{"item": SERVICE, "status": 200, "json": moved}]) == [SERVICE]
    more = {**live, "spec": {**live["spec"], "ports": live["spec"]["ports"] * 2}}
    assert filters.cluster_dns_stale([{"item": SERVICE, "status": 200, "json": more}]) == [SERVICE]
