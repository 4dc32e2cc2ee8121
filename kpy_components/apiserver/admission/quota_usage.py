"""What an object charges against a ResourceQuota (k8s.io/kubernetes/pkg/quota/v1/evaluator/core).

Every object counts as `count/<resource>[.<group>]`; core kinds also under their legacy names (pods, services,
configmaps, secrets, persistentvolumeclaims, replicationcontrollers, resourcequotas). Pods that have not finished
charge compute: cpu/memory/ephemeral-storage = requests.*, and limits.* — the containers' sum, or the largest init
container when that is more. Services charge services.loadbalancers and services.nodeports. PersistentVolumeClaims
charge requests.storage, and with a class `<class>.storageclass.storage.k8s.io/requests.storage` and
`<class>.storageclass.storage.k8s.io/persistentvolumeclaims`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from kpy_components.api.meta import parse_rfc3339
from kpy_components.api.quantity import Quantity, resource_list
from kpy_components.api.storage import claim_class

LEGACY_COUNTS = {"pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "replicationcontrollers",
                 "resourcequotas"}
COMPUTE = ("cpu", "memory", "ephemeral-storage")
# If a quota tracks one of these, every container must say how much it wants (upstream's backward-compatible rule).
MUST_SPECIFY = {"cpu": "requests", "memory": "requests", "requests.cpu": "requests", "requests.memory": "requests",
                "limits.cpu": "limits", "limits.memory": "limits"}
CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
_ONE = Quantity.parse("1")
_ZERO = Quantity.parse("0")


def count_name(group: str, resource: str) -> str:
    return f"count/{resource}.{group}" if group else f"count/{resource}"


def tracks(group: str, resource: str, name: str) -> bool:
    """Whether `name` (a key of spec.hard) is charged by objects of this resource."""
    if name == count_name(group, resource) or (not group and name == resource and resource in LEGACY_COUNTS):
        return True
    if (group, resource) == ("", "pods"):
        return (name in COMPUTE or name.startswith(("requests.", "limits.", "hugepages-"))) and \
            not name.startswith("requests.storage")
    if (group, resource) == ("", "services"):
        return name in ("services.loadbalancers", "services.nodeports")
    if (group, resource) == ("", "persistentvolumeclaims"):
        return name == "requests.storage" or name.endswith((CLASS_SUFFIX + "requests.storage",
                                                           CLASS_SUFFIX + "persistentvolumeclaims"))
    return False


def _pod_finished(pod: dict, now: datetime) -> bool:
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    try:
        return bool(deleting) and parse_rfc3339(deleting) < now
    except ValueError:
        return False


def _pod_totals(pod: dict, field: str) -> dict[str, Quantity]:
    spec = pod.get("spec") or {}
    totals: dict[str, Quantity] = {}
    for container in spec.get("containers") or []:
        for name, value in resource_list((container.get("resources") or {}).get(field)).items():
            totals[name] = totals.get(name, _ZERO) + value
    for container in spec.get("initContainers") or []:
        for name, value in resource_list((container.get("resources") or {}).get(field)).items():
            totals[name] = max(totals.get(name, _ZERO), value)
    for name, value in resource_list(spec.get("overhead")).items():
        totals[name] = totals.get(name, _ZERO) + value
    return totals


def pod_usage(pod: dict, now: datetime | None = None) -> dict[str, Quantity]:
    usage = {"count/pods": _ONE}
    if _pod_finished(pod, now or datetime.now(timezone.utc)):
        return usage
    usage["pods"] = _ONE
    for name, value in _pod_totals(pod, "requests").items():
        usage[f"requests.{name}"] = value
        if name in COMPUTE or name.startswith("hugepages-"):
            usage[name] = value
    for name, value in _pod_totals(pod, "limits").items():
        usage[f"limits.{name}"] = value
    return usage


def usage(group: str, resource: str, obj: dict) -> dict[str, Quantity]:
    if (group, resource) == ("", "pods"):
        return pod_usage(obj)
    result = {count_name(group, resource): _ONE}
    if not group and resource in LEGACY_COUNTS:
        result[resource] = _ONE
    if (group, resource) == ("", "services"):
        spec = obj.get("spec") or {}
        if spec.get("type") == "LoadBalancer":
            result["services.loadbalancers"] = _ONE
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            result["services.nodeports"] = Quantity.parse(str(len(spec.get("ports") or [])))
    if (group, resource) == ("", "persistentvolumeclaims"):
        result.update(_claim_usage(obj))
    return result


def _claim_usage(claim: dict) -> dict[str, Quantity]:
    requested = resource_list(((claim.get("spec") or {}).get("resources") or {}).get("requests")).get("storage")
    class_name = claim_class(claim)
    result = {f"{class_name}{CLASS_SUFFIX}persistentvolumeclaims": _ONE} if class_name else {}
    if requested is not None:
        result["requests.storage"] = requested
        if class_name:
            result[f"{class_name}{CLASS_SUFFIX}requests.storage"] = requested
    return result


def missing_requests(pod: dict, tracked: set[str]) -> str:
    """`limits.cpu for: a,b; requests.cpu for: a` naming what each container leaves out, "" when nothing."""
    required = {name for name in tracked if name in MUST_SPECIFY}
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        resources = container.get("resources") or {}
        for name in required:
            field, base = MUST_SPECIFY[name], name.rpartition(".")[2]
            if base not in (resources.get(field) or {}):
                missing.setdefault(name, set()).add(container.get("name", ""))
    return "; ".join(f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing))


def matches_scopes(quota: dict, group: str, resource: str, obj: dict) -> bool:
    """A quota with scopes only charges pods in those scopes (Terminating, NotTerminating, BestEffort,
    NotBestEffort, PriorityClass)."""
    spec = quota.get("spec") or {}
    selectors = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    selectors += (spec.get("scopeSelector") or {}).get("matchExpressions") or []
    if not selectors:
        return True
    if (group, resource) != ("", "pods"):
        return False
    return all(_scope_matches(selector, obj) for selector in selectors)


def _scope_matches(selector: dict, pod: dict) -> bool:
    spec = pod.get("spec") or {}
    scope = selector.get("scopeName")
    terminating = isinstance(spec.get("activeDeadlineSeconds"), int) and spec["activeDeadlineSeconds"] >= 0
    best_effort = not any((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits")
                          for c in (spec.get("containers") or []) + (spec.get("initContainers") or []))
    if scope in ("Terminating", "NotTerminating"):
        return terminating == (scope == "Terminating")
    if scope in ("BestEffort", "NotBestEffort"):
        return best_effort == (scope == "BestEffort")
    if scope == "PriorityClass":
        value, operator = spec.get("priorityClassName") or "", selector.get("operator")
        values = selector.get("values") or []
        return {"Exists": bool(value), "DoesNotExist": not value, "In": value in values,
                "NotIn": value not in values}.get(operator, False)
    return False
