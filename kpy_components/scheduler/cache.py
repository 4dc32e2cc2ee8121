"""The scheduler's cache: per node, what is allocatable and what pods (bound or assumed) already take.

Contracts:
- Pods are "assumed" on a node as soon as the scheduler picks it, before the binding is written, so the next
  cycle already sees the node's resources taken. When the informer later reports the pod bound, the assumed pod
  is confirmed; if the binding fails the pod is forgotten. An assumed pod whose binding finished but that the
  informer never confirms expires after `assumed_ttl` seconds (a lost watch event must not leak capacity).
- Snapshot: a scheduling cycle never awaits between reading the cache and assuming its pod, so on kpy's single
  event loop the live NodeInfos are consistent for the whole cycle and need no copying. `snapshot()` returns the
  list of NodeInfos in a stable order, rebuilt only when nodes are added or removed.
- Everything here is synchronous and owned by one event loop.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .podgroups import PodGroups
from .podinfo import CPU, MEMORY, PODS, PodInfo, resource_amounts

log = logging.getLogger(__name__)
DEFAULT_ASSUMED_TTL = 30.0  # seconds after binding finished before an unconfirmed assumed pod is dropped


class NodeInfo:
    """One node and the pods on it. `requested` sums the pods' effective requests; `non_zero_cpu/memory` the
    scoring variants; `used_ports` is a set of (hostIP, protocol, port). `groups`, for the cache's NodeInfos, is the
    cache's PodGroups, kept current here. `origin` is, for a clone, the cache's NodeInfo it was copied from (None
    for that one): a plugin that precomputed over the cache's nodes can tell what changed."""

    __slots__ = ("name", "node", "labels", "taints", "unschedulable", "allocatable", "allocatable_cpu",
                 "allocatable_memory", "allowed_pods", "pods", "requested", "requested_cpu", "requested_memory",
                 "non_zero_cpu", "non_zero_memory", "used_ports", "generation", "groups", "origin")

    def __init__(self, node: dict, groups: PodGroups | None = None):
        self.pods: dict[str, PodInfo] = {}
        self.groups, self.origin = groups, None
        self.requested: dict[str, int] = {}
        self.requested_cpu = self.requested_memory = 0  # = requested[cpu/memory], as attributes for hot paths
        self.non_zero_cpu = self.non_zero_memory = 0
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.generation = 0
        self.set_node(node)

    def set_node(self, node: dict) -> None:
        meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
        self.node = node
        self.name = meta.get("name", "")
        self.labels = meta.get("labels") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = resource_amounts(status.get("allocatable") or status.get("capacity"))
        self.allowed_pods = self.allocatable.get(PODS, 0)
        self.allocatable_cpu = self.allocatable.get(CPU, 0)  # attributes for the scoring hot path
        self.allocatable_memory = self.allocatable.get(MEMORY, 0)
        self.generation += 1

    def add_pod(self, info: PodInfo) -> None:
        self.pods[info.key] = info
        if self.groups is not None:
            self.groups.change(self, info, 1)
        self._account(info, 1)

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        if info is not None:
            if self.groups is not None:
                self.groups.change(self, info, -1)
            self._account(info, -1)
        return info

    def _account(self, info: PodInfo, sign: int) -> None:
        requested = self.requested
        for name, value in info.requests.items():
            requested[name] = requested.get(name, 0) + sign * value
        self.requested_cpu += sign * info.request_cpu
        self.requested_memory += sign * info.request_memory
        self.non_zero_cpu += sign * info.non_zero_cpu
        self.non_zero_memory += sign * info.non_zero_memory
        for port in info.ports:
            count = self.used_ports.get(port, 0) + sign
            if count > 0:
                self.used_ports[port] = count
            else:
                self.used_ports.pop(port, None)
        self.generation += 1

    def clone(self) -> NodeInfo:
        """A copy whose pods can be added and removed without touching this one (preemption's dry runs, nominated
        pods): the node object and labels are shared, the pod accounting is copied."""
        twin = NodeInfo.__new__(NodeInfo)
        for slot in NodeInfo.__slots__:
            setattr(twin, slot, getattr(self, slot))
        twin.pods, twin.requested, twin.used_ports = dict(self.pods), dict(self.requested), dict(self.used_ports)
        twin.groups, twin.origin = None, self.origin or self
        return twin

    def free(self, name: str) -> int:
        return self.allocatable.get(name, 0) - self.requested.get(name, 0)

    def __repr__(self) -> str:
        return (f"NodeInfo({self.name}, pods={len(self.pods)}, cpu={self.requested.get(CPU, 0)}m/"
                f"{self.allocatable.get(CPU, 0)}m, memory={self.requested.get(MEMORY, 0)}/"
                f"{self.allocatable.get(MEMORY, 0)})")


class Snapshot(list):
    """The cache's NodeInfos, and `pod_groups`: its PodGroups (what InterPodAffinity would otherwise build)."""
    pod_groups: PodGroups


@dataclass
class _PodState:
    info: PodInfo
    node: str
    assumed: bool
    deadline: float | None = None  # for an assumed pod whose binding finished


class SchedulerCache:
    def __init__(self, assumed_ttl: float = DEFAULT_ASSUMED_TTL, clock=time.monotonic):
        self.assumed_ttl, self.clock = assumed_ttl, clock
        self.nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}
        self._orphans: dict[str, dict[str, PodInfo]] = {}  # pods bound to nodes the cache has not seen yet
        self._snapshot: Snapshot | None = None
        self.groups = PodGroups()  # of the pods on self.nodes

    # --- nodes ---------------------------------------------------------------------------------------------------
    def add_node(self, node: dict) -> NodeInfo:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is not None:
            info.set_node(node)
            return info
        info = self.nodes[name] = NodeInfo(node, self.groups)
        for pod in self._orphans.pop(name, {}).values():
            info.add_pod(pod)
        self._snapshot = None
        return info

    update_node = add_node

    def remove_node(self, name: str) -> None:
        info = self.nodes.pop(name, None)
        if info is not None:
            self._snapshot = None
            for pod in info.pods.values():
                self.groups.change(info, pod, -1)
            info.groups = None
            if info.pods:  # pods still bound there stay accounted until their own deletes arrive
                self._orphans[name] = dict(info.pods)

    def snapshot(self) -> Snapshot:
        """The NodeInfos sorted by name (a stable order for round-robin), shared until the node set changes."""
        if self._snapshot is None:
            self._snapshot = Snapshot(self.nodes[name] for name in sorted(self.nodes))
            self._snapshot.pod_groups = self.groups
        return self._snapshot

    # --- pods ----------------------------------------------------------------------------------------------------
    def assume_pod(self, info: PodInfo, node: str) -> None:
        """Account `info` on `node` before it is bound; KeyError if the pod is already in the cache."""
        if info.key in self._pods:
            raise KeyError(f"pod {info.key} is already in the scheduler cache")
        self._pods[info.key] = _PodState(info, node, assumed=True)
        self._node_add(node, info)

    def finish_binding(self, key: str) -> None:
        """The binding was written: start the assumed pod's expiry clock."""
        state = self._pods.get(key)
        if state is not None and state.assumed:
            state.deadline = self.clock() + self.assumed_ttl

    def forget_pod(self, key: str) -> None:
        """Undo `assume_pod` (the binding failed)."""
        state = self._pods.get(key)
        if state is not None and state.assumed:
            del self._pods[key]
            self._node_remove(state.node, key)

    def is_assumed(self, key: str) -> bool:
        state = self._pods.get(key)
        return state is not None and state.assumed

    def add_pod(self, info: PodInfo) -> None:
        """A pod the informer reports bound to info.node_name (confirms an assumed pod)."""
        state = self._pods.get(info.key)
        if state is not None:
            self._node_remove(state.node, info.key)
        self._pods[info.key] = _PodState(info, info.node_name, assumed=False)
        self._node_add(info.node_name, info)

    update_pod = add_pod

    def remove_pod(self, key: str) -> None:
        state = self._pods.pop(key, None)
        if state is not None:
            self._node_remove(state.node, key)

    def cleanup_expired(self) -> list[str]:
        """Drop assumed pods whose binding finished more than `assumed_ttl` ago without confirmation."""
        now = self.clock()
        expired = [key for key, state in self._pods.items()
                   if state.assumed and state.deadline is not None and state.deadline <= now]
        for key in expired:
            log.warning("Expired assumed pod pod=%s node=%s", key, self._pods[key].node)
            self.forget_pod(key)
        return expired

    def pod_count(self) -> int:
        return len(self._pods)

    def _node_add(self, node: str, info: PodInfo) -> None:
        target = self.nodes.get(node)
        if target is not None:
            target.add_pod(info)
        else:
            self._orphans.setdefault(node, {})[info.key] = info

    def _node_remove(self, node: str, key: str) -> None:
        target = self.nodes.get(node)
        if target is not None:
            target.remove_pod(key)
        else:
            orphans = self._orphans.get(node)
            if orphans is not None:
                orphans.pop(key, None)
                if not orphans:
                    del self._orphans[node]
