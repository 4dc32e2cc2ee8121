"""Node lifecycle decisions: condition taints, marking a silent node Unknown, and when a pod on a NoExecute-tainted
node must go (tolerationSeconds from the taint's timeAdded)."""
from datetime import datetime, timezone

import pytest

from kpy_components.api.meta import format_rfc3339
from kpy_components.controller_manager.controllers.nodelifecycle import (NEVER, STOPPED, desired_taints,
                                                                         eviction_delay, mark_unknown)

NOW = "2026-11-22T05:00:00Z"
T0 = datetime(2026, 11, 22, 5, 0, 0, tzinfo=timezone.utc).timestamp()
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def node(ready: str | None = "True", taints=None, unschedulable=False, **conditions) -> dict:
    entries = [{"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-11-22T04:59:00Z"}] if ready else []
    entries += [{"type": kind, "status": status} for kind, status in conditions.items()]
    spec = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": "n1"}, "spec": spec, "status": {"conditions": entries}}


def keys(taints):
    return [(t["key"], t["effect"]) for t in taints]


@pytest.mark.parametrize("ready, key", [("False", NOT_READY), ("Unknown", UNREACHABLE)])
def test_not_ready_and_unknown_nodes_get_both_taints(ready, key):
    taints = desired_taints(node(ready), NOW)
    assert keys(taints) == [(key, "NoSchedule"), (key, "NoExecute")]
    assert taints[1]["timeAdded"] == NOW and "timeAdded" not in taints[0]


def test_recovery_removes_managed_taints_and_keeps_others():
    dedicated = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    old = [dedicated, {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "x"}]
    assert desired_taints(node("True", taints=old), NOW) == [dedicated]


def test_taints_that_stay_keep_their_time_added():
    old = [{"key": UNREACHABLE, "effect": "NoSchedule"}, {"key": UNREACHABLE, "effect": "NoExecute",
                                                          "timeAdded": "2026-11-22T04:00:00Z"}]
    assert desired_taints(node("Unknown", taints=old), NOW) == old


def test_pressure_conditions_and_unschedulable_become_no_schedule_taints():
    taints = desired_taints(node("True", unschedulable=True, MemoryPressure="True", DiskPressure="False",
                                 PIDPressure="True", NetworkUnavailable="True"), NOW)
    assert keys(taints) == [("node.kubernetes.io/memory-pressure", "NoSchedule"),
                            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                            ("node.kubernetes.io/network-unavailable", "NoSchedule"),
                            ("node.kubernetes.io/unschedulable", "NoSchedule")]


def test_a_silent_node_gets_unknown_conditions_keeping_the_kubelets_heartbeat():
    marked = mark_unknown(node("True", MemoryPressure="False"), STOPPED, NOW)
    conditions = {c["type"]: c for c in marked["status"]["conditions"]}
    assert conditions["Ready"] == {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                                   "message": "Kubelet stopped posting node status.", "lastTransitionTime": NOW,
                                   "lastHeartbeatTime": "2026-11-22T04:59:00Z"}
    assert set(conditions) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert all(c["status"] == "Unknown" for c in conditions.values())
    assert mark_unknown(marked, STOPPED, NOW) is None  # already Unknown: nothing to write


def test_a_node_that_never_posted_status_gets_the_never_message():
    marked = mark_unknown(node(None), NEVER, NOW)
    ready = next(c for c in marked["status"]["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "Kubelet never posted node status."


def pod(*tolerations) -> dict:
    return {"spec": {"tolerations": list(tolerations)}}


def taint(key=UNREACHABLE, added=T0, effect="NoExecute") -> dict:
    return {"key": key, "effect": effect, "timeAdded": format_rfc3339(datetime.fromtimestamp(added, timezone.utc))}


def toleration(key=UNREACHABLE, seconds=None) -> dict:
    entry = {"key": key, "operator": "Exists", "effect": "NoExecute"}
    return entry if seconds is None else {**entry, "tolerationSeconds": seconds}


def test_without_no_execute_taints_nobody_is_evicted():
    assert eviction_delay(pod(), [taint(effect="NoSchedule")], T0) is None


def test_an_untolerated_no_execute_taint_evicts_at_once():
    assert eviction_delay(pod(), [taint()], T0) == 0.0
    assert eviction_delay(pod(toleration(UNREACHABLE, 300)), [taint(), taint(NOT_READY)], T0) == 0.0


def test_toleration_seconds_count_from_the_taints_time_added():
    assert eviction_delay(pod(toleration(seconds=300)), [taint()], T0 + 100) == 200.0
    assert eviction_delay(pod(toleration(seconds=300)), [taint()], T0 + 301) == 0.0


def test_the_shortest_toleration_among_those_used_wins_and_unlimited_ones_never_evict():
    both = [taint(), taint(NOT_READY, added=T0 + 50)]
    assert eviction_delay(pod(toleration(seconds=300), toleration(NOT_READY, 60)), both, T0) == 60.0
    assert eviction_delay(pod(toleration()), [taint()], T0 + 10_000) is None
    assert eviction_delay(pod({"operator": "Exists"}), [taint()], T0) is None
    assert eviction_delay(pod(toleration(seconds=-5)), [taint()], T0) == 0.0
