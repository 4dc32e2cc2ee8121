"""NodeAffinity: spec.nodeSelector and requiredDuringScheduling node affinity as a filter; preferred terms as a
score (the sum of the weights of the terms a node matches, scaled so the best node gets 100). The matching itself
is kpy_components.api.nodeaffinity (the DaemonSet controller uses it too)."""
from __future__ import annotations

from kpy_components.api.nodeaffinity import RequiredAffinity, preferred_terms

from ..framework import NODE_ADD, NODE_UPDATE, OK, SKIPPED, default_normalize, unschedulable

REASON = "node(s) didn't match Pod's node affinity/selector"
_STATE = "NodeAffinity"


class NodeAffinity:
    name = "NodeAffinity"
    events = frozenset({NODE_ADD, NODE_UPDATE})

    def pre_filter(self, state, pod, nodes):
        required = RequiredAffinity(pod.spec)
        if required.empty:
            return SKIPPED
        state[_STATE] = required
        return OK

    def filter(self, state, pod, node):
        required = state.get(_STATE)
        if required is None:  # our PreFilter is disabled in this profile
            required = state[_STATE] = RequiredAffinity(pod.spec)
        if not required.matches(node):
            return unschedulable(self.name, REASON, resolvable=False)
        return None

    def pre_score(self, state, pod, nodes):
        terms = preferred_terms(pod.spec)
        if not terms:
            return SKIPPED
        state[_STATE + "/preferred"] = terms
        return OK

    def score(self, state, pod, node) -> int:
        terms = state.get(_STATE + "/preferred")
        if terms is None:  # our PreScore is disabled in this profile
            terms = state[_STATE + "/preferred"] = preferred_terms(pod.spec)
        return sum(weight for weight, term in terms if term.matches(node))

    def normalize(self, state, pod, nodes, scores) -> None:
        default_normalize(scores)
