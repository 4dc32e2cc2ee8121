"""What the workload controllers share about pods and the objects they own (Kubernetes' controller_utils.go):
pods from a template, the pod-template-hash, readiness and availability, the order in which surplus pods are
deleted, int-or-percent arithmetic, claiming (adopting/releasing) children by selector, and expectations.

Everything here is pure (no API calls) except `claim`, which takes the patch function it needs.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kpy_components.api import meta, selectors
from kpy_components.api.errors import APIError

from ..controller import controller_ref, new_controller_ref

POD_TEMPLATE_HASH = "pod-template-hash"  # apps/v1 DefaultDeploymentUniqueLabelKey
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand: no vowels (no words), no 0/1/3 (no look-alikes)
EXPECTATIONS_TIMEOUT = 300.0  # seconds; a lost watch event must not block a controller for ever (as Kubernetes)


# --- names and hashes --------------------------------------------------------------------------------------------

def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(number: int) -> str:
    """rand.SafeEncodeString of the decimal digits: no vowels, so a hash never spells a word."""
    return "".join(SAFE_ALPHABET[int(digit)] for digit in str(number))


def template_hash(template: dict | None, collision_count: int | None = None) -> str:
    """ComputeHash: FNV-32a of the template (canonical JSON here; Go hashes its printed struct, so the values differ
    from Kubernetes' but are as stable) and the collision count, safe-encoded."""
    data = json.dumps(normalized_template(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(_fnv32a(data))


def normalized_template(template: dict | None) -> dict:
    """A copy without null metadata fields: clients built on Go structs send `creationTimestamp: null` (kubectl
    rollout undo does), which Kubernetes' typed comparison treats as absent."""
    copy = meta.deep_copy(template or {})
    metadata = copy.get("metadata")
    if isinstance(metadata, dict):
        for key in [k for k, v in metadata.items() if v is None]:
            del metadata[key]
        if not metadata:
            del copy["metadata"]
    return copy


def template_without_hash(template: dict | None) -> dict:
    """A normalized copy of a pod template without the pod-template-hash label (to compare ReplicaSets')."""
    copy = normalized_template(template)
    labels = (copy.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            copy["metadata"].pop("labels")
            if not copy["metadata"]:
                copy.pop("metadata")
    return copy


# --- pods from templates -----------------------------------------------------------------------------------------

def pod_from_template(template: dict, owner: dict, *, name: str | None = None, labels: dict | None = None,
                      annotations: dict | None = None) -> dict:
    """A Pod for `owner` from its pod template: the template's labels (+ `labels`), annotations, spec and the
    controller ownerReference; named `name`, else generateName `<owner>-` (the API server appends 5 random
    characters, trimming the prefix to fit)."""
    template_meta = template.get("metadata") or {}
    naming = {"name": name} if name else {"generateName": f"{meta.name_of(owner)}-"}
    metadata = {**naming, "namespace": meta.namespace_of(owner),
                "labels": {**(template_meta.get("labels") or {}), **(labels or {})},
                "ownerReferences": [new_controller_ref(owner)]}
    merged = {**(template_meta.get("annotations") or {}), **(annotations or {})}
    if merged:
        metadata["annotations"] = merged
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": meta.deep_copy(template.get("spec")
                                                                                            or {})}


# --- pod state ---------------------------------------------------------------------------------------------------

def condition(obj: dict, kind: str) -> dict | None:
    for entry in (obj.get("status") or {}).get("conditions") or ():
        if entry.get("type") == kind:
            return entry
    return None


def is_terminating(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def is_active(pod: dict) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def is_ready(pod: dict) -> bool:
    ready = condition(pod, "Ready")
    return bool(ready) and ready.get("status") == "True"


def _seconds(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    try:
        return meta.parse_rfc3339(timestamp).timestamp()
    except ValueError:
        return None


def ready_since(pod: dict) -> float | None:
    """When the pod last became Ready (epoch seconds), None if it is not ready."""
    if not is_ready(pod):
        return None
    return _seconds(condition(pod, "Ready").get("lastTransitionTime"))


def is_available(pod: dict, min_ready_seconds: int = 0, now: float | None = None) -> bool:
    """podutil.IsPodAvailable: ready for at least minReadySeconds (a ready pod without a transition time counts
    from the beginning of time, as Kubernetes does)."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = ready_since(pod)
    return since is None or since + min_ready_seconds <= (time.time() if now is None else now)


def seconds_until_available(pod: dict, min_ready_seconds: int, now: float | None = None) -> float | None:
    """For a ready pod not yet available, how long until it is (to requeue then); None otherwise."""
    since = ready_since(pod)
    if since is None or not min_ready_seconds:
        return None
    left = since + min_ready_seconds - (time.time() if now is None else now)
    return left if left > 0 else None


def deletion_order(pod: dict, rank: int = 0):
    """Sort key putting the pod to delete first at the front (controller.ActivePodsWithRanks): unscheduled before
    scheduled; Pending < Unknown < Running; not ready before ready; higher `rank` (more siblings on the same node)
    first; ready for less time first; more restarts first; newer first."""
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    phase_order = {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(pod), 0)
    ready = is_ready(pod)
    since = ready_since(pod) or 0.0
    restarts = max((s.get("restartCount", 0) for s in (pod.get("status") or {}).get("containerStatuses") or ()),
                   default=0)
    created = _seconds((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0
    return (scheduled, phase_order, ready, -rank, -since if ready else 0.0, -restarts, -created)


def pods_to_delete(pods: list[dict], count: int, related: Iterable[dict] = ()) -> list[dict]:
    """The `count` pods to delete first; `related` pods (all of the owner's siblings, e.g. every ReplicaSet of a
    Deployment) give each pod its rank: how many of them share its node."""
    if count <= 0:
        return []
    per_node: dict[str, int] = {}
    for pod in [*pods, *related]:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and is_active(pod):
            per_node[node] = per_node.get(node, 0) + 1
    ranked = sorted(pods, key=lambda p: deletion_order(p, per_node.get((p.get("spec") or {}).get("nodeName"), 0)))
    return ranked[:count]


# --- int-or-percent ----------------------------------------------------------------------------------------------

class IntOrPercentError(ValueError):
    """An int-or-string field that is neither an integer nor `<n>%`."""


def scaled_value(value: int | str | None, total: int, round_up: bool, default: int | str = 0) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, `N%` of total rounded up or down."""
    if value is None:
        value = default
    if isinstance(value, bool):
        raise IntOrPercentError(f"{value!r} is not an integer or a percentage")
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    if text.isdigit():
        return int(text)
    raise IntOrPercentError(f"{value!r} is not an integer or a percentage (like 25%)")


# --- owning children by selector ---------------------------------------------------------------------------------

def selector_of(obj: dict) -> selectors.LabelSelector:
    """The object's spec.selector; an invalid one selects nothing (the API server validated it already)."""
    try:
        return selectors.label_selector_from_dict((obj.get("spec") or {}).get("selector"))
    except APIError:
        return selectors.LabelSelector(nothing=True)


Patcher = Callable[[dict, dict], Awaitable[None]]  # (child, merge patch of its metadata) -> None


async def claim(owner: dict, candidates: Iterable[dict], patch: Patcher) -> list[dict]:
    """ControllerRefManager.Claim: the children `owner` controls after adopting orphans its selector matches and
    releasing children it no longer matches. Adoption and release are skipped while the owner is being deleted
    (then the garbage collector decides); a child that disappeared meanwhile is simply not claimed."""
    uid = meta.metadata(owner).get("uid")
    selector = selector_of(owner)
    deleting = is_terminating(owner)
    claimed = []
    for child in candidates:
        reference = controller_ref(child)
        matches = selector.matches(meta.labels_of(child))
        if reference is not None:
            if reference.get("uid") != uid:
                continue  # another controller's
            if matches or deleting:
                claimed.append(child)
                continue
            if is_terminating(child):
                continue
            await _patch_ignoring_gone(patch, child, {"metadata": {
                "ownerReferences": [r for r in meta.metadata(child).get("ownerReferences") or ()
                                    if r.get("uid") != uid],
                "uid": meta.metadata(child).get("uid")}})
            continue
        if not matches or deleting or is_terminating(child):
            continue
        adopted = await _patch_ignoring_gone(patch, child, {"metadata": {
            "ownerReferences": [*(meta.metadata(child).get("ownerReferences") or ()), new_controller_ref(owner)],
            "uid": meta.metadata(child).get("uid")}})
        if adopted:
            claimed.append(child)
    return claimed


async def _patch_ignoring_gone(patch: Patcher, child: dict, body: dict) -> bool:
    """The patch carries the child's uid as a precondition (a same-named replacement is not adopted)."""
    try:
        await patch(child, body)
    except APIError as error:
        if error.code in (404, 409, 422):
            return False
        raise
    return True


# --- expectations ------------------------------------------------------------------------------------------------

@dataclass
class _Expected:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)  # keys of pods we asked to delete, not yet seen gone
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """UIDTrackingControllerExpectations: what a controller created/deleted and has not yet seen in its informer.
    While expectations are pending, a sync must not count pods (the cache is behind its own writes), so a slow
    informer never causes double creates or deletes. Pending expectations expire after EXPECTATIONS_TIMEOUT."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT):
        self.timeout = timeout
        self._by_owner: dict[str, _Expected] = {}

    def satisfied(self, owner: str) -> bool:
        expected = self._by_owner.get(owner)
        if expected is None:
            return True
        if expected.adds <= 0 and not expected.deletes:
            return True
        return time.monotonic() - expected.since > self.timeout

    def expect_creations(self, owner: str, count: int) -> None:
        self._by_owner[owner] = _Expected(adds=count)

    def expect_deletions(self, owner: str, pod_keys: Iterable[str]) -> None:
        self._by_owner[owner] = _Expected(deletes=set(pod_keys))

    def creation_observed(self, owner: str) -> None:
        """A pod of `owner` appeared in the cache, or a create failed (so it never will)."""
        expected = self._by_owner.get(owner)
        if expected is not None and expected.adds > 0:
            expected.adds -= 1

    def deletion_observed(self, owner: str, pod_key: str) -> None:
        expected = self._by_owner.get(owner)
        if expected is not None:
            expected.deletes.discard(pod_key)

    def forget(self, owner: str) -> None:
        self._by_owner.pop(owner, None)


# --- status helpers ----------------------------------------------------------------------------------------------

def now_rfc3339(now: float | None = None) -> str:
    moment = datetime.now(timezone.utc) if now is None else datetime.fromtimestamp(now, timezone.utc)
    return meta.format_rfc3339(moment)


def set_condition(conditions: list[dict], new: dict, refresh: bool = False) -> list[dict]:
    """Conditions with `new` in place of its type's entry (SetDeploymentCondition): an entry with the same status
    and reason is kept as it is unless `refresh` (then its message and lastUpdateTime change); the same status
    keeps its lastTransitionTime."""
    result, placed = [], False
    for entry in conditions:
        if entry.get("type") != new["type"]:
            result.append(entry)
            continue
        placed = True
        if entry.get("status") == new["status"]:
            if entry.get("reason") == new.get("reason") and not refresh:
                result.append(entry)
                continue
            new = {**new, "lastTransitionTime": entry.get("lastTransitionTime", new.get("lastTransitionTime"))}
        result.append(new)
    return result if placed else [*result, new]


def remove_condition(conditions: list[dict], kind: str) -> list[dict]:
    return [entry for entry in conditions if entry.get("type") != kind]
