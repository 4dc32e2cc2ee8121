"""scheduling.k8s.io facts shared by the API server's PriorityClass strategy, the Priority admission plugin and the
bootstrap (pkg/apis/scheduling: types.go constants, helpers.go's system priority classes)."""
from __future__ import annotations

GROUP = "scheduling.k8s.io"
API_VERSION = f"{GROUP}/v1"
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
SYSTEM_PREFIX = "system-"
SYSTEM_NODE_CRITICAL, SYSTEM_CLUSTER_CRITICAL = "system-node-critical", "system-cluster-critical"
PREEMPT_LOWER_PRIORITY, PREEMPT_NEVER = "PreemptLowerPriority", "Never"
PREEMPTION_POLICIES = [PREEMPT_LOWER_PRIORITY, PREEMPT_NEVER]
DEFAULT_PRIORITY = 0  # a pod's priority when it names no class and no class is the global default

# name -> (value, description); neither is a global default.
SYSTEM_PRIORITY_CLASSES: dict[str, tuple[int, str]] = {
    SYSTEM_NODE_CRITICAL: (SYSTEM_CRITICAL_PRIORITY + 1000,
                           "Used for system critical pods that must not be moved from their current node."),
    SYSTEM_CLUSTER_CRITICAL: (SYSTEM_CRITICAL_PRIORITY,
                              "Used for system critical pods that must run in the cluster, but can be moved to "
                              "another node if necessary."),
}


def system_class_error(name: str, value, global_default: bool) -> str:
    """Why a class named `name` is not one of the system classes ("" when it is), as IsKnownSystemPriorityClass
    words it."""
    known = SYSTEM_PRIORITY_CLASSES.get(name)
    if known is None:
        return f"{name} is not a known system priority class"
    if value != known[0]:
        return f"value of {name} PriorityClass must be {known[0]}"
    if global_default:
        return f"globalDefault of {name} PriorityClass must be false"
    return ""


def system_priority_classes() -> list[dict]:
    """The classes every cluster has from its first start (kube-apiserver's scheduling bootstrap)."""
    return [{"apiVersion": API_VERSION, "kind": "PriorityClass", "metadata": {"name": name}, "value": value,
             "description": description, "preemptionPolicy": PREEMPT_LOWER_PRIORITY}
            for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items()]
