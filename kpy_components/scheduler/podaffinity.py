"""A pod's inter-pod (anti-)affinity terms, parsed once per pod version (kube-scheduler's framework.AffinityTerm,
built by NewPodInfo), for the InterPodAffinity plugin.

A term selects pods by namespace and labels: a pod matches when its namespace is in `namespaces` or its namespace's
labels match `namespace_selector`, and its labels match `selector`. As upstream: no `namespaces` and no
namespaceSelector mean the term's own pod's namespace; a missing (null) labelSelector or namespaceSelector matches
nothing, an empty one ({}) everything.

matchLabelKeys / mismatchLabelKeys (Kubernetes 1.31: beta, MatchLabelKeysInPodAffinity on by default): upstream's
API server merges them into the labelSelector when the pod is created (`key in (value)` / `key notin (value)` with
the value of the pod's own label; keys the pod lacks are ignored; nothing is merged into a null labelSelector).
kpy's API server stores them as given, so the merge is done here, from the pod's own labels, for the incoming pod and
for existing pods alike. (The difference: a pod whose labels change later is judged by its new values, where
upstream keeps those at creation.) A selector the API server already merged is unchanged by merging again.
"""
from __future__ import annotations

from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.selectors import LabelSelector, Requirement, label_selector_from_dict

NOTHING = LabelSelector(nothing=True)
_INTERN_LIMIT = 10_000  # distinct term sets kept for sharing (far more than a cluster's Deployments)


@dataclass(frozen=True)
class AffinityTerm:
    namespaces: frozenset[str]
    selector: LabelSelector
    topology_key: str
    namespace_selector: LabelSelector = NOTHING

    def matches(self, namespace: str, labels: dict, namespace_labels: dict) -> bool:
        """Whether a pod of `namespace` with `labels` (its namespace labelled `namespace_labels`) is selected."""
        if namespace in self.namespaces or self.namespace_selector.matches(namespace_labels):
            return self.selector.matches(labels)
        return False


@dataclass(frozen=True)
class WeightedTerm:
    weight: int
    term: AffinityTerm


@dataclass(frozen=True)
class PodAffinityTerms:
    """spec.affinity.podAffinity/podAntiAffinity of one pod. `error` names an invalid selector (the API server
    validates pods, so only a pod that bypassed it has one); its terms are then empty."""
    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[WeightedTerm, ...] = ()
    preferred_anti_affinity: tuple[WeightedTerm, ...] = ()
    error: str = ""


def _selector(term: dict, labels: dict) -> LabelSelector:
    raw = term.get("labelSelector")
    selector = label_selector_from_dict(raw)
    if raw is None:
        return selector
    extra = tuple(Requirement(key, "in", (labels[key],)) for key in term.get("matchLabelKeys") or () if key in labels)
    extra += tuple(Requirement(key, "notin", (labels[key],)) for key in term.get("mismatchLabelKeys") or ()
                   if key in labels)
    return LabelSelector(selector.requirements + extra) if extra else selector


def affinity_term(term: dict, namespace: str, labels: dict) -> AffinityTerm:
    """One PodAffinityTerm of a pod in `namespace` with `labels`; APIError 400 for an invalid selector."""
    names, namespace_selector = term.get("namespaces") or (), term.get("namespaceSelector")
    return AffinityTerm(
        namespaces=frozenset(names) if names or namespace_selector is not None else frozenset((namespace,)),
        selector=_selector(term, labels), topology_key=term.get("topologyKey") or "",
        namespace_selector=label_selector_from_dict(namespace_selector))


def pod_affinity_terms(spec: dict, namespace: str, labels: dict) -> PodAffinityTerms | None:
    """The pod's inter-pod affinity terms; None when it has none (most pods: one dict lookup)."""
    affinity = spec.get("affinity")
    if not affinity:
        return None
    positive, negative = affinity.get("podAffinity") or {}, affinity.get("podAntiAffinity") or {}
    if not positive and not negative:
        return None
    where = "spec.affinity"
    try:
        lists = []
        for kind, section in (("podAffinity", positive), ("podAntiAffinity", negative)):
            where = f"spec.affinity.{kind}.requiredDuringSchedulingIgnoredDuringExecution"
            lists.append(tuple(affinity_term(term, namespace, labels)
                               for term in section.get("requiredDuringSchedulingIgnoredDuringExecution") or ()))
        for kind, section in (("podAffinity", positive), ("podAntiAffinity", negative)):
            where = f"spec.affinity.{kind}.preferredDuringSchedulingIgnoredDuringExecution"
            lists.append(tuple(WeightedTerm(int(item.get("weight") or 0),
                                            affinity_term(item.get("podAffinityTerm") or {}, namespace, labels))
                               for item in section.get("preferredDuringSchedulingIgnoredDuringExecution") or ()))
    except (APIError, TypeError, ValueError, AttributeError) as error:
        return PodAffinityTerms(error=f"{where}: {error}")
    return _interned(PodAffinityTerms(*lists))


_INTERNED: dict[PodAffinityTerms, PodAffinityTerms] = {}


def _interned(terms: PodAffinityTerms) -> PodAffinityTerms:
    """One shared object per distinct value, so that a scheduling cycle can compute once per object (by id) what
    holds for all the pods of a Deployment. Only a cache for sharing: emptied when it grows past its limit (pods
    parsed later then get new objects, which costs some sharing, never correctness)."""
    found = _INTERNED.get(terms)
    if found is None:
        if len(_INTERNED) >= _INTERN_LIMIT:
            _INTERNED.clear()
        found = _INTERNED[terms] = terms
    return found
