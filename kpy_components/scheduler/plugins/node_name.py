"""NodeName: a pod that names its node (spec.nodeName) fits only there."""
from __future__ import annotations

from ..framework import NODE_ADD, OK, SKIPPED, unschedulable

REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"
    events = frozenset({NODE_ADD})

    def pre_filter(self, state, pod, nodes):
        return OK if pod.node_name else SKIPPED

    def filter(self, state, pod, node):
        if pod.node_name and pod.node_name != node.name:
            return unschedulable(self.name, REASON, resolvable=False)
        return None
