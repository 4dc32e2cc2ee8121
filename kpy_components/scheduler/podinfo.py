"""What the scheduler needs from a pod, computed once per pod version (never per node or per cycle).

Resource amounts are integers as in kube-scheduler's `framework.Resource`: cpu in millicores, everything else in
units (bytes for memory and ephemeral-storage, counts for extended resources), rounded up.

Pod requests follow `resourcehelper.PodRequests`: the sum over containers, raised to the largest init container
(a restartable "sidecar" init container, restartPolicy Always, keeps running, so it adds to everything started
after it), plus spec.overhead. `non_zero` is the same for cpu and memory with kube-scheduler's defaults for
containers that request nothing (100m, 200Mi), used only for scoring so that empty pods still spread.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from kpy_components.api.quantity import Quantity, QuantityError

from .podaffinity import PodAffinityTerms, pod_affinity_terms

CPU, MEMORY, PODS, EPHEMERAL = "cpu", "memory", "pods", "ephemeral-storage"
DEFAULT_MILLI_CPU_REQUEST = 100  # kube-scheduler's schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # schedutil.DefaultMemoryRequest
DEFAULT_PRIORITY = 0


def amount(name: str, text) -> int:
    """The integer amount of a quantity: millicores for cpu, units rounded up otherwise; 0 if unparseable (the
    API server validated the object, so this only guards against surprises)."""
    try:
        value = Quantity.parse(text).value  # cached per text
    except QuantityError:
        return 0
    return math.ceil(value * 1000) if name == CPU else math.ceil(value)


def resource_amounts(values: dict | None) -> dict[str, int]:
    return {name: amount(name, text) for name, text in (values or {}).items()}


def _add(total: dict[str, int], extra: dict[str, int]) -> None:
    for name, value in extra.items():
        total[name] = total.get(name, 0) + value


def _max_into(total: dict[str, int], other: dict[str, int]) -> None:
    for name, value in other.items():
        if value > total.get(name, 0):
            total[name] = value


def _container_requests(container: dict) -> dict[str, int]:
    return resource_amounts((container.get("resources") or {}).get("requests"))


def pod_requests(spec: dict) -> dict[str, int]:
    """Effective requests of a pod spec (see the module docstring)."""
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        _add(total, _container_requests(container))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or []:
        requests = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            _add(sidecars, requests)
            _max_into(init_peak, dict(sidecars))
        else:
            running = dict(sidecars)
            _add(running, requests)
            _max_into(init_peak, running)
    _add(total, sidecars)
    _max_into(total, init_peak)
    _add(total, resource_amounts(spec.get("overhead")))
    return {name: total[name] for name in sorted(total, key=_check_order) if total[name]}


def _check_order(name: str) -> tuple[int, str]:
    """kube-scheduler's fit check order: cpu, memory, ephemeral-storage, then scalar resources by name."""
    return ({CPU: 0, MEMORY: 1, EPHEMERAL: 2}.get(name, 3), name)


def _non_zero(spec: dict) -> tuple[int, int]:
    """(cpu millis, memory bytes) with the defaults for containers that request none, as kube-scheduler scores."""
    cpu = memory = 0
    for container in spec.get("containers") or []:
        requests = _container_requests(container)
        cpu += requests.get(CPU) or DEFAULT_MILLI_CPU_REQUEST
        memory += requests.get(MEMORY) or DEFAULT_MEMORY_REQUEST
    overhead = resource_amounts(spec.get("overhead"))
    return cpu + overhead.get(CPU, 0), memory + overhead.get(MEMORY, 0)


def host_ports(spec: dict) -> tuple[tuple[str, str, int], ...]:
    """(hostIP, protocol, hostPort) of every container port that asks for a host port."""
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                ports.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", int(port["hostPort"])))
    return tuple(ports)


@dataclass
class PodInfo:
    """A pod and its derived scheduling data. `pod` is the informer's object: read it, never mutate it."""
    pod: dict
    key: str
    uid: str
    namespace: str
    name: str
    labels: dict
    node_name: str
    scheduler_name: str
    priority: int
    requests: dict[str, int]
    non_zero_cpu: int
    non_zero_memory: int
    ports: tuple[tuple[str, str, int], ...]
    tolerations: list
    spec: dict = field(repr=False)
    request_cpu: int = 0  # = requests[cpu/memory], as attributes for hot paths
    request_memory: int = 0
    only_cpu_memory: bool = True  # requests nothing but cpu and memory
    affinity: PodAffinityTerms | None = None  # inter-pod (anti-)affinity terms; None: it has none
    signature: tuple = ()  # (namespace, labels): what label selectors see of it, equal for a Deployment's pods

    def __post_init__(self) -> None:
        self.request_cpu, self.request_memory = self.requests.get(CPU, 0), self.requests.get(MEMORY, 0)
        self.only_cpu_memory = set(self.requests) <= {CPU, MEMORY}
        self.signature = (self.namespace, frozenset(self.labels.items()))

    @classmethod
    def of(cls, pod: dict) -> PodInfo:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        cpu, memory = _non_zero(spec)
        labels = meta.get("labels") or {}
        return cls(pod=pod, key=f"{namespace}/{name}", uid=meta.get("uid", ""), namespace=namespace, name=name,
                   labels=labels, node_name=spec.get("nodeName") or "",
                   scheduler_name=spec.get("schedulerName") or "default-scheduler",
                   priority=int(spec.get("priority") or DEFAULT_PRIORITY), requests=pod_requests(spec),
                   non_zero_cpu=cpu, non_zero_memory=memory, ports=host_ports(spec),
                   tolerations=spec.get("tolerations") or [], spec=spec,
                   affinity=pod_affinity_terms(spec, namespace, labels))

    @property
    def terminating(self) -> bool:
        return bool((self.pod.get("metadata") or {}).get("deletionTimestamp"))
