"""TaintToleration: a node's NoSchedule/NoExecute taints must be tolerated (filter); each PreferNoSchedule taint
the pod does not tolerate lowers the node's score (the node with the fewest gets 100)."""
from __future__ import annotations

from kpy_components.api.taints import NO_EXECUTE, NO_SCHEDULE, PREFER_NO_SCHEDULE, first_untolerated, tolerated

from ..framework import NODE_ADD, NODE_UPDATE, OK, default_normalize, unschedulable

_HARD = (NO_SCHEDULE, NO_EXECUTE)
_STATE = "TaintToleration"


def untolerated_reason(taint: dict) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


def _prefer_no_schedule_tolerations(pod) -> list:
    return [t for t in pod.tolerations if (t.get("effect") or PREFER_NO_SCHEDULE) == PREFER_NO_SCHEDULE]


class TaintToleration:
    name = "TaintToleration"
    events = frozenset({NODE_ADD, NODE_UPDATE})

    def filter(self, state, pod, node):
        if node.taints:
            taint = first_untolerated(node.taints, pod.tolerations, _HARD)
            if taint is not None:
                return unschedulable(self.name, untolerated_reason(taint), resolvable=False)
        return None

    def pre_score(self, state, pod, nodes):
        state[_STATE] = _prefer_no_schedule_tolerations(pod)
        return OK

    def score(self, state, pod, node) -> int:
        if not node.taints:
            return 0
        tolerations = state.get(_STATE)
        if tolerations is None:  # our PreScore is disabled in this profile
            tolerations = state[_STATE] = _prefer_no_schedule_tolerations(pod)
        return sum(1 for taint in node.taints
                   if taint.get("effect") == PREFER_NO_SCHEDULE and not tolerated(tolerations, taint))

    def normalize(self, state, pod, nodes, scores) -> None:
        default_normalize(scores, reverse=True)
