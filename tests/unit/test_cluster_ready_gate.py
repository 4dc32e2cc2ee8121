"""The cluster_ready gate's decisions: which hosts are not Ready nodes, which kube-dns endpoints are ready, what
changed in this run, and when the DNS check pod must run."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("kpy_cluster_ready",
                                               REPO / "roles/cluster_ready/action_plugins/kpy_cluster_ready.py")
gate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gate)


def node(name, ready):
    return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_missing_ready_nodes():
    nodes = [node("a", "True"), node("b", "False"), node("c", "Unknown"), {"metadata": {"name": "d"}}]
    assert gate.missing_ready_nodes(nodes, ["a", "b", "c", "d", "e"]) == ["b", "c", "d", "e"]
    assert gate.missing_ready_nodes(nodes, ["a"]) == []


def test_dns_endpoints_absent_ready_condition_counts_as_ready():
    slices = [{"endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                             {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                             {"addresses": ["10.0.0.3"]}]},
              {"endpoints": None}]
    assert gate.dns_endpoints(slices) == (["10.0.0.1", "10.0.0.3"], ["10.0.0.2"])
    assert gate.dns_endpoints([]) == ([], [])


def test_changed_results_names_host_and_result():
    hostvars = {"a": {"kubelet_state": {"changed": True}, "containerd_state": {"changed": False}},
                "b": {"kubelet_state": {"changed": False}, "other": {"changed": True}}}
    watched = ["kubelet_state", "containerd_state", "never_registered"]
    assert gate.changed_results(hostvars, ["a", "b"], watched) == ["a: kubelet_state"]
    assert gate.changed_results(hostvars, ["b"], watched) == []


def test_pod_check_only_when_something_may_have_broken_the_pod_path():
    assert gate.pod_check_reasons("auto", [], "uid", "uid", []) == []
    assert gate.pod_check_reasons("always", [], "uid", "uid", []) != []
    assert gate.pod_check_reasons("auto", ["a: kubelet_state"], "uid", "uid", []) != []
    assert gate.pod_check_reasons("auto", [], None, "uid", []) != []          # never passed on this cluster
    assert gate.pod_check_reasons("auto", [], "old-uid", "uid", []) != []     # a rebuilt cluster
    assert gate.pod_check_reasons("auto", [], "uid", "uid", ["10.0.0.1"]) != []  # the controller got no answer
