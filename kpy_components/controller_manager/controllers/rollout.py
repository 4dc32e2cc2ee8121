"""The Deployment controller's arithmetic, pure (Kubernetes' pkg/controller/deployment/util and the sync/rolling
steps that only decide numbers): revisions, the new ReplicaSet's size under maxSurge, how far old ReplicaSets may
shrink under maxUnavailable, proportional scaling, status and the Available/Progressing conditions.

ReplicaSets and Deployments are the API's dicts. Functions that decide return plans `[(replicaset, new_size)]`;
the controller carries them out.
"""
from __future__ import annotations

import time

from kpy_components.api import meta

from . import pods as podutil

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations that are not copied onto its ReplicaSets (and that `kubectl rollout undo` keeps).
SKIPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                                 DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"})
MAX_REVISION_HISTORY_CHARS = 2000
NO_DEADLINE = 2147483647  # progressDeadlineSeconds = MaxInt32 means none

# Progressing condition reasons (deploymentutil), as `kubectl rollout status` and users read them.
NEW_RS_CREATED, FOUND_NEW_RS, RS_UPDATED = "NewReplicaSetCreated", "FoundNewReplicaSet", "ReplicaSetUpdated"
NEW_RS_AVAILABLE, TIMED_OUT = "NewReplicaSetAvailable", "ProgressDeadlineExceeded"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"

Plan = list[tuple[dict, int]]


# --- reading objects ---------------------------------------------------------------------------------------------

def replicas(obj: dict | None) -> int:
    return ((obj or {}).get("spec") or {}).get("replicas", 1) if obj is not None else 0


def status_count(obj: dict | None, field: str) -> int:
    return ((obj or {}).get("status") or {}).get(field) or 0


def revision(rs: dict) -> int:
    try:
        return int(meta.annotations_of(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def creation_order(rs: dict) -> tuple:
    """ReplicaSetsByCreationTimestamp: oldest first, then by name."""
    return ((rs.get("metadata") or {}).get("creationTimestamp") or "", meta.name_of(rs))


def is_rolling(deployment: dict) -> bool:
    return ((deployment.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def active(replica_sets: list[dict]) -> list[dict]:
    return [rs for rs in replica_sets if rs is not None and replicas(rs) > 0]


def total_replicas(replica_sets: list[dict]) -> int:
    return sum(replicas(rs) for rs in replica_sets if rs is not None)


def total_status(replica_sets: list[dict], field: str) -> int:
    return sum(status_count(rs, field) for rs in replica_sets if rs is not None)


def find_new(deployment: dict, replica_sets: list[dict]) -> dict | None:
    """The oldest ReplicaSet whose template equals the Deployment's, ignoring pod-template-hash (FindNewReplicaSet;
    oldest, so a hash collision resolves the same way every time)."""
    wanted = podutil.template_without_hash((deployment.get("spec") or {}).get("template"))
    for rs in sorted(replica_sets, key=creation_order):
        if podutil.template_without_hash((rs.get("spec") or {}).get("template")) == wanted:
            return rs
    return None


# --- maxSurge / maxUnavailable -----------------------------------------------------------------------------------

def fenceposts(deployment: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas: surge rounds up, unavailable down; both zero
    would deadlock, so unavailable becomes 1 (ResolveFenceposts). Raises IntOrPercentError for bad values."""
    if not is_rolling(deployment):
        return 0, 0
    rolling = ((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(deployment)
    surge = podutil.scaled_value(rolling.get("maxSurge"), desired, True, "25%")
    unavailable = podutil.scaled_value(rolling.get("maxUnavailable"), desired, False, "25%")
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: dict) -> int:
    return fenceposts(deployment)[0]


def max_unavailable(deployment: dict) -> int:
    """MaxUnavailable: never more than spec.replicas; 0 for Recreate or no replicas."""
    desired = replicas(deployment)
    if not is_rolling(deployment) or desired == 0:
        return 0
    return min(fenceposts(deployment)[1], desired)


def new_rs_replicas(deployment: dict, all_rss: list[dict], new_rs: dict | None) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be now. Rolling: grow by what maxSurge leaves room for,
    up to spec.replicas; Recreate: spec.replicas at once (old ones are gone by then)."""
    desired = replicas(deployment)
    if not is_rolling(deployment):
        return desired
    current_new = replicas(new_rs) if new_rs is not None else 0
    room = desired + max_surge(deployment) - total_replicas(all_rss)
    if room <= 0:
        return current_new
    return current_new + min(room, desired - current_new)


def available_lower_bound(replica_sets: list[dict]) -> int:
    """Available pods counted as min(status.availableReplicas, spec.replicas) per ReplicaSet: right after a scale
    down the status still counts pods about to be deleted; Kubernetes counts them, which lets two quick syncs
    remove more than maxUnavailable allows. Counting them out keeps the guarantee."""
    return sum(min(status_count(rs, "availableReplicas"), replicas(rs)) for rs in replica_sets if rs is not None)


def old_scale_down_plan(deployment: dict, all_rss: list[dict], old_rss: list[dict], new_rs: dict | None) -> Plan:
    """reconcileOldReplicaSets: shrink old ReplicaSets as far as maxUnavailable allows — first their unavailable
    pods (cleanupUnhealthyReplicas), then available ones oldest ReplicaSet first
    (scaleDownOldReplicaSetsForRollingUpdate)."""
    old_rss = active(old_rss)
    if not old_rss:
        return []
    min_available = replicas(deployment) - max_unavailable(deployment)
    new_unavailable = replicas(new_rs) - min(status_count(new_rs, "availableReplicas"), replicas(new_rs)) \
        if new_rs is not None else 0
    max_scaled_down = total_replicas(all_rss) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    sizes = {id(rs): replicas(rs) for rs in old_rss}
    ordered = sorted(old_rss, key=creation_order)
    cleaned = 0
    for rs in ordered:  # unavailable pods of old ReplicaSets cost nothing to remove
        if cleaned >= max_scaled_down:
            break
        unhealthy = sizes[id(rs)] - min(status_count(rs, "availableReplicas"), sizes[id(rs)])
        step = min(max_scaled_down - cleaned, unhealthy)
        sizes[id(rs)] -= step
        cleaned += step
    others = [rs for rs in all_rss if rs is not None and id(rs) not in sizes]
    available = available_lower_bound(others) + sum(min(status_count(rs, "availableReplicas"), sizes[id(rs)])
                                                    for rs in old_rss)
    to_scale_down = available - min_available
    scaled = 0
    for rs in ordered:
        if scaled >= to_scale_down:
            break
        step = min(sizes[id(rs)], to_scale_down - scaled)
        sizes[id(rs)] -= step
        scaled += step
    return [(rs, sizes[id(rs)]) for rs in ordered if sizes[id(rs)] != replicas(rs)]


# --- proportional scaling ----------------------------------------------------------------------------------------

def _annotation_int(rs: dict, name: str) -> int | None:
    try:
        return int(meta.annotations_of(rs)[name])
    except (KeyError, ValueError):
        return None


def is_scaling_event(deployment: dict, replica_sets: list[dict]) -> bool:
    """An active ReplicaSet was sized for another spec.replicas (its desired-replicas annotation)."""
    desired = replicas(deployment)
    return any(_annotation_int(rs, DESIRED_REPLICAS) not in (None, desired) for rs in active(replica_sets))


def is_saturated(deployment: dict, rs: dict | None) -> bool:
    desired = replicas(deployment)
    return (rs is not None and _annotation_int(rs, DESIRED_REPLICAS) == desired
            and status_count(rs, "availableReplicas") == desired and replicas(rs) == desired)


def _round_half_away(value: float) -> int:
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


def scale_plan(deployment: dict, new_rs: dict | None, old_rss: list[dict]) -> Plan:
    """dc.scale: after spec.replicas changed. One active ReplicaSet (or none) takes the new size; a saturated new
    one means the old ones go to 0; during a rolling update the difference is spread over the active ReplicaSets
    in proportion to their size (the largest takes the rounding leftover)."""
    desired = replicas(deployment)
    everything = ([new_rs] if new_rs is not None else []) + old_rss
    running = active(everything)
    if len(running) <= 1:
        target = running[0] if running else (new_rs or (sorted(old_rss, key=creation_order)[-1] if old_rss
                                                       else None))
        return [(target, desired)] if target is not None and replicas(target) != desired else []
    if is_saturated(deployment, new_rs):
        return [(rs, 0) for rs in active(old_rss)]
    if not is_rolling(deployment):
        return []
    surge = max_surge(deployment)
    allowed = desired + surge if desired > 0 else 0
    to_add = allowed - total_replicas(running)
    if to_add == 0:
        return []
    newer_first = sorted(running, key=creation_order, reverse=to_add > 0)
    ordered = sorted(newer_first, key=replicas, reverse=True)  # stable: ties stay newer (or older) first
    sizes, added = {}, 0
    for rs in ordered:
        share = _proportion(rs, deployment, to_add, added, desired + surge)
        sizes[id(rs)] = replicas(rs) + share
        added += share
    first = ordered[0]
    sizes[id(first)] = max(0, sizes[id(first)] + to_add - added)
    return [(rs, sizes[id(rs)]) for rs in ordered]


def _proportion(rs: dict, deployment: dict, to_add: int, added: int, deployment_total: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(deployment) == 0:
        fraction = -replicas(rs)
    else:
        annotated = _annotation_int(rs, MAX_REPLICAS) or status_count(deployment, "replicas")
        fraction = (_round_half_away(replicas(rs) * deployment_total / annotated) - replicas(rs)) if annotated \
            else 0
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# --- annotations -------------------------------------------------------------------------------------------------

def replicas_annotations(deployment: dict) -> dict[str, str]:
    desired = replicas(deployment)
    return {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(desired + max_surge(deployment))}


def new_rs_annotations(deployment: dict, rs_annotations: dict, new_revision: int) -> dict[str, str]:
    """SetNewReplicaSetAnnotations: the Deployment's annotations (but the skipped ones) copied over, and the
    revision raised to `new_revision` with the one it replaces appended to revision-history."""
    result = dict(rs_annotations)
    for key, value in meta.annotations_of(deployment).items():
        if key not in SKIPPED_ANNOTATIONS:
            result[key] = value
    old = rs_annotations.get(REVISION)
    try:
        old_number = int(old) if old is not None else 0
    except ValueError:
        old_number = 0
    if old_number < new_revision:
        result[REVISION] = str(new_revision)
        if old is not None:
            history = [entry for entry in result.get(REVISION_HISTORY, "").split(",") if entry] + [old]
            while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            result[REVISION_HISTORY] = ",".join(history)
    return result


def cleanup_candidates(deployment: dict, old_rss: list[dict]) -> list[dict]:
    """Old ReplicaSets beyond revisionHistoryLimit, lowest revision first, that are empty and settled."""
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not podutil.is_terminating(rs)]
    surplus = len(alive) - limit
    if surplus <= 0:
        return []
    ordered = sorted(alive, key=lambda rs: (revision(rs), creation_order(rs)))[:surplus]
    return [rs for rs in ordered if status_count(rs, "replicas") == 0 and replicas(rs) == 0
            and meta.metadata(rs).get("generation", 0) <= status_count(rs, "observedGeneration")]


# --- status and conditions ---------------------------------------------------------------------------------------

def has_progress_deadline(deployment: dict) -> bool:
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and deadline != NO_DEADLINE


def new_condition(kind: str, status: str, reason: str, message: str, now: float | None) -> dict:
    stamp = podutil.now_rfc3339(now)
    return {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def calculate_status(deployment: dict, all_rss: list[dict], new_rs: dict | None, now: float | None = None) -> dict:
    """calculateStatus: counts from the ReplicaSets' statuses and the Available condition."""
    available = total_status(all_rss, "availableReplicas")
    status = {key: value for key, value in (deployment.get("status") or {}).items()
              if key in ("collisionCount", "conditions")}
    status.update({
        "observedGeneration": meta.metadata(deployment).get("generation", 0),
        "replicas": total_status(all_rss, "replicas"),
        "updatedReplicas": status_count(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": total_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total_replicas(all_rss) - available)})
    for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
        if not status[field]:
            del status[field]  # omitempty, as the API serves them
    if available >= replicas(deployment) - max_unavailable(deployment):
        condition = new_condition("Available", "True", "MinimumReplicasAvailable",
                               "Deployment has minimum availability.", now)
    else:
        condition = new_condition("Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.", now)
    status["conditions"] = podutil.set_condition(status.get("conditions") or [], condition)
    return status


def is_complete(deployment: dict, status: dict) -> bool:
    """DeploymentComplete: every replica updated and available, and the latest spec observed."""
    desired = replicas(deployment)
    return (status.get("updatedReplicas", 0) == desired and status.get("replicas", 0) == desired
            and status.get("availableReplicas", 0) == desired
            and status.get("observedGeneration", 0) >= meta.metadata(deployment).get("generation", 0))


def is_progressing(deployment: dict, status: dict) -> bool:
    old = deployment.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def _progressing(status: dict) -> dict | None:
    return podutil.condition({"status": status}, "Progressing")


def seconds_left(deployment: dict, status: dict, now: float | None = None) -> float | None:
    """Until the progress deadline of a rollout still in progress (requeueStuckDeployment); None when there is
    none to watch."""
    current = _progressing(status)
    if (not has_progress_deadline(deployment) or current is None
            or current.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT) or is_complete(deployment, status)):
        return None
    try:
        since = meta.parse_rfc3339(current.get("lastUpdateTime", "")).timestamp()
    except ValueError:
        return None
    return since + deployment["spec"]["progressDeadlineSeconds"] - (time.time() if now is None else now)


def timed_out(deployment: dict, status: dict, now: float | None = None) -> bool:
    """DeploymentTimedOut: no progress recorded for progressDeadlineSeconds (or the condition says so)."""
    current = _progressing(status)
    if current is None or current.get("reason") == NEW_RS_AVAILABLE:
        return False
    if current.get("reason") == TIMED_OUT:
        return True
    try:
        since = meta.parse_rfc3339(current.get("lastUpdateTime", "")).timestamp()
    except ValueError:
        return False
    return since + deployment["spec"]["progressDeadlineSeconds"] < (time.time() if now is None else now)


def rollout_status(deployment: dict, status: dict, new_rs: dict | None, now: float | None = None) -> dict:
    """syncRolloutStatus: the Progressing condition of a rollout — NewReplicaSetAvailable when complete,
    ReplicaSetUpdated (refreshed) while it makes progress, ProgressDeadlineExceeded once it made none for
    progressDeadlineSeconds — and ReplicaFailure copied from the ReplicaSets."""
    conditions = list(status.get("conditions") or [])
    current = _progressing(status)
    name = meta.name_of(new_rs) if new_rs is not None else ""
    if not has_progress_deadline(deployment):
        conditions = podutil.remove_condition(conditions, "Progressing")
    elif not (status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None
              and current.get("reason") == NEW_RS_AVAILABLE):
        if is_complete(deployment, status):
            conditions = podutil.set_condition(conditions, new_condition(
                "Progressing", "True", NEW_RS_AVAILABLE, f'ReplicaSet "{name}" has successfully progressed.', now))
        elif is_progressing(deployment, status):
            message = f'ReplicaSet "{name}" is progressing.' if name else "Deployment is progressing."
            conditions = podutil.set_condition(conditions, new_condition("Progressing", "True", RS_UPDATED, message,
                                                                      now), refresh=True)
        elif timed_out(deployment, status, now):
            conditions = podutil.set_condition(conditions, new_condition(
                "Progressing", "False", TIMED_OUT, f'ReplicaSet "{name}" has timed out progressing.', now))
    failures = [podutil.condition(rs, "ReplicaFailure") for rs in ([new_rs] if new_rs is not None else [])]
    failure = next((entry for entry in failures if entry and entry.get("status") == "True"), None)
    if failure is not None:
        conditions = podutil.set_condition(conditions, new_condition("ReplicaFailure", "True", failure.get(
            "reason", "FailedCreate"), failure.get("message", ""), now))
    else:
        conditions = podutil.remove_condition(conditions, "ReplicaFailure")
    return {**status, "conditions": conditions}


def paused_condition(deployment: dict, now: float | None = None) -> dict | None:
    """checkPausedConditions: Progressing Unknown DeploymentPaused when paused, DeploymentResumed when resumed
    (None: nothing to change). A timed-out rollout keeps its ProgressDeadlineExceeded."""
    if not has_progress_deadline(deployment):
        return None
    current = _progressing(deployment.get("status") or {})
    if current is not None and current.get("reason") == TIMED_OUT:
        return None
    paused = bool((deployment.get("spec") or {}).get("paused"))
    shown = current is not None and current.get("reason") == PAUSED
    if paused and not shown:
        return new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused", now)
    if not paused and shown:
        return new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
    return None
