"""NodeUnschedulable: no pods on a cordoned node (spec.unschedulable) unless they tolerate its taint."""
from __future__ import annotations

from kpy_components.api.taints import NO_SCHEDULE, tolerated

from ..framework import NODE_ADD, NODE_UPDATE, unschedulable

REASON = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": NO_SCHEDULE}


class NodeUnschedulable:
    name = "NodeUnschedulable"
    events = frozenset({NODE_ADD, NODE_UPDATE})

    def filter(self, state, pod, node):
        if node.unschedulable and not tolerated(pod.tolerations, UNSCHEDULABLE_TAINT):
            return unschedulable(self.name, REASON, resolvable=False)
        return None
