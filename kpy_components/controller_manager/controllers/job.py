"""The Job controller: runs pods until `completions` of them succeeded (at most `parallelism` at a time), or fails
the Job after more than `backoffLimit` failed pods or after `activeDeadlineSeconds`.

Counts come from the Job's pods (labelled job-name / batch.kubernetes.io/job-name and controller-uid by the API
server's template defaults) and never go down: a finished pod removed later (pod GC) stays counted. After a
failure, new pods wait 10 s, doubling with each failure since the last success, at most 6 minutes (Kubernetes'
pod failure backoff); container restarts of OnFailure pods count against backoffLimit. With completionMode
Indexed, pod i runs index i (annotation and label batch.kubernetes.io/job-completion-index, env JOB_COMPLETION_INDEX,
hostname <job>-<i>) and the Job completes when every index below `completions` succeeded, as listed in
status.completedIndexes.

As Kubernetes 1.31 (jobpolicy.py has the rules): spec.podFailurePolicy (FailJob, FailIndex, Ignore, Count on exit
codes or pod conditions), backoffLimitPerIndex and maxFailedIndexes (status.failedIndexes; reasons FailedIndexes
and MaxFailedIndexesExceeded), successPolicy (reason SuccessPolicy), and podReplacementPolicy Failed. A Job that
is done first gets the interim condition FailureTarget or SuccessCriteriaMet, its remaining pods are deleted, and
once none is left running or terminating it gets Failed (same reason and message) or Complete (with
completionTime); status.terminating counts pods being deleted. Deletion after ttlSecondsAfterFinished is the
ttl-after-finished controller's.

An Indexed Job's completions may change together with parallelism (elastic Indexed Jobs): pods of indexes at or
above completions, and second pods of an index, are deleted first.

Not done (yet): pod tracking finalizers and status.uncountedTerminatedPods (counts come from the pods still
there), a terminating pod counted as failed under podReplacementPolicy TerminatingOrFailed, spec.managedBy.
"""
from __future__ import annotations

import time

from kpy_components.api import meta

from . import jobpolicy
from . import pods as podutil
from .jobindexes import INDEX_KEY, completed_indexes, completion_index, format_indexes
from .podowner import PodOwnerController

COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
FAILURE_TARGET, SUCCESS_CRITERIA_MET = "FailureTarget", "SuccessCriteriaMet"
INTERIM = {FAILURE_TARGET: FAILED, SUCCESS_CRITERIA_MET: COMPLETE}  # interim condition -> the terminal one after it


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


def backoff_remaining(pods: list[dict], now: float) -> float:
    """Seconds before new pods may start: 10 s after the last failure, doubled for each failure since the last
    success, at most 6 minutes; 0 when nothing failed since."""
    last_success = max((t for p in pods if podutil.phase(p) == "Succeeded" and (t := jobpolicy.finished_at(p))),
                       default=0.0)
    failures = [t for p in pods if podutil.phase(p) == "Failed" and (t := jobpolicy.finished_at(p))
                and t > last_success]
    if not failures:
        return 0.0
    return max(0.0, max(failures) + jobpolicy.backoff_delay(len(failures)) - now)


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

def is_terminating_pod(pod: dict) -> bool:
    """Being deleted and not finished: what status.terminating counts."""
    return podutil.is_terminating(pod) and podutil.phase(pod) not in ("Succeeded", "Failed")


def indexes_to_start(job: dict, pods: list[dict], count: int) -> list[int]:
    """The `count` lowest indexes that neither succeeded, failed (backoffLimitPerIndex) nor have an active pod (or
    a terminating one, when only failed pods are replaced)."""
    waiting_for = [pod for pod in pods if podutil.is_active(pod)
                   or jobpolicy.only_replaces_failed_pods(job) and is_terminating_pod(pod)]
    taken = completed_indexes(job, pods) | {completion_index(pod) for pod in waiting_for}
    if jobpolicy.has_backoff_limit_per_index(job):
        taken |= jobpolicy.failed_indexes(job, pods)
    free = (index for index in range((job.get("spec") or {}).get("completions") or 0) if index not in taken)
    return [index for index, _ in zip(free, range(count))]


def surplus_indexed_pods(job: dict, active: list[dict]) -> list[dict]:
    """Active pods of an Indexed Job that go whatever the counts: without an index, with an index at or above
    completions (the Job was scaled down), or a second pod of an index (all but the one to delete last)."""
    completions = (job.get("spec") or {}).get("completions") or 0
    surplus, by_index = [], {}
    for pod in active:
        index = completion_index(pod)
        if index is None or index >= completions:
            surplus.append(pod)
        else:
            by_index.setdefault(index, []).append(pod)
    for same in by_index.values():
        surplus.extend(sorted(same, key=podutil.deletion_order)[:-1])
    return surplus


def pods_to_stop(job: dict, active: list[dict], want: int) -> list[dict]:
    """The active pods to delete: an Indexed Job's surplus ones, then the first in deletion order beyond `want`."""
    surplus = surplus_indexed_pods(job, active) if is_indexed(job) else []
    doomed = {id(pod) for pod in surplus}
    kept = [pod for pod in active if id(pod) not in doomed]
    return surplus + podutil.pods_to_delete(kept, len(kept) - want)


def indexed_pod(template: dict, job: dict, index: int, replaced: dict | None = None) -> dict:
    """An Indexed Job's pod for `index`: the annotation and label, JOB_COMPLETION_INDEX in every container, the
    hostname <job>-<index> (with the template's subdomain, a stable DNS name), generateName <job>-<index>-. With
    backoffLimitPerIndex, the failure counts of the index, continued from the failed pod it `replaced`."""
    annotations = {INDEX_KEY: str(index)}
    if jobpolicy.has_backoff_limit_per_index(job):
        counted, ignored = jobpolicy.next_failure_counts(job, replaced)
        annotations[jobpolicy.FAILURE_COUNT] = str(counted)
        if ignored:
            annotations[jobpolicy.IGNORED_FAILURE_COUNT] = str(ignored)
    pod = podutil.pod_from_template(template, job, labels={INDEX_KEY: str(index)}, annotations=annotations)
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


def pods_to_create(job: dict, pods: list[dict], count: int, now: float) -> tuple[list[dict], float]:
    """Up to `count` new pods that may start now, and, when none may yet, the seconds until one may: the Job's pod
    failure backoff, or with backoffLimitPerIndex each index's own."""
    template = (job.get("spec") or {}).get("template") or {}
    per_index = jobpolicy.has_backoff_limit_per_index(job)
    wait = 0.0 if per_index else backoff_remaining(pods, now)
    if wait > 0:
        return [], wait
    if not is_indexed(job):
        return [podutil.pod_from_template(template, job) for _ in range(count)], 0.0
    indexes = indexes_to_start(job, pods, count)
    if not per_index:
        return [indexed_pod(template, job, index) for index in indexes], 0.0
    last_failed = jobpolicy.last_failed_pods(pods)  # of the indexes to start, which are neither done nor failed
    waits = {index: jobpolicy.index_backoff_remaining(last_failed.get(index), now) for index in indexes}
    ready = [index for index in indexes if waits[index] <= 0]
    if not ready:
        return [], min(waits.values(), default=0.0)
    return [indexed_pod(template, job, index, last_failed.get(index)) for index in ready], 0.0


def finishing_condition(job: dict, pods: list[dict], *, failed: int, succeeded: int, done: set[int],
                        failed_indexes: set[int] | None, active: list[dict], now: float) -> dict | None:
    """The interim condition of a Job that is done (already in its status, or new), in upstream's order:
    SuccessCriteriaMet kept; FailureTarget kept; a FailJob rule; backoffLimit; the deadline; failed indexes; the
    success policy; completions reached with nothing running. None while the Job goes on."""
    spec = job.get("spec") or {}
    for kind in (SUCCESS_CRITERIA_MET, FAILURE_TARGET):
        existing = podutil.condition(job, kind)
        if existing is not None and existing.get("status") == "True":
            return existing
    message = jobpolicy.fail_job_message(job, pods)
    if message is not None:
        return job_condition(FAILURE_TARGET, "PodFailurePolicy", message, now)
    started, deadline = _started(job), spec.get("activeDeadlineSeconds")
    if failed > spec.get("backoffLimit", 6) or restarts_exceed_limit(job, active):
        return job_condition(FAILURE_TARGET, "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                             now)
    if deadline is not None and started is not None and now - started >= deadline:
        return job_condition(FAILURE_TARGET, "DeadlineExceeded", "Job was active longer than specified deadline",
                             now)
    completions = spec.get("completions")
    if failed_indexes is not None:
        most = spec.get("maxFailedIndexes")
        if most is not None and len(failed_indexes) > most:
            return job_condition(FAILURE_TARGET, "MaxFailedIndexesExceeded",
                                 "Job has exceeded the specified maximal number of failed indexes", now)
        if failed_indexes and len(failed_indexes) + len(done) >= (completions or 0):
            return job_condition(FAILURE_TARGET, "FailedIndexes", "Job has failed indexes", now)
    if is_indexed(job) and (message := jobpolicy.success_policy_message(job, done)) is not None:
        return job_condition(SUCCESS_CRITERIA_MET, "SuccessPolicy", message, now)
    if not active and (succeeded >= completions if completions is not None else succeeded > 0):
        return job_condition(SUCCESS_CRITERIA_MET, "CompletionsReached", "Reached expected number of succeeded pods",
                             now)
    return None


def plan(job: dict, pods: list[dict], now: float) -> tuple[dict, int]:
    """(the Job's new status, how many active pods it should have) from its pods (the owned ones, finished
    included)."""
    spec, old = job.get("spec") or {}, job.get("status") or {}
    active = [pod for pod in pods if podutil.is_active(pod)]
    terminating = sum(1 for pod in pods if is_terminating_pod(pod))
    done: set[int] = set()
    if is_indexed(job):
        done = completed_indexes(job, pods)
        succeeded = len(done)
    else:
        succeeded = max(old.get("succeeded", 0), sum(1 for pod in pods if podutil.phase(pod) == "Succeeded"))
    failed = jobpolicy.counted_failures(job, pods)
    failed_indexes = jobpolicy.failed_indexes(job, pods) if jobpolicy.has_backoff_limit_per_index(job) else None
    status = {key: value for key, value in old.items()
              if key not in ("active", "succeeded", "failed", "ready", "terminating", "failedIndexes")}
    conditions = list(old.get("conditions") or [])
    completions, parallelism = spec.get("completions"), spec.get("parallelism", 1)
    want = 0
    if spec.get("suspend"):
        conditions = podutil.set_condition(conditions, job_condition(SUSPENDED, "JobSuspended", "Job suspended",
                                                                     now))
    else:
        if podutil.condition(job, SUSPENDED) is not None:
            conditions = podutil.set_condition(conditions, job_condition(SUSPENDED, "JobResumed", "Job resumed",
                                                                         now, "False"))
        status.setdefault("startTime", podutil.now_rfc3339(now))
        # failures already counted stay counted (their pods may be gone: pod GC, a user's delete)
        interim = finishing_condition({**job, "status": status}, pods, failed=max(old.get("failed", 0), failed),
                                      succeeded=succeeded, done=done, failed_indexes=failed_indexes, active=active,
                                      now=now)
        if interim is not None:
            conditions = podutil.set_condition(conditions, interim)
            if interim["type"] == FAILURE_TARGET:
                failed += len(active) + terminating  # upstream counts every pod a failing Job stops as failed
            terminating += len(active)  # about to be deleted
            if not terminating:
                conditions = podutil.set_condition(conditions, job_condition(
                    INTERIM[interim["type"]], interim["reason"], interim["message"], now))
                if interim["type"] == SUCCESS_CRITERIA_MET:
                    status["completionTime"] = podutil.now_rfc3339(now)
        elif completions is not None:
            want = min(parallelism, completions - succeeded)
        else:
            want = parallelism if succeeded == 0 else len(active)  # a work queue: no new pods after a success
    counts = {"active": min(len(active), want), "succeeded": succeeded,
              "failed": max(old.get("failed", 0), failed)}
    status.update({key: value for key, value in counts.items() if value})
    if is_indexed(job):
        status["completedIndexes"] = format_indexes(done)
    if failed_indexes is not None:
        status["failedIndexes"] = format_indexes(failed_indexes)
    status["ready"] = sum(1 for pod in active if podutil.is_ready(pod)) if want else 0
    status["terminating"] = terminating
    status["conditions"] = conditions
    if not conditions:
        del status["conditions"]
    return status, want


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
        missing = want - len(active)
        if jobpolicy.only_replaces_failed_pods(job):
            missing -= sum(1 for pod in pods if is_terminating_pod(pod))
        doomed = pods_to_stop(job, active, want)
        if doomed:  # deleting first, creating in a later sync (as upstream)
            await self.delete_pods(job, key, doomed)
        elif missing > 0 and not podutil.is_terminating(job):
            created, wait = pods_to_create(job, pods, missing, now)
            if wait > 0:
                self.queue.add_after(key, wait + 0.1)
            if created:
                await self.create_pods(job, key, created)
                status["active"] = len(active) + len(created)
        written = await self.write_status(job, status)
        if is_finished(written) and not is_finished(job):
            condition = next(c for c in written["status"]["conditions"] if c["type"] in (COMPLETE, FAILED)
                             and c["status"] == "True")
            event_type = "Normal" if condition["type"] == COMPLETE else "Warning"
            self.recorder.event(job, event_type, "Completed" if event_type == "Normal" else condition["reason"],
                                "Job completed" if event_type == "Normal" else condition["message"])
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        started = _started(written)
        finishing = is_finished(written) or any(podutil.condition(written, kind) for kind in INTERIM)
        if deadline is not None and started is not None and not finishing:  # pod events requeue a finishing Job
            self.queue.add_after(key, max(started + deadline - now, 0) + 0.5)
