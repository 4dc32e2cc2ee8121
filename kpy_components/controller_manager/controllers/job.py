"""The Job controller: runs pods until `completions` of them succeeded (at most `parallelism` at a time), or fails
the Job after more than `backoffLimit` failed pods or after `activeDeadlineSeconds`.

Counts come from the Job's pods (labelled job-name / batch.kubernetes.io/job-name and controller-uid by the API
server's template defaults) and never go down: a finished pod removed later (pod GC) stays counted. After a
failure, new pods wait 10 s, doubling with each failure since the last success, at most 6 minutes (Kubernetes'
pod failure backoff); container restarts of OnFailure pods count against backoffLimit. With completionMode
Indexed, pod i runs index i (annotation and label batch.kubernetes.io/job-completion-index, env JOB_COMPLETION_INDEX,
hostname <job>-<i>) and the Job completes when every index below `completions` succeeded, as listed in
status.completedIndexes. Not done (yet): pod failure and success policies, backoffLimitPerIndex. Deletion after
ttlSecondsAfterFinished is the ttl-after-finished controller's.
"""
from __future__ import annotations

import time

from kpy_components.api import meta

from . import pods as podutil
from .podowner import PodOwnerController

COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
BACKOFF_BASE, BACKOFF_MAX = 10.0, 360.0  # seconds: DefaultJobPodFailureBackOff, MaxJobPodFailureBackOff


def job_condition(kind: str, reason: str, message: str, now: float | None = None, status: str = "True") -> dict:
    stamp = podutil.now_rfc3339(now)
    return {"type": kind, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def is_finished(job: dict) -> bool:
    return any(c.get("type") in (COMPLETE, FAILED) and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or ())


def _started(job: dict) -> float | None:
    try:
        return meta.parse_rfc3339((job.get("status") or {}).get("startTime", "")).timestamp()
    except ValueError:
        return None


def _finished_at(pod: dict) -> float | None:
    """When the pod's containers ended (the latest finishedAt), None if it does not say."""
    times = []
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        finished = ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
        try:
            times.append(meta.parse_rfc3339(finished).timestamp())
        except ValueError:
            continue
    return max(times, default=None)


def backoff_remaining(pods: list[dict], now: float) -> float:
    """Seconds before new pods may start: 10 s after the last failure, doubled for each failure since the last
    success, at most 6 minutes; 0 when nothing failed since."""
    last_success = max((t for p in pods if podutil.phase(p) == "Succeeded" and (t := _finished_at(p))),
                       default=0.0)
    failures = [t for p in pods if podutil.phase(p) == "Failed" and (t := _finished_at(p)) and t > last_success]
    if not failures:
        return 0.0
    delay = min(BACKOFF_BASE * 2 ** (len(failures) - 1), BACKOFF_MAX)
    return max(0.0, max(failures) + delay - now)


def restarts_exceed_limit(job: dict, active: list[dict]) -> bool:
    """pastBackoffLimitOnFailure: with restartPolicy OnFailure the kubelet restarts containers in place, and those
    restarts count against backoffLimit."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(status.get("restartCount", 0) for pod in active
                   for status in [*((pod.get("status") or {}).get("initContainerStatuses") or ()),
                                  *((pod.get("status") or {}).get("containerStatuses") or ())])
    limit = spec.get("backoffLimit", 6)
    return restarts > 0 if limit == 0 else restarts >= limit


# --- Indexed completion mode: pod i of `completions` runs index i; the Job completes when every index succeeded --

INDEX_KEY = "batch.kubernetes.io/job-completion-index"  # annotation and label of an Indexed Job's pods


def completion_index(pod: dict) -> int | None:
    try:
        index = int((pod["metadata"].get("annotations") or {}).get(INDEX_KEY))
    except (TypeError, ValueError):
        return None
    return index if index >= 0 else None


def parse_indexes(text: str | None) -> set[int]:
    """status.completedIndexes ("1,3-5") as a set; what cannot be read counts as nothing."""
    indexes: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            indexes.update(range(int(first), int(last or first) + 1))
    return indexes


def format_indexes(indexes: set[int]) -> str:
    """Sorted intervals as upstream writes completedIndexes: "1,3-5,7"."""
    parts, ordered = [], sorted(indexes)
    start = 0
    for position in range(1, len(ordered) + 1):
        if position == len(ordered) or ordered[position] != ordered[position - 1] + 1:
            first, last = ordered[start], ordered[position - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = position
    return ",".join(parts)


def completed_indexes(job: dict, pods: list[dict]) -> set[int]:
    completions = (job.get("spec") or {}).get("completions") or 0
    done = {index for pod in pods if podutil.phase(pod) == "Succeeded"
            and (index := completion_index(pod)) is not None}
    return {index for index in done | parse_indexes((job.get("status") or {}).get("completedIndexes"))
            if index < completions}


def indexes_to_start(job: dict, pods: list[dict], count: int) -> list[int]:
    """The `count` lowest indexes that neither succeeded nor have an active pod."""
    taken = completed_indexes(job, pods) | {completion_index(pod) for pod in pods if podutil.is_active(pod)}
    free = (index for index in range((job.get("spec") or {}).get("completions") or 0) if index not in taken)
    return [index for index, _ in zip(free, range(count))]


def indexed_pod(template: dict, job: dict, index: int) -> dict:
    """An Indexed Job's pod for `index`: the annotation and label, JOB_COMPLETION_INDEX in every container, the
    hostname <job>-<index> (with the template's subdomain, a stable DNS name), generateName <job>-<index>-."""
    pod = podutil.pod_from_template(template, job, labels={INDEX_KEY: str(index)},
                                    annotations={INDEX_KEY: str(index)})
    pod["metadata"]["generateName"] = f"{meta.name_of(job)}-{index}-"
    spec = pod["spec"]
    spec.setdefault("hostname", f"{meta.name_of(job)}-{index}")
    variable = {"name": "JOB_COMPLETION_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}}
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        env = container.setdefault("env", [])
        if not any(item.get("name") == variable["name"] for item in env):
            env.append(dict(variable))
    return pod


def is_indexed(job: dict) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def plan(job: dict, pods: list[dict], now: float) -> tuple[dict, int]:
    """(the Job's new status, how many active pods it should have) from its pods (the owned ones, finished
    included)."""
    spec, old = job.get("spec") or {}, job.get("status") or {}
    active = [pod for pod in pods if podutil.is_active(pod)]
    if is_indexed(job):
        done = completed_indexes(job, pods)
        succeeded = len(done)
    else:
        succeeded = max(old.get("succeeded", 0), sum(1 for pod in pods if podutil.phase(pod) == "Succeeded"))
    failed = max(old.get("failed", 0), sum(1 for pod in pods if podutil.phase(pod) == "Failed"))
    status = {key: value for key, value in old.items()
              if key not in ("active", "succeeded", "failed", "ready", "terminating")}
    conditions = list(old.get("conditions") or [])
    completions, parallelism = spec.get("completions"), spec.get("parallelism", 1)
    suspended = bool(spec.get("suspend"))
    want = 0
    if suspended:
        conditions = podutil.set_condition(conditions, job_condition(SUSPENDED, "JobSuspended", "Job suspended",
                                                                     now))
    else:
        if podutil.condition(job, SUSPENDED) is not None:
            conditions = podutil.set_condition(conditions, job_condition(SUSPENDED, "JobResumed", "Job resumed",
                                                                         now, "False"))
        status.setdefault("startTime", podutil.now_rfc3339(now))
        started = _started({"status": status})
        deadline = spec.get("activeDeadlineSeconds")
        if failed > spec.get("backoffLimit", 6) or restarts_exceed_limit(job, active):
            conditions = podutil.set_condition(conditions, job_condition(
                FAILED, "BackoffLimitExceeded", "Job has reached the specified backoff limit", now))
        elif deadline is not None and started is not None and now - started >= deadline:
            conditions = podutil.set_condition(conditions, job_condition(
                FAILED, "DeadlineExceeded", "Job was active longer than specified deadline", now))
        elif completions is not None and succeeded >= completions or \
                completions is None and succeeded > 0 and not active:
            conditions = podutil.set_condition(conditions, job_condition(
                COMPLETE, "CompletionsReached", "Reached expected number of succeeded pods", now))
            status["completionTime"] = podutil.now_rfc3339(now)
        elif completions is not None:
            want = min(parallelism, completions - succeeded)
        else:
            want = parallelism if succeeded == 0 else len(active)  # a work queue: no new pods after a success
    ready = sum(1 for pod in active if podutil.is_ready(pod))
    kept = want if not is_finished({"status": {"conditions": conditions}}) else 0
    counts = {"active": min(len(active), kept), "succeeded": succeeded, "failed": failed}
    status.update({key: value for key, value in counts.items() if value})
    if is_indexed(job):
        status["completedIndexes"] = format_indexes(done)
    status["ready"] = ready if kept else 0
    status["conditions"] = conditions
    if not conditions:
        del status["conditions"]
    return status, kept


class JobController(PodOwnerController):
    name = "job"
    kind, plural, group = "Job", "jobs", "batch"
    workers = 5

    async def reconcile(self, key: str) -> None:
        job = self.owners.store.get(key)
        if job is None:
            self.expectations.forget(key)
            return
        if is_finished(job):
            return
        satisfied = self.expectations.satisfied(key)
        pods = await self.claimed_pods(job, include_inactive=True)
        if not satisfied:
            return  # our last creates/deletes are not in the cache yet: counting now would double them
        now = time.time()
        status, want = plan(job, pods, now)
        active = [pod for pod in pods if podutil.is_active(pod)]
        wait = backoff_remaining(pods, now) if len(active) < want else 0.0
        if wait > 0:
            self.queue.add_after(key, wait + 0.1)
        elif len(active) < want and not podutil.is_terminating(job):
            template = (job.get("spec") or {}).get("template") or {}
            if is_indexed(job):
                created = [indexed_pod(template, job, index)
                           for index in indexes_to_start(job, pods, want - len(active))]
            else:
                created = [podutil.pod_from_template(template, job) for _ in range(want - len(active))]
            await self.create_pods(job, key, created)
            status["active"] = len(active) + len(created)
        elif len(active) > want:
            await self.delete_pods(job, key, podutil.pods_to_delete(active, len(active) - want))
        written = await self.write_status(job, status)
        if is_finished(written) and not is_finished(job):
            condition = next(c for c in written["status"]["conditions"] if c["type"] in (COMPLETE, FAILED)
                             and c["status"] == "True")
            event_type = "Normal" if condition["type"] == COMPLETE else "Warning"
            self.recorder.event(job, event_type, "Completed" if event_type == "Normal" else condition["reason"],
                                "Job completed" if event_type == "Normal" else condition["message"])
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        started = _started(written)
        if deadline is not None and started is not None and not is_finished(written):
            self.queue.add_after(key, max(started + deadline - now, 0) + 0.5)
