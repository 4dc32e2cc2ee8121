"""Pods nominated to a node by preemption (kube-scheduler's nominator), and the filter pass that respects them.

A preemptor whose victims are being deleted is nominated to their node (status.nominatedNodeName). Until it is
bound, pods of lower or equal priority must not take its room there: kube-scheduler's addNominatedPods runs the
filters for such a pod on the node with the nominated pods of higher or equal priority added, and again without
them (a nominated pod may never arrive; a pod that needs it absent, e.g. for a host port, must not pass either).

The common case costs nothing: `for_pod` is an empty dict while nothing is nominated, and the scheduler's filter
loop is then unchanged. Everything here is synchronous and owned by the scheduler's event loop.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from .cache import NodeInfo
from .framework import CycleState, Status
from .podinfo import PodInfo

Check = Callable[[CycleState, PodInfo, NodeInfo], "Status | None"]


class Nominator:
    def __init__(self):
        self.by_node: dict[str, dict[str, PodInfo]] = {}
        self._node_of: dict[str, str] = {}

    def add(self, info: PodInfo, node: str) -> None:
        """Nominate (or re-nominate) `info` to `node`; an empty node name removes the nomination."""
        self.remove(info.key)
        if node:
            self.by_node.setdefault(node, {})[info.key] = info
            self._node_of[info.key] = node

    def remove(self, key: str) -> None:
        node = self._node_of.pop(key, None)
        if node is not None:
            pods = self.by_node[node]
            del pods[key]
            if not pods:
                del self.by_node[node]

    def node_of(self, key: str) -> str:
        return self._node_of.get(key, "")

    def pods_on(self, node: str) -> list[PodInfo]:
        return list(self.by_node.get(node, {}).values())

    def for_pod(self, pod: PodInfo) -> dict[str, list[PodInfo]]:
        """Per node, the other nominated pods whose priority is at least `pod`'s: those it must leave room for."""
        if not self.by_node:
            return {}
        result = {}
        for node, pods in self.by_node.items():
            ahead = [p for p in pods.values() if p.priority >= pod.priority and p.key != pod.key]
            if ahead:
                result[node] = ahead
        return result


def run_filters(filters: Sequence[Check], state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
    for check in filters:
        status = check(state, pod, node)
        if status is not None:
            return status
    return None


def with_nominated(filters: Sequence[Check], nominated: dict[str, list[PodInfo]]) -> Check:
    """One check running `filters` as kube-scheduler's RunFilterPluginsWithNominatedPods does."""
    def check(state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        ahead = nominated.get(node.name)
        if ahead:
            twin = node.clone()
            for other in ahead:
                if other.key not in twin.pods:
                    twin.add_pod(other)
            status = run_filters(filters, state, pod, twin)
            if status is not None:
                return status
        return run_filters(filters, state, pod, node)
    return check
