"""LimitRanger (plugin/pkg/admission/limitranger), on pod creation, for every LimitRange in the pod's namespace:
  - mutating: containers without a request/limit get the Container item's defaultRequest/default (as LimitRange
    defaulting fills them: default ← max, defaultRequest ← default ← min), recorded in the annotation
    kubernetes.io/limit-ranger;
  - validating: min, max and maxLimitRequestRatio per Container and per Pod (the containers' sums). Violations are
    one 403: `pods "web" is forbidden: maximum cpu usage per Container is 1, but limit is 2` (several: `[a, b]`).
PersistentVolumeClaim items bound a claim's requests (storage) on its creation and updates (expansion):
`minimum storage usage per PersistentVolumeClaim is 2Gi, but request is 1Gi`.
"""
from __future__ import annotations

from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.api.quantity import Quantity, QuantityError, resource_list
from kpy_components.apiserver.auth.authz import aggregate
from kpy_components.apiserver.http.context import InternalAPI

ANNOTATION = "kubernetes.io/limit-ranger"


def container_defaults(item: dict) -> tuple[dict, dict]:
    """(default limits, default requests) of a Container LimitRange item, with Kubernetes' LimitRange defaulting."""
    limits = {**(item.get("max") or {}), **(item.get("default") or {})}
    requests = {**(item.get("min") or {}), **limits, **(item.get("defaultRequest") or {})}
    return limits, requests


def apply_defaults(pod: dict, limits: dict, requests: dict) -> list[str]:
    """Fill missing requests/limits of every container; returns what was set, as the annotation words it."""
    notes = []
    for key in ("containers", "initContainers"):
        for container in (pod.get("spec") or {}).get(key) or []:
            resources = container.setdefault("resources", {})
            set_limits = _fill(resources, "limits", limits)
            set_requests = _fill(resources, "requests", requests)
            if set_requests:
                notes.append(f"{', '.join(set_requests)} request for {_kind(key)} {container.get('name')}")
            if set_limits:
                notes.append(f"{', '.join(set_limits)} limit for {_kind(key)} {container.get('name')}")
    return notes


def _kind(key: str) -> str:
    return "init container" if key == "initContainers" else "container"


def _fill(resources: dict, field: str, defaults: dict) -> list[str]:
    current = resources.get(field) or {}
    missing = sorted(name for name in defaults if name not in current)
    if missing:
        resources[field] = {**current, **{name: defaults[name] for name in missing}}
    return missing


# --- constraints (messages as limitranger's minConstraint / maxConstraint / limitRequestRatioConstraint) -----------

def _min(kind: str, name: str, enforced: Quantity, requests: dict, limits: dict) -> str | None:
    request, limit = requests.get(name), limits.get(name)
    if request is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if request < enforced:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {request}"
    if limit is not None and limit < enforced:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {limit}"
    return None


def _max(kind: str, name: str, enforced: Quantity, requests: dict, limits: dict) -> str | None:
    request, limit = requests.get(name), limits.get(name)
    if limit is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if limit > enforced:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {limit}"
    if request is not None and request > enforced:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {request}"
    return None


def _ratio(kind: str, name: str, enforced: Quantity, requests: dict, limits: dict) -> str | None:
    request, limit = requests.get(name), limits.get(name)
    prefix = f"{name} max limit to request ratio per {kind} is {enforced}"
    if request is None or request.value == 0:
        return f"{prefix}, but no request is specified or request is 0"
    if limit is None or limit.value == 0:
        return f"{prefix}, but no limit is specified or limit is 0"
    ratio = limit.value / request.value
    if ratio > enforced.value:
        return f"{prefix}, but provided ratio is {float(ratio):f}"
    return None


_CHECKS = (("min", _min), ("max", _max), ("maxLimitRequestRatio", _ratio))


def _sum(lists: list[dict]) -> dict:
    """Per resource, the total over all lists; a resource missing from any list is left out. Totals print as plain
    decimal quantities (`2147483648`, `1200m`), as upstream's sum builds them."""
    names = set().union(*lists) if lists else set()
    return {name: Quantity(sum(entry[name].value for entry in lists), "DecimalSI")
            for name in names if all(name in entry for entry in lists)}


def violations(limit_range: dict, pod: dict) -> list[str]:
    found = []
    containers = (pod.get("spec") or {}).get("containers") or []
    parsed = [(resource_list((c.get("resources") or {}).get("requests")),
               resource_list((c.get("resources") or {}).get("limits"))) for c in containers]
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        kind = item.get("type")
        if kind == "Container":
            targets = parsed
        elif kind == "Pod":
            targets = [(_sum([r for r, _ in parsed]), _sum([lim for _, lim in parsed]))]
        else:
            continue
        for field, check in _CHECKS:
            for name, enforced in resource_list(item.get(field)).items():
                for requests, limits in targets:
                    message = check(kind, name, enforced, requests, limits)
                    if message:
                        found.append(message)
    return found


def _max_request(kind: str, name: str, enforced: Quantity, requests: dict) -> str | None:
    request = requests.get(name)
    if request is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if request > enforced:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {request}"
    return None


def claim_violations(limit_range: dict, claim: dict) -> list[str]:
    """PersistentVolumeClaimValidateLimitFunc: min and max against the claim's requests (limits are ignored)."""
    requests = resource_list(((claim.get("spec") or {}).get("resources") or {}).get("requests"))
    found = []
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") != "PersistentVolumeClaim":
            continue
        found += [_min(item["type"], name, enforced, requests, {}) for name, enforced in
                  resource_list(item.get("min")).items()]
        found += [_max_request(item["type"], name, enforced, requests) for name, enforced in
                  resource_list(item.get("max")).items()]
    return [message for message in found if message]


class LimitRanger:
    def __init__(self, api: InternalAPI):
        self.api = api

    def _applies(self, attributes: Attributes) -> bool:
        return attributes.operation == "CREATE" and attributes.targets("", "pods") and attributes.obj is not None

    async def _ranges(self, attributes: Attributes) -> list[dict]:
        """From the watch cache, as Kubernetes' LimitRanger reads its lister."""
        return await self.api.list("", "limitranges", attributes.namespace, resource_version="0")

    async def admit(self, attributes: Attributes) -> None:
        if not self._applies(attributes):
            return
        notes = []
        for limit_range in await self._ranges(attributes):
            for item in (limit_range.get("spec") or {}).get("limits") or []:
                if item.get("type") == "Container":
                    notes += apply_defaults(attributes.obj, *container_defaults(item))
        if notes:
            annotations = attributes.obj.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)

    async def validate(self, attributes: Attributes) -> None:
        claim = attributes.operation in ("CREATE", "UPDATE") and attributes.obj is not None and \
            not attributes.info.subresource and attributes.targets("", "persistentvolumeclaims")
        if not claim and not self._applies(attributes):
            return
        check = claim_violations if claim else violations
        found = []
        try:
            for limit_range in await self._ranges(attributes):
                found += check(limit_range, attributes.obj)
        except QuantityError:
            return  # a malformed quantity: the pod's validation answers 422 naming the field
        if found:
            raise forbidden(attributes, aggregate(found))
