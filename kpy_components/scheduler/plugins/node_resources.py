"""NodeResourcesFit (filter, and scoring by strategy LeastAllocated or MostAllocated) and
NodeResourcesBalancedAllocation.

Filter (kube-scheduler's fitsRequest): the pod count must stay within allocatable `pods`; each resource the pod
requests (more than 0) must fit in allocatable minus what the node's pods request. One reason per shortage.

Scores work on `resources` (name, weight), default cpu and memory weight 1. For cpu and memory the fit scores use
the "non-zero" requests (defaults for containers that request nothing); balanced allocation uses real requests.
Resources the node has none of are left out, as kube-scheduler does.
"""
from __future__ import annotations

from ..framework import ASSIGNED_POD_DELETE, MAX_NODE_SCORE, NODE_ADD, NODE_UPDATE, unschedulable
from ..podinfo import CPU, MEMORY, PODS

TOO_MANY_PODS = "Too many pods"
DEFAULT_RESOURCES = ((CPU, 1), (MEMORY, 1))
STRATEGIES = ("LeastAllocated", "MostAllocated")


def insufficient(pod, node, ignored: frozenset = frozenset()) -> list[str]:
    """The reasons `pod` does not fit `node`; pod.requests is ordered cpu, memory, ephemeral-storage, scalars, as
    kube-scheduler checks them."""
    reasons = []
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(TOO_MANY_PODS)
    for name, value in pod.requests.items():
        if name == CPU:
            free = node.allocatable_cpu - node.requested_cpu
        elif name == MEMORY:
            free = node.allocatable_memory - node.requested_memory
        else:
            free = node.allocatable.get(name, 0) - node.requested.get(name, 0)
        if value > free and name != PODS and name not in ignored:
            reasons.append(f"Insufficient {name}")
    return reasons


def requested_with_pod(pod, node, name: str, non_zero: bool) -> int:
    if non_zero and name == CPU:
        return node.non_zero_cpu + pod.non_zero_cpu
    if non_zero and name == MEMORY:
        return node.non_zero_memory + pod.non_zero_memory
    return node.requested.get(name, 0) + pod.requests.get(name, 0)


class NodeResourcesFit:
    name = "NodeResourcesFit"
    events = frozenset({NODE_ADD, NODE_UPDATE, ASSIGNED_POD_DELETE})

    def __init__(self, strategy: str = "LeastAllocated", resources=DEFAULT_RESOURCES,
                 ignored_resources: tuple[str, ...] = ()):
        self.most_allocated = strategy == "MostAllocated"
        self.resources = tuple(resources)
        self.ignored = frozenset(ignored_resources)

    def filter(self, state, pod, node):
        if (pod.only_cpu_memory and len(node.pods) < node.allowed_pods
                and (not pod.request_cpu or pod.request_cpu <= node.allocatable_cpu - node.requested_cpu)
                and (not pod.request_memory
                     or pod.request_memory <= node.allocatable_memory - node.requested_memory)):
            return None  # the common case, decided without building a list of reasons
        reasons = insufficient(pod, node, self.ignored)
        return unschedulable(self.name, *reasons) if reasons else None

    def score_all(self, state, pod, nodes) -> list[int]:
        """Every node's score at once (the framework's batch path)."""
        if self.resources != DEFAULT_RESOURCES:
            return [self.score(state, pod, node) for node in nodes]
        return self._score_all_cpu_memory(pod, nodes)

    def score(self, state, pod, node) -> int:
        if self.resources == DEFAULT_RESOURCES:
            return self._score_cpu_memory(pod, node)
        total = weights = 0
        allocatable = node.allocatable
        for name, weight in self.resources:
            capacity = allocatable.get(name, 0)
            if not capacity:
                continue
            requested = requested_with_pod(pod, node, name, non_zero=True)
            if requested > capacity:
                value = MAX_NODE_SCORE if self.most_allocated else 0
            elif self.most_allocated:
                value = requested * MAX_NODE_SCORE // capacity
            else:
                value = (capacity - requested) * MAX_NODE_SCORE // capacity
            total += value * weight
            weights += weight
        return total // weights if weights else 0

    def _score_cpu_memory(self, pod, node) -> int:
        """score() for the default resources (cpu and memory, weight 1 each), without dict lookups."""
        return self._score_all_cpu_memory(pod, (node,))[0]

    def _score_all_cpu_memory(self, pod, nodes) -> list[int]:
        """_score_cpu_memory for every node in one loop (the hot path: hundreds of nodes per cycle)."""
        pod_cpu, pod_memory, most = pod.non_zero_cpu, pod.non_zero_memory, self.most_allocated
        full = MAX_NODE_SCORE if most else 0  # the score of a resource requested beyond capacity
        scores = []
        for node in nodes:
            cpu_capacity, memory_capacity = node.allocatable_cpu, node.allocatable_memory
            total = weights = 0
            if cpu_capacity:
                requested = node.non_zero_cpu + pod_cpu
                weights = 1
                total = full if requested > cpu_capacity else (
                    requested if most else cpu_capacity - requested) * MAX_NODE_SCORE // cpu_capacity
            if memory_capacity:
                requested = node.non_zero_memory + pod_memory
                weights += 1
                total += full if requested > memory_capacity else (
                    requested if most else memory_capacity - requested) * MAX_NODE_SCORE // memory_capacity
            scores.append(total // weights if weights else 0)
        return scores

    def normalize(self, state, pod, nodes, scores) -> None:
        pass  # already 0..100


class NodeResourcesBalancedAllocation:
    name = "NodeResourcesBalancedAllocation"
    events = frozenset()

    def __init__(self, resources=DEFAULT_RESOURCES):
        self.resources = tuple(name for name, _ in resources)

    def score_all(self, state, pod, nodes) -> list[int]:
        """Every node's score at once (the framework's batch path): for cpu and memory without dict lookups."""
        if self.resources != (CPU, MEMORY):
            return [self.score(state, pod, node) for node in nodes]
        scores = []
        cpu, memory = pod.request_cpu, pod.request_memory
        for node in nodes:
            cpu_capacity, memory_capacity = node.allocatable_cpu, node.allocatable_memory
            if cpu_capacity and memory_capacity:  # min() and abs() spelled out: they cost half the loop
                cpu_fraction = (node.requested_cpu + cpu) / cpu_capacity
                if cpu_fraction > 1.0:
                    cpu_fraction = 1.0
                memory_fraction = (node.requested_memory + memory) / memory_capacity
                if memory_fraction > 1.0:
                    memory_fraction = 1.0
                difference = cpu_fraction - memory_fraction
                scores.append(int((1 - (difference if difference >= 0 else -difference) / 2) * MAX_NODE_SCORE))
            else:
                scores.append(MAX_NODE_SCORE)
        return scores

    def score(self, state, pod, node) -> int:
        fractions = []
        allocatable = node.allocatable
        for name in self.resources:
            capacity = allocatable.get(name, 0)
            if capacity:
                fractions.append(min(1.0, requested_with_pod(pod, node, name, non_zero=False) / capacity))
        if len(fractions) == 2:
            deviation = abs(fractions[0] - fractions[1]) / 2
        elif len(fractions) > 2:
            mean = sum(fractions) / len(fractions)
            deviation = (sum((f - mean) ** 2 for f in fractions) / len(fractions)) ** 0.5
        else:
            deviation = 0.0
        return int((1 - deviation) * MAX_NODE_SCORE)

    def normalize(self, state, pod, nodes, scores) -> None:
        pass  # already 0..100
