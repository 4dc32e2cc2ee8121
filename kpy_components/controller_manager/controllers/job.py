"""The Job controller: runs pods until `completions` of them succeeded (at most `parallelism` at a time), or fails
the Job after more than `backoffLimit` failed pods or after `activeDeadlineSeconds`.

Counts come from the Job's pods (labelled job-name / batch.kubernetes.io/job-name and controller-uid by the API
server's template defaults) and never go down: a finished pod removed later (pod GC) stays counted. Not done
(yet): the pod-failure backoff delay between retries (failed pods are replaced at once), counting container
restarts of OnFailure pods against backoffLimit, Indexed completion, pod failure and success policies, and
ttlSecondsAfterFinished.
"""
from __future__ import annotations

import time

from kpy_components.api import meta

from . import pods as podutil
from .podowner import PodOwnerController

COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"


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


def plan(job: dict, pods: list[dict], now: float) -> tuple[dict, int]:
    """(the Job's new status, how many active pods it should have) from its pods (the owned ones, finished
    included)."""
    spec, old = job.get("spec") or {}, job.get("status") or {}
    active = [pod for pod in pods if podutil.is_active(pod)]
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
        if failed > spec.get("backoffLimit", 6):
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
        if len(active) < want and not podutil.is_terminating(job):
            template = (job.get("spec") or {}).get("template") or {}
            await self.create_pods(job, key, [podutil.pod_from_template(template, job)
                                              for _ in range(want - len(active))])
            status["active"] = want
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
