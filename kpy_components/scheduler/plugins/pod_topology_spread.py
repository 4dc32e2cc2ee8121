"""PodTopologySpread: spec.topologySpreadConstraints. DoNotSchedule constraints filter, ScheduleAnyway ones score.

Counting (kube-scheduler's semantics): pods of the same namespace matching the constraint's labelSelector (plus
matchLabelKeys taken from the pod's own labels), not being deleted, on eligible nodes. A node is eligible when it
carries every constraint's topology key and, with nodeAffinityPolicy Honor (the default), matches the pod's
nodeSelector/required affinity; with nodeTaintsPolicy Honor its NoSchedule taints must be tolerated (default:
Ignore).

Filter: skew = matching pods in the node's domain + (1 if the pod matches its own selector) - the smallest count
over eligible domains (0 while there are fewer domains than minDomains); the node fails when skew > maxSkew.
Score: for each soft constraint count * log(domains + 2) + maxSkew - 1, summed; normalised so the emptiest node gets
100 (`100 * (max + min - score) / max`); nodes lacking a topology key score 0.
Kubernetes' cluster-level default constraints (applied to pods without constraints) are not applied.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.nodeaffinity import RequiredAffinity
from kpy_components.api.selectors import LabelSelector, Requirement, label_selector_from_dict
from kpy_components.api.taints import NO_EXECUTE, NO_SCHEDULE, first_untolerated

from ..framework import (ASSIGNED_POD_ADD, ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE, MAX_NODE_SCORE, NODE_ADD,
                         NODE_DELETE, NODE_UPDATE, OK, SKIPPED, unschedulable)

MISMATCH = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
HOSTNAME = "kubernetes.io/hostname"
_FILTER_STATE, _SCORE_STATE = "PodTopologySpread/filter", "PodTopologySpread/score"


@dataclass
class Constraint:
    max_skew: int
    key: str
    hard: bool
    selector: LabelSelector
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def constraints_of(pod) -> list[Constraint]:
    result = []
    for item in pod.spec.get("topologySpreadConstraints") or []:
        try:
            selector = label_selector_from_dict(item.get("labelSelector"))
        except APIError:
            selector = LabelSelector(nothing=True)
        extra = tuple(Requirement(k, "in", (pod.labels[k],)) for k in item.get("matchLabelKeys") or ()
                      if k in pod.labels)
        if extra and not selector.nothing:
            selector = LabelSelector(selector.requirements + extra)
        result.append(Constraint(
            max_skew=int(item.get("maxSkew") or 1), key=item.get("topologyKey", ""),
            hard=item.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule", selector=selector,
            min_domains=int(item.get("minDomains") or 1),
            honor_affinity=item.get("nodeAffinityPolicy", "Honor") == "Honor",
            honor_taints=item.get("nodeTaintsPolicy", "Ignore") == "Honor"))
    return result


def _eligible(node, constraints: list[Constraint], affinity: RequiredAffinity, tolerations: list) -> bool:
    labels = node.labels
    if any(c.key not in labels for c in constraints):
        return False
    if any(c.honor_affinity for c in constraints) and not affinity.matches(node):
        return False
    if any(c.honor_taints for c in constraints) and node.taints and first_untolerated(
            node.taints, tolerations, (NO_SCHEDULE, NO_EXECUTE)) is not None:
        return False
    return True


def _matching(node, constraint: Constraint, namespace: str) -> int:
    selector = constraint.selector
    return sum(1 for other in node.pods.values()
               if other.namespace == namespace and not other.terminating and selector.matches(other.labels))


def count_domains(pod, constraints: list[Constraint], nodes) -> list[dict[str, int]]:
    """Per constraint: matching pod count per topology value over the eligible nodes (every eligible domain
    present, with 0 if empty)."""
    affinity = RequiredAffinity(pod.spec)
    counts: list[dict[str, int]] = [{} for _ in constraints]
    for node in nodes:
        if not _eligible(node, constraints, affinity, pod.tolerations):
            continue
        for constraint, domain_counts in zip(constraints, counts):
            value = node.labels[constraint.key]
            domain_counts[value] = domain_counts.get(value, 0) + _matching(node, constraint, pod.namespace)
    return counts


class PodTopologySpread:
    name = "PodTopologySpread"
    events = frozenset({NODE_ADD, NODE_UPDATE, NODE_DELETE, ASSIGNED_POD_ADD, ASSIGNED_POD_UPDATE,
                        ASSIGNED_POD_DELETE})

    def pre_filter(self, state, pod, nodes):
        hard = [c for c in constraints_of(pod) if c.hard]
        if not hard:
            return SKIPPED
        counts = count_domains(pod, hard, nodes)
        minimums = [0 if len(domains) < c.min_domains else min(domains.values(), default=0)
                    for c, domains in zip(hard, counts)]
        state[_FILTER_STATE] = (hard, counts, minimums)
        return OK

    def filter(self, state, pod, node):
        hard, counts, minimums = state[_FILTER_STATE]
        labels = node.labels
        for constraint in hard:
            if constraint.key not in labels:
                return unschedulable(self.name, MISSING_LABEL, resolvable=False)
        for constraint, domains, minimum in zip(hard, counts, minimums):
            self_match = 1 if constraint.selector.matches(pod.labels) else 0
            if domains.get(labels[constraint.key], 0) + self_match - minimum > constraint.max_skew:
                return unschedulable(self.name, MISMATCH)
        return None

    def pre_score(self, state, pod, nodes):
        soft = [c for c in constraints_of(pod) if not c.hard]
        if not soft:
            return SKIPPED
        counts = count_domains(pod, soft, nodes)
        weights = [math.log(len(domains) + 2) for domains in counts]
        state[_SCORE_STATE] = (soft, counts, weights, set())
        return OK

    def score(self, state, pod, node) -> int:
        soft, counts, weights, ignored = state[_SCORE_STATE]
        labels = node.labels
        if any(c.key not in labels for c in soft):
            ignored.add(node.name)
            return 0
        total = 0.0
        for constraint, domains, weight in zip(soft, counts, weights):
            if constraint.key == HOSTNAME:  # per-node domains: count the node itself
                count = _matching(node, constraint, pod.namespace)
            else:
                count = domains.get(labels[constraint.key], 0)
            total += count * weight + constraint.max_skew - 1
        return round(total)

    def normalize(self, state, pod, nodes, scores) -> None:
        ignored = state[_SCORE_STATE][3]
        counted = [score for node, score in zip(nodes, scores) if node.name not in ignored]
        if not counted:
            return
        top, bottom = max(counted), min(counted)
        for index, (node, score) in enumerate(zip(nodes, scores)):
            if node.name in ignored:
                scores[index] = 0
            elif top == 0:
                scores[index] = MAX_NODE_SCORE
            else:
                scores[index] = MAX_NODE_SCORE * (top + bottom - score) // top
