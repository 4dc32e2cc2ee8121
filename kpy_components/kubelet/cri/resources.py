"""A container's cgroup values and OOM score from its requests and limits, with upstream's arithmetic
(pkg/kubelet/cm/helpers_linux.go, kuberuntime_container_linux.go, pkg/kubelet/qos/policy.go):

- cpu shares = request millicores × 1024 / 1000, within [2, 262144]; no request means the limit, no limit 2 shares.
- CFS period 100000 µs always; quota = limit millicores × period / 1000, at least 1000 µs; 0 (unlimited) without a
  limit.
- memory limit in bytes (0 = none).
- oom_score_adj: Guaranteed pods and system-node-critical ones -997, BestEffort 1000, Burstable
  1000 - 1000 × memory request / node memory, kept within [3, 999].
Quantities round up to whole millicores and bytes, as Quantity.MilliValue() and Value() do.
"""
from __future__ import annotations

import math

from kpy_components.api.quantity import Quantity, QuantityError
from kpy_components.api.qos import qos_class

from . import api_pb2
from ..model import ContainerConfigError

MIN_SHARES = 2
MAX_SHARES = 262144
SHARES_PER_CPU = 1024
QUOTA_PERIOD = 100_000  # µs
MIN_QUOTA = 1000  # µs
GUARANTEED_OOM_SCORE_ADJ = -997
BEST_EFFORT_OOM_SCORE_ADJ = 1000
NODE_CRITICAL_CLASS = "system-node-critical"


def milli_cpu_to_shares(milli_cpu: int) -> int:
    if milli_cpu == 0:
        return MIN_SHARES
    return min(max(milli_cpu * SHARES_PER_CPU // 1000, MIN_SHARES), MAX_SHARES)


def milli_cpu_to_quota(milli_cpu: int, period: int = QUOTA_PERIOD) -> int:
    if milli_cpu == 0:
        return 0
    return max(milli_cpu * period // 1000, MIN_QUOTA)


def _amount(container: dict, kind: str, resource: str, scale: int) -> int:
    """requests/limits[resource] × scale, rounded up; 0 when absent. A bad quantity is a ContainerConfigError
    naming the container and field (the API server validates pods, so this guards only against bad stored data)."""
    text = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    if text is None:
        return 0
    try:
        return math.ceil(Quantity.parse(text).value * scale)
    except QuantityError as error:
        raise ContainerConfigError(
            f"container {container.get('name')!r}: resources.{kind}.{resource}: {error}") from None


def oom_score_adj(pod: dict, container: dict, memory_capacity: int) -> int:
    spec = pod.get("spec") or {}
    if spec.get("priorityClassName") == NODE_CRITICAL_CLASS:
        return GUARANTEED_OOM_SCORE_ADJ
    qos = qos_class(spec)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BEST_EFFORT_OOM_SCORE_ADJ
    request = _amount(container, "requests", "memory", 1)
    # Go's integer division truncates towards zero; the request is never negative, so // is the same here.
    score = 1000 - (1000 * request) // memory_capacity if memory_capacity > 0 else 1000
    if score < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if score == BEST_EFFORT_OOM_SCORE_ADJ:
        return score - 1
    return score


def linux_resources(pod: dict, container: dict, *, memory_capacity: int,
                    cpu_cfs_quota: bool = True) -> api_pb2.LinuxContainerResources:
    """`memory_capacity`: the node's memory in bytes (for Burstable OOM scores); `cpu_cfs_quota`: the kubelet's
    cpuCFSQuota setting (limits enforced as CFS quota)."""
    cpu_request = _amount(container, "requests", "cpu", 1000)
    cpu_limit = _amount(container, "limits", "cpu", 1000)
    resources = api_pb2.LinuxContainerResources(
        cpu_shares=milli_cpu_to_shares(cpu_request or cpu_limit),
        memory_limit_in_bytes=_amount(container, "limits", "memory", 1),
        oom_score_adj=oom_score_adj(pod, container, memory_capacity))
    if cpu_cfs_quota:
        resources.cpu_period = QUOTA_PERIOD
        resources.cpu_quota = milli_cpu_to_quota(cpu_limit)
    return resources
