"""InterPodAffinity: spec.affinity.podAffinity / podAntiAffinity (kube-scheduler's plugin of the same name).

Filter, from counts per topology pair (topologyKey, the node's value for it) made once per cycle in PreFilter:
- the pod's required affinity: the node must carry every term's topologyKey, and its domain must hold an existing pod
  matching ALL the terms; else "node(s) didn't match pod affinity rules" (unresolvable: preemption cannot help).
  Except the first pod of a group: when no existing pod matches and the pod matches its own terms, any node carrying
  the keys passes (so a Deployment whose pods attract each other can start);
- the pod's required anti-affinity: no existing pod matching a term in the node's domain for that term's key; else
  "node(s) didn't match pod anti-affinity rules";
- existing pods' required anti-affinity (the symmetric check): no pod whose term matches the incoming pod may run
  in the node's domain for that term's key; else "node(s) didn't satisfy existing pods anti-affinity rules".

Score (PreScore sums weights per topology pair; a node scores the sum over its own label pairs): + weight for each
existing pod matching one of the pod's preferred affinity terms, - weight for its preferred anti-affinity terms;
and, from the existing pods' side, + hardPodAffinityWeight for each of their required affinity terms the incoming pod
matches, + / - weight for their preferred affinity / anti-affinity terms it matches (unless
ignorePreferredTermsOfExistingPods and the incoming pod has no preferred terms: then no score at all). Normalised
to 0..100 between the lowest and the highest node.

Namespaces: a term's namespaceSelector is resolved against the Namespace informer's store (`use_namespaces`):
for the incoming pod's terms, into the names of the matching namespaces once per cycle; for existing pods' terms,
by matching the incoming pod's namespace's labels. Without a store no namespace matches a selector (except {}).

Preemption and nominated pods: kpy's framework has no PreFilterExtensions (AddPod/RemovePod); it hands filters a
clone of the node with pods removed (victims) or added (nominated pods). Filter sees `node.origin`, diffs the clone's
pods against the node PreFilter counted, and judges with the counts adjusted for that difference: what upstream's
AddPod/RemovePod compute.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..framework import (ASSIGNED_POD_ADD, ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE, MAX_NODE_SCORE, NODE_ADD,
                         NODE_UPDATE, OK, SKIPPED, unschedulable)
from ..podaffinity import NOTHING, AffinityTerm, PodAffinityTerms, WeightedTerm

AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_MISMATCH = "node(s) didn't satisfy existing pods anti-affinity rules"
DEFAULT_HARD_POD_AFFINITY_WEIGHT = 1
_FILTER_STATE, _SCORE_STATE = "InterPodAffinity/filter", "InterPodAffinity/score"
_ALL_NODES = "InterPodAffinity/nodes"  # the cycle's snapshot, for PreScore (which is given the feasible nodes only)
_EMPTY: dict = {}

Pair = tuple[str, str]  # (topology key, value)


@dataclass
class _FilterState:
    terms: PodAffinityTerms  # the incoming pod's, namespaceSelectors resolved into namespaces
    namespace_labels: dict  # of the incoming pod's namespace
    affinity: dict[Pair, int] = field(default_factory=dict)  # existing pods matching ALL required affinity terms
    anti_affinity: dict[Pair, int] = field(default_factory=dict)  # existing pods matching a required anti term
    existing: dict[Pair, int] = field(default_factory=dict)  # existing pods' required anti terms matching the pod


class _Adjusted:
    """Counts with a few pairs changed (a node clone's pods against the counted node's), without copying."""
    __slots__ = ("base", "delta")

    def __init__(self, base: dict[Pair, int], delta: dict[Pair, int]):
        self.base, self.delta = base, delta

    def get(self, pair: Pair, default: int = 0) -> int:
        return self.base.get(pair, 0) + self.delta.get(pair, 0)

    def __len__(self) -> int:
        """Pairs with a non-zero count (the base holds no zeros)."""
        count = len(self.base)
        for pair, change in self.delta.items():
            before = self.base.get(pair, 0)
            count += (before + change != 0) - (before != 0)
        return count


def _add(counts: dict[Pair, int], pair: Pair, change: int) -> None:
    value = counts.get(pair, 0) + change
    if value:
        counts[pair] = value
    else:
        counts.pop(pair, None)


def _matches_all(terms, namespace: str, labels: dict) -> bool:
    """podMatchesAllAffinityTerms: False for no terms."""
    if not terms:
        return False
    for term in terms:
        if not term.matches(namespace, labels, _EMPTY):
            return False
    return True


def _count_pod(state: _FilterState, pod, node_labels: dict, change: int, pod_namespace: str, pod_labels: dict,
               affinity, anti, existing) -> None:
    """Account one existing pod (on a node labelled `node_labels`) in the three counts, `change` times."""
    terms = state.terms
    if existing is not None and pod.affinity is not None:
        for term in pod.affinity.required_anti_affinity:
            if term.matches(pod_namespace, pod_labels, state.namespace_labels):
                value = node_labels.get(term.topology_key)
                if value is not None:
                    _add(existing, (term.topology_key, value), change)
    other_namespace, other_labels = pod.namespace, pod.labels
    if affinity is not None and _matches_all(terms.required_affinity, other_namespace, other_labels):
        for term in terms.required_affinity:
            value = node_labels.get(term.topology_key)
            if value is not None:
                _add(affinity, (term.topology_key, value), change)
    if anti is not None:
        for term in terms.required_anti_affinity:
            if term.matches(other_namespace, other_labels, _EMPTY):
                value = node_labels.get(term.topology_key)
                if value is not None:
                    _add(anti, (term.topology_key, value), change)


class InterPodAffinity:
    name = "InterPodAffinity"
    events = frozenset({NODE_ADD, NODE_UPDATE, ASSIGNED_POD_ADD, ASSIGNED_POD_UPDATE, ASSIGNED_POD_DELETE})

    def __init__(self, hard_pod_affinity_weight: int = DEFAULT_HARD_POD_AFFINITY_WEIGHT,
                 ignore_preferred_terms_of_existing_pods: bool = False):
        self.hard_pod_affinity_weight = hard_pod_affinity_weight
        self.ignore_preferred_terms_of_existing_pods = ignore_preferred_terms_of_existing_pods
        self.namespaces = None  # the Namespace informer's store, given by the scheduler

    def use_namespaces(self, store) -> None:
        """The Namespace informer's store (read only), for namespaceSelectors."""
        self.namespaces = store

    # --- namespaces ----------------------------------------------------------------------------------------------
    def _namespace_labels(self, name: str) -> dict:
        namespace = self.namespaces.get(name) if self.namespaces is not None else None
        return ((namespace or {}).get("metadata") or {}).get("labels") or {}

    def _resolved(self, term: AffinityTerm) -> AffinityTerm:
        """mergeAffinityTermNamespacesIfNotEmpty: the names of the namespaces its selector matches added to its
        namespaces, the selector then dropped; an empty selector ({}: every namespace) is kept as it is."""
        selector = term.namespace_selector
        if selector.nothing or selector.empty():
            return term
        names = {(ns.get("metadata") or {}).get("name", "") for ns in (self.namespaces.list() if self.namespaces
                                                                        is not None else ())
                 if selector.matches((ns.get("metadata") or {}).get("labels"))}
        return replace(term, namespaces=term.namespaces | names, namespace_selector=NOTHING)

    def _resolved_terms(self, terms: PodAffinityTerms) -> PodAffinityTerms:
        def weighted(items):
            return tuple(WeightedTerm(item.weight, self._resolved(item.term)) for item in items)
        return PodAffinityTerms(tuple(map(self._resolved, terms.required_affinity)),
                                tuple(map(self._resolved, terms.required_anti_affinity)),
                                weighted(terms.preferred_affinity), weighted(terms.preferred_anti_affinity))

    # --- filter --------------------------------------------------------------------------------------------------
    def pre_filter(self, state, pod, nodes):
        state[_ALL_NODES] = nodes
        terms = pod.affinity
        if terms is not None and terms.error:
            return unschedulable(self.name, f"invalid pod affinity: {terms.error}", resolvable=False)
        namespace_labels = self._namespace_labels(pod.namespace)
        terms = self._resolved_terms(terms) if terms is not None else PodAffinityTerms()
        counts = _FilterState(terms, namespace_labels)
        namespace, labels = pod.namespace, pod.labels
        existing = counts.existing
        for node in nodes:  # getExistingAntiAffinityCounts
            if node.pods_with_required_anti_affinity:
                node_labels = node.labels
                for other in node.pods_with_required_anti_affinity.values():
                    _count_pod(counts, other, node_labels, 1, namespace, labels, None, None, existing)
        if terms.required_affinity or terms.required_anti_affinity:  # getIncomingAffinityAntiAffinityCounts
            affinity = counts.affinity if terms.required_affinity else None
            anti = counts.anti_affinity if terms.required_anti_affinity else None
            for node in nodes:
                if node.pods:
                    node_labels = node.labels
                    for other in node.pods.values():
                        _count_pod(counts, other, node_labels, 1, namespace, labels, affinity, anti, None)
        elif not existing:
            return SKIPPED
        state[_FILTER_STATE] = counts
        return OK

    def filter(self, state, pod, node):
        counts: _FilterState = state[_FILTER_STATE]
        affinity, anti, existing = counts.affinity, counts.anti_affinity, counts.existing
        if node.origin is not None:
            affinity, anti, existing = self._adjusted(counts, pod, node)
        labels = node.labels
        terms = counts.terms
        if terms.required_affinity and not self._satisfies_affinity(terms, affinity, pod, labels):
            return unschedulable(self.name, AFFINITY_MISMATCH, resolvable=False)
        if len(anti):
            for term in terms.required_anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and anti.get((term.topology_key, value), 0) > 0:
                    return unschedulable(self.name, ANTI_AFFINITY_MISMATCH)
        if len(existing):
            for pair in labels.items():
                if existing.get(pair, 0) > 0:
                    return unschedulable(self.name, EXISTING_ANTI_AFFINITY_MISMATCH)
        return None

    @staticmethod
    def _satisfies_affinity(terms: PodAffinityTerms, affinity, pod, labels: dict) -> bool:
        pods_exist = True
        for term in terms.required_affinity:
            value = labels.get(term.topology_key)
            if value is None:
                return False  # every topology key must be on the node
            if affinity.get((term.topology_key, value), 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # The first pod of a group whose affinity selects itself: no pod anywhere matches yet.
        return not len(affinity) and _matches_all(terms.required_affinity, pod.namespace, pod.labels)

    def _adjusted(self, counts: _FilterState, pod, node) -> tuple[_Adjusted, _Adjusted, _Adjusted]:
        """The counts as they would be with `node`'s pods instead of its origin's (AddPod/RemovePod)."""
        origin = node.origin
        deltas: tuple[dict, dict, dict] = ({}, {}, {})
        terms = counts.terms
        affinity = deltas[0] if terms.required_affinity else None
        anti = deltas[1] if terms.required_anti_affinity else None
        for pods, others, change in ((node.pods, origin.pods, 1), (origin.pods, node.pods, -1)):
            for key, other in pods.items():
                if key not in others:
                    _count_pod(counts, other, node.labels, change, pod.namespace, pod.labels, affinity, anti,
                               deltas[2])
        return (_Adjusted(counts.affinity, deltas[0]), _Adjusted(counts.anti_affinity, deltas[1]),
                _Adjusted(counts.existing, deltas[2]))

    # --- score ---------------------------------------------------------------------------------------------------
    def pre_score(self, state, pod, nodes):
        terms = pod.affinity
        has_preferred = terms is not None and bool(terms.preferred_affinity or terms.preferred_anti_affinity)
        if self.ignore_preferred_terms_of_existing_pods and not has_preferred:
            return SKIPPED
        if terms is not None and terms.error:
            return SKIPPED  # PreFilter rejected it already
        mine = self._resolved_terms(terms) if has_preferred else PodAffinityTerms()
        namespace_labels = self._namespace_labels(pod.namespace)
        namespace, labels = pod.namespace, pod.labels
        hard_weight = self.hard_pod_affinity_weight
        with_theirs = not self.ignore_preferred_terms_of_existing_pods
        scores: dict[str, dict[str, int]] = {}

        def add(term: AffinityTerm, weight: int, node_labels: dict) -> None:
            value = node_labels.get(term.topology_key)
            if value is not None:
                values = scores.setdefault(term.topology_key, {})
                values[value] = values.get(value, 0) + weight

        for node in state.get(_ALL_NODES, nodes):  # existing pods on every node count, not only feasible ones
            others = node.pods if has_preferred else node.pods_with_affinity
            if not others or not node.labels:
                continue
            node_labels = node.labels
            for other in others.values():
                for item in mine.preferred_affinity:
                    if item.term.matches(other.namespace, other.labels, _EMPTY):
                        add(item.term, item.weight, node_labels)
                for item in mine.preferred_anti_affinity:
                    if item.term.matches(other.namespace, other.labels, _EMPTY):
                        add(item.term, -item.weight, node_labels)
                theirs = other.affinity
                if theirs is None:
                    continue
                if hard_weight > 0:
                    for term in theirs.required_affinity:
                        if term.matches(namespace, labels, namespace_labels):
                            add(term, hard_weight, node_labels)
                if with_theirs:
                    for item in theirs.preferred_affinity:
                        if item.term.matches(namespace, labels, namespace_labels):
                            add(item.term, item.weight, node_labels)
                    for item in theirs.preferred_anti_affinity:
                        if item.term.matches(namespace, labels, namespace_labels):
                            add(item.term, -item.weight, node_labels)
        if not scores:
            return SKIPPED
        state[_SCORE_STATE] = scores
        return OK

    def score(self, state, pod, node) -> int:
        return self.score_all(state, pod, (node,))[0]

    def score_all(self, state, pod, nodes) -> list[int]:
        scores = state.get(_SCORE_STATE, _EMPTY)  # none: PreScore found nothing to score
        result = []
        for node in nodes:
            labels, total = node.labels, 0
            for key, values in scores.items():
                value = labels.get(key)
                if value is not None:
                    total += values.get(value, 0)
            result.append(total)
        return result

    def normalize(self, state, pod, nodes, scores) -> None:
        """Scaled linearly so the lowest node gets 0 and the highest 100 (all 0 when they are equal)."""
        if not scores:
            return
        low, high = min(scores), max(scores)
        spread = high - low
        for index, score in enumerate(scores):
            scores[index] = int(MAX_NODE_SCORE * (score - low) / spread) if spread > 0 else 0
