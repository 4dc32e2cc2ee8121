"""DefaultPreemption, as a PostFilter that explains what preemption could do — kpy does not evict pods yet.

The message has Kubernetes' shape: "preemption: 0/N nodes are available: <histogram>." where a node rejected as
unresolvable counts as "Preemption is not helpful for scheduling", and a node without lower-priority pods to evict
as "No preemption victims found for incoming pod". A node that does have lower-priority pods (where
kube-scheduler would try evicting them) counts as "Preemption is not implemented by kpy-scheduler".
"""
from __future__ import annotations

from ..framework import UNSCHEDULABLE_AND_UNRESOLVABLE, Status
from ..messages import histogram

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_IMPLEMENTED = "Preemption is not implemented by kpy-scheduler"


class DefaultPreemption:
    name = "DefaultPreemption"
    events = frozenset()

    def post_filter(self, state, pod, nodes, statuses):
        if pod.spec.get("preemptionPolicy") == "Never":
            return Status(reasons=("preemption: not eligible due to preemptionPolicy=Never.",), plugin=self.name)
        by_name = {node.name: node for node in nodes}
        outcomes = []
        for name, status in statuses.items():
            node = by_name.get(name)
            if status.code == UNSCHEDULABLE_AND_UNRESOLVABLE or node is None:
                reason = NOT_HELPFUL
            elif any(other.priority < pod.priority for other in node.pods.values()):
                reason = NOT_IMPLEMENTED
            else:
                reason = NO_VICTIMS
            outcomes.append(Status(reasons=(reason,)))
        return Status(reasons=("preemption: " + histogram(outcomes, len(statuses)),), plugin=self.name)
