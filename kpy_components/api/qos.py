"""A pod's quality-of-service class (Kubernetes' GetPodQOS), shared by the API server (status.qosClass at creation)
and the kubelet (cgroup placement, OOM scores)."""
from __future__ import annotations

from kpy_components.api.quantity import ZERO, Quantity, QuantityError

_QOS_RESOURCES = ("cpu", "memory")


def _qos_quantities(values) -> dict[str, Quantity]:
    """The non-zero cpu/memory entries of a ResourceList; unparsable values count as absent (validation reports
    them, QoS must not fail on them)."""
    result = {}
    for name in _QOS_RESOURCES:
        try:
            quantity = Quantity.parse(values[name]) if isinstance(values, dict) and name in values else ZERO
        except QuantityError:
            continue
        if quantity != ZERO:
            result[name] = quantity
    return result


def qos_class(spec: dict) -> str:
    """Kubernetes' GetPodQOS over init and regular containers, each container's requests defaulting to its limits:
    BestEffort when no container requests or limits cpu/memory; Guaranteed when every container limits both and
    the summed requests equal the summed limits; Burstable otherwise."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for container in containers:
        resources = (container.get("resources") if isinstance(container, dict) else None) or {}
        if not isinstance(resources, dict):
            continue
        container_limits = _qos_quantities(resources.get("limits"))
        container_requests = {**container_limits, **_qos_quantities(resources.get("requests"))}
        for name, quantity in container_requests.items():
            requests[name] = requests.get(name, ZERO) + quantity
        for name, quantity in container_limits.items():
            limits[name] = limits.get(name, ZERO) + quantity
        guaranteed = guaranteed and set(container_limits) == set(_QOS_RESOURCES)
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"
