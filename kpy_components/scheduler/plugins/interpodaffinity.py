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

Cost: PreFilter and PreScore work per group of pods, not per pod (podgroups.py: pods with the same namespace and
labels, pods with the same terms), with the groups the cache keeps current; so a cycle costs the number of groups
plus the nodes running pods of the groups the terms select, whatever the cluster size.

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
from ..podgroups import PodGroups

AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_MISMATCH = "node(s) didn't satisfy existing pods anti-affinity rules"
DEFAULT_HARD_POD_AFFINITY_WEIGHT = 1
_FILTER_STATE, _SCORE_STATE = "InterPodAffinity/filter", "InterPodAffinity/score"
_GROUPS = "InterPodAffinity/groups"  # the cycle's PodGroups, for PreScore (which is given the feasible nodes only)
_EMPTY: dict = {}

Pair = tuple[str, str]  # (topology key, value)


def _groups(nodes) -> PodGroups:
    """The cache's groups when `nodes` is its snapshot, else built from the nodes (unit tests, other callers)."""
    groups = getattr(nodes, "pod_groups", None)
    return groups if groups is not None else PodGroups.of(nodes)


class _Matcher:
    """What existing pods mean for the incoming pod's filter: per group of pods, the topology keys they count for."""

    def __init__(self, pod, terms: PodAffinityTerms, namespace_labels: dict):
        self.namespace, self.labels, self.namespace_labels = pod.namespace, pod.labels, namespace_labels
        self.terms = terms  # the incoming pod's, namespaceSelectors resolved into namespaces

    def repelling_keys(self, theirs: PodAffinityTerms) -> tuple[str, ...]:
        """Topology keys of existing pods' required anti-affinity terms that select the incoming pod."""
        return tuple(term.topology_key for term in theirs.required_anti_affinity
                     if term.matches(self.namespace, self.labels, self.namespace_labels))

    def selected_keys(self, signature: tuple) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """For existing pods of `signature`: (the keys of the incoming pod's required affinity terms if they match
        ALL of them, else (); the keys of its required anti-affinity terms they match)."""
        terms, (namespace, labels) = self.terms, signature
        labels = dict(labels)
        affinity = (tuple(t.topology_key for t in terms.required_affinity)
                    if _matches_all(terms.required_affinity, namespace, labels) else ())
        return affinity, tuple(t.topology_key for t in terms.required_anti_affinity
                               if t.matches(namespace, labels, _EMPTY))


@dataclass
class _FilterState:
    matcher: _Matcher
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


def _matches_all(terms, namespace: str, labels: dict) -> bool:
    """podMatchesAllAffinityTerms: False for no terms."""
    if not terms:
        return False
    for term in terms:
        if not term.matches(namespace, labels, _EMPTY):
            return False
    return True


def _count(counts: dict[Pair, int], keys: tuple[str, ...], node_labels: dict, change: int) -> None:
    """Add `change` to the pair of each of `keys` the node has (dropping pairs that reach 0, as upstream)."""
    for key in keys:
        value = node_labels.get(key)
        if value is not None:
            pair = (key, value)
            total = counts.get(pair, 0) + change
            if total:
                counts[pair] = total
            else:
                del counts[pair]


def _count_existing(matcher: _Matcher, groups: PodGroups, existing: dict[Pair, int]) -> None:
    """getExistingAntiAffinityCounts: existing pods' required anti-affinity terms selecting the incoming pod."""
    for theirs, nodes in groups.by_terms.values():
        if theirs.required_anti_affinity:
            keys = matcher.repelling_keys(theirs)
            if keys:
                for node, pods in nodes.items():
                    _count(existing, keys, node.labels, pods)


def _count_incoming(matcher: _Matcher, groups: PodGroups, affinity: dict[Pair, int], anti: dict[Pair, int]) -> None:
    """getIncomingAffinityAntiAffinityCounts: existing pods the incoming pod's required terms select."""
    for signature, nodes in groups.by_signature.items():
        keys, anti_keys = matcher.selected_keys(signature)
        for found, counts in ((keys, affinity), (anti_keys, anti)):
            if found:
                for node, pods in nodes.items():
                    _count(counts, found, node.labels, pods)


class _Weights:
    """What existing pods mean for the incoming pod's score: per group of pods, (topology key, weight) pairs."""

    def __init__(self, pod, terms: PodAffinityTerms, namespace_labels: dict, hard_pod_affinity_weight: int):
        self.namespace, self.labels, self.namespace_labels = pod.namespace, pod.labels, namespace_labels
        self.terms, self.hard_weight = terms, hard_pod_affinity_weight

    def mine(self, signature: tuple) -> tuple[tuple[str, int], ...]:
        """For existing pods of `signature`: (key, +weight) per preferred affinity term of the incoming pod they
        match, (key, -weight) per preferred anti-affinity term."""
        namespace, labels = signature[0], dict(signature[1])
        return tuple((item.term.topology_key, sign * item.weight)
                     for items, sign in ((self.terms.preferred_affinity, 1), (self.terms.preferred_anti_affinity, -1))
                     for item in items if item.term.matches(namespace, labels, _EMPTY))

    def theirs(self, terms: PodAffinityTerms) -> tuple[tuple[str, int], ...]:
        """From existing pods' `terms` that select the incoming pod: (key, hardPodAffinityWeight) per required
        affinity term (when that weight is > 0), (key, +weight) per preferred affinity term, (key, -weight) per
        preferred anti-affinity term."""
        weighted = [(self.hard_weight, term) for term in terms.required_affinity] if self.hard_weight > 0 else []
        weighted += [(item.weight, item.term) for item in terms.preferred_affinity]
        weighted += [(-item.weight, item.term) for item in terms.preferred_anti_affinity]
        return tuple((term.topology_key, weight) for weight, term in weighted
                     if term.matches(self.namespace, self.labels, self.namespace_labels))


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
        groups = state[_GROUPS] = _groups(nodes)
        terms = pod.affinity
        if terms is not None and terms.error:
            return unschedulable(self.name, f"invalid pod affinity: {terms.error}", resolvable=False)
        terms = self._resolved_terms(terms) if terms is not None else PodAffinityTerms()
        counts = _FilterState(_Matcher(pod, terms, self._namespace_labels(pod.namespace)))
        _count_existing(counts.matcher, groups, counts.existing)
        if terms.required_affinity or terms.required_anti_affinity:
            _count_incoming(counts.matcher, groups, counts.affinity, counts.anti_affinity)
        elif not counts.existing:
            return SKIPPED
        state[_FILTER_STATE] = counts
        return OK

    def filter(self, state, pod, node):
        counts: _FilterState = state[_FILTER_STATE]
        affinity, anti, existing = counts.affinity, counts.anti_affinity, counts.existing
        if node.origin is not None:
            affinity, anti, existing = self._adjusted(counts, node)
        labels = node.labels
        terms = counts.matcher.terms
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

    @staticmethod
    def _adjusted(counts: _FilterState, node) -> tuple[_Adjusted, _Adjusted, _Adjusted]:
        """The counts as they would be with `node`'s pods instead of its origin's (AddPod/RemovePod)."""
        matcher, origin, labels = counts.matcher, node.origin, node.labels
        affinity, anti, existing = {}, {}, {}
        for pods, others, change in ((node.pods, origin.pods, 1), (origin.pods, node.pods, -1)):
            for key, other in pods.items():
                if key in others:
                    continue
                if other.affinity is not None and other.affinity.required_anti_affinity:
                    _count(existing, matcher.repelling_keys(other.affinity), labels, change)
                keys, anti_keys = matcher.selected_keys(other.signature)
                _count(affinity, keys, labels, change)
                _count(anti, anti_keys, labels, change)
        return (_Adjusted(counts.affinity, affinity), _Adjusted(counts.anti_affinity, anti),
                _Adjusted(counts.existing, existing))

    # --- score ---------------------------------------------------------------------------------------------------
    def pre_score(self, state, pod, nodes):
        terms = pod.affinity
        has_preferred = terms is not None and bool(terms.preferred_affinity or terms.preferred_anti_affinity)
        if self.ignore_preferred_terms_of_existing_pods and not has_preferred:
            return SKIPPED
        if terms is not None and terms.error:
            return SKIPPED  # PreFilter rejected it already
        weights = _Weights(pod, self._resolved_terms(terms) if has_preferred else PodAffinityTerms(),
                           self._namespace_labels(pod.namespace), self.hard_pod_affinity_weight)
        groups = state.get(_GROUPS) or _groups(nodes)  # existing pods on every node count, not only feasible ones
        scores: dict[str, dict[str, int]] = {}
        found = [(weights.mine(signature), where) for signature, where in groups.by_signature.items()] \
            if has_preferred else []
        found += [(weights.theirs(theirs), where) for theirs, where in groups.by_terms.values()]
        for pairs, where in found:
            for key, weight in pairs:
                values = scores.setdefault(key, {})
                for node, pods in where.items():
                    value = node.labels.get(key)
                    if value is not None:
                        values[value] = values.get(value, 0) + weight * pods
                if not values:
                    del scores[key]
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
