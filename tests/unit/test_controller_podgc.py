"""The pod GC's choices: the oldest finished pods beyond the threshold, out-of-service nodes."""
from kpy_components.controller_manager.controllers.podgc import out_of_service, terminated_to_delete


def pod(name, phase="Running", created="2026-01-01T00:00:00Z", deleting=False):
    metadata = {"name": name, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = created
    return {"metadata": metadata, "status": {"phase": phase}}


def test_pod_gc_deletes_the_oldest_finished_pods_beyond_the_threshold():
    pods = [pod("new", "Succeeded", "2026-01-03T00:00:00Z"), pod("old", "Failed", "2026-01-01T00:00:00Z"),
            pod("mid", "Succeeded", "2026-01-02T00:00:00Z"), pod("running"),
            pod("going", "Succeeded", "2025-01-01T00:00:00Z", deleting=True)]
    assert [p["metadata"]["name"] for p in terminated_to_delete(pods, 1)] == ["old", "mid"]
    assert terminated_to_delete(pods, 3) == []
    assert terminated_to_delete(pods, 0) == []  # 0 turns this off


def test_out_of_service_needs_the_taint_and_a_node_that_is_not_ready():
    taint = {"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}

    def node(ready, taints):
        return {"spec": {"taints": taints}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}
    assert out_of_service(node("False", [taint]))
    assert not out_of_service(node("True", [taint]))
    assert not out_of_service(node("Unknown", []))
