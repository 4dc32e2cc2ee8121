"""Node selection shared by the scheduler and the DaemonSet controller (Kubernetes' component-helpers):
spec.nodeSelector plus required node affinity, and preferred terms.

Node selector terms are ORed; within a term, matchExpressions (on labels) and matchFields (only `metadata.name`)
are ANDed. An empty term matches no node. Operators: In, NotIn, Exists, DoesNotExist, Gt, Lt. A node is anything
with `.labels` (dict) and `.name`.
"""
from __future__ import annotations

from kpy_components.api.selectors import Requirement

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


class Term:
    """One NodeSelectorTerm, compiled; a malformed term matches nothing (the API server should have refused it)."""

    def __init__(self, term: dict | None):
        term = term or {}
        self.labels = self._requirements(term.get("matchExpressions"))
        self.fields = self._requirements(term.get("matchFields"))
        self.valid = (self.labels is not None and self.fields is not None and bool(self.labels or self.fields)
                      and all(r.key == "metadata.name" for r in self.fields))

    @staticmethod
    def _requirements(expressions) -> list[Requirement] | None:
        result = []
        for expression in expressions or []:
            op = _OPERATORS.get(expression.get("operator"))
            values = tuple(str(v) for v in expression.get("values") or ())
            if op is None or (op in ("gt", "lt") and (len(values) != 1 or not values[0].lstrip("-").isdigit())):
                return None
            result.append(Requirement(expression.get("key", ""), op, values))
        return result

    def matches(self, node) -> bool:
        if not self.valid:
            return False
        labels = node.labels
        if not all(r.matches(labels) for r in self.labels):
            return False
        return not self.fields or all(r.matches({"metadata.name": node.name}) for r in self.fields)


class RequiredAffinity:
    """nodeSelector plus required node affinity of one pod."""

    def __init__(self, spec: dict):
        self.selector = spec.get("nodeSelector") or {}
        required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution")
        self.terms = None if required is None else [Term(t) for t in required.get("nodeSelectorTerms") or []]

    @property
    def empty(self) -> bool:
        return not self.selector and self.terms is None

    def matches(self, node) -> bool:
        labels = node.labels
        for key, value in self.selector.items():
            if labels.get(key) != value:
                return False
        return self.terms is None or any(term.matches(node) for term in self.terms)


def preferred_terms(spec: dict) -> list[tuple[int, Term]]:
    preferred = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution") or []
    return [(int(p.get("weight") or 0), Term(p.get("preference"))) for p in preferred if p.get("weight")]
