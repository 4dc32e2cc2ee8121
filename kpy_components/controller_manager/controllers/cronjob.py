"""The CronJob controller: creates a Job `<cronjob>-<scheduled minute since the epoch>` from the jobTemplate at each
time of the cron schedule (in spec.timeZone, UTC by default), honouring suspend, startingDeadlineSeconds
(a start later than that is missed: MissSchedule event), concurrencyPolicy (Allow; Forbid skips while a Job runs;
Replace deletes the running ones first) and the successful/failed Jobs history limits; status.active,
lastScheduleTime and lastSuccessfulTime as Kubernetes reports them. The key is looked at again when the next time
comes (add_after). Schedules are read with croniter.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from kpy_components.api import meta
from kpy_components.api.errors import APIError
from kpy_components.client import is_already_exists, is_not_found

from ..controller import Controller, controller_ref, new_controller_ref
from . import pods as podutil
from .job import COMPLETE, FAILED

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"


class ScheduleError(ValueError):
    """spec.schedule or spec.timeZone cannot be read."""


def schedule_of(cronjob: dict) -> tuple[str, timezone | ZoneInfo]:
    spec = cronjob.get("spec") or {}
    schedule = str(spec.get("schedule") or "").strip()
    if not (schedule.startswith("@") or len(schedule.split()) == 5) or not croniter.is_valid(schedule):
        raise ScheduleError(f"unparseable schedule {schedule!r}: expected 5 cron fields or a macro like @hourly")
    name = spec.get("timeZone")
    if not name:
        return schedule, timezone.utc
    try:
        return schedule, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def most_recent(schedule: str, zone, earliest: datetime, now: datetime) -> datetime | None:
    """The latest scheduled time in (earliest, now], None if there is none."""
    iterator = croniter(schedule, now.astimezone(zone) + timedelta(seconds=1))
    latest = iterator.get_prev(datetime)
    while latest > now:
        latest = iterator.get_prev(datetime)
    return latest if latest > earliest else None


def next_time(schedule: str, zone, now: datetime) -> datetime:
    return croniter(schedule, now.astimezone(zone)).get_next(datetime)


def job_name(cronjob: dict, scheduled: datetime) -> str:
    """getJobName: the scheduled time in minutes since the epoch, so a retried sync finds the Job it made."""
    return f"{meta.name_of(cronjob)}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cronjob: dict, scheduled: datetime) -> dict:
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(cronjob, scheduled), "namespace": meta.namespace_of(cronjob),
                         "labels": dict(template_meta.get("labels") or {}),
                         "annotations": {**(template_meta.get("annotations") or {}),
                                         SCHEDULED_TIMESTAMP: meta.format_rfc3339(scheduled)},
                         "ownerReferences": [new_controller_ref(cronjob)]},
            "spec": meta.deep_copy(template.get("spec") or {})}


def finished_as(job: dict) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in (COMPLETE, FAILED) and condition.get("status") == "True":
            return condition["type"]
    return None


def history_to_delete(cronjob: dict, jobs: list[dict]) -> list[dict]:
    """Finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit, oldest first."""
    spec = cronjob.get("spec") or {}
    doomed = []
    for kind, limit in ((COMPLETE, spec.get("successfulJobsHistoryLimit", 3)),
                        (FAILED, spec.get("failedJobsHistoryLimit", 1))):
        finished = sorted((job for job in jobs if finished_as(job) == kind),
                          key=lambda job: ((job.get("status") or {}).get("startTime") or "", meta.name_of(job)))
        if limit is not None and len(finished) > limit:
            doomed.extend(finished[:len(finished) - limit])
    return doomed


def _reference(job: dict) -> dict:
    metadata = job["metadata"]
    return {"kind": "Job", "namespace": metadata.get("namespace"), "name": metadata["name"],
            "uid": metadata.get("uid"), "apiVersion": "batch/v1", "resourceVersion": metadata.get("resourceVersion")}


class CronJobController(Controller):
    name = "cronjob"
    workers = 5  # --concurrent-cron-job-syncs

    def setup(self) -> None:
        self.cronjobs = self.informer("cronjobs", "batch")
        self.cronjobs.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                  on_delete=self.enqueue)
        self.jobs = self.informer("jobs", "batch")
        owner = lambda job, *_: self.enqueue_owner(job, "CronJob")  # noqa: E731 - a one-line mapping
        self.jobs.add_handler(on_add=owner, on_update=lambda _old, new: owner(new), on_delete=owner)
        self.cronjobs_info = self.client.resource("cronjobs", "batch")
        self.jobs_info = self.client.resource("jobs", "batch")

    async def reconcile(self, key: str) -> None:
        cached = self.cronjobs.store.get(key)
        if cached is None:
            return
        cronjob = meta.deep_copy(cached)
        uid = meta.metadata(cronjob).get("uid")
        jobs = [job for job in self.jobs.store.list(meta.namespace_of(cronjob))
                if (controller_ref(job) or {}).get("uid") == uid]
        status = await self._status_from_jobs(cronjob, jobs)
        if podutil.is_terminating(cronjob):
            await self._write(cronjob, status)
            return
        for job in history_to_delete(cronjob, jobs):
            await self._delete_job(cronjob, job, "SuccessfulDelete")
        try:
            schedule, zone = schedule_of(cronjob)
        except ScheduleError as error:
            self.recorder.event(cronjob, "Warning", "UnparseableSchedule", str(error))
            await self._write(cronjob, status)
            return
        now = datetime.now(timezone.utc)
        if not (cronjob.get("spec") or {}).get("suspend"):
            status = await self._maybe_start(cronjob, status, jobs, schedule, zone, now)
        await self._write(cronjob, status)
        if not (cronjob.get("spec") or {}).get("suspend"):
            wait = (next_time(schedule, zone, now) - now).total_seconds()
            self.queue.add_after(key, max(wait, 0.0) + 0.1)

    async def _status_from_jobs(self, cronjob: dict, jobs: list[dict]) -> dict:
        """status.active: the running Jobs, plus listed ones the cache does not show yet (just created) unless
        the API says they are gone; lastSuccessfulTime: the latest completion."""
        status = dict(cronjob.get("status") or {})
        cached = {meta.metadata(job).get("uid") for job in jobs}
        active = [_reference(job) for job in sorted(jobs, key=meta.name_of) if finished_as(job) is None]
        for reference in status.get("active") or ():
            if reference.get("uid") not in cached and await self._exists(reference):
                active.append(reference)
        completions = [(job.get("status") or {}).get("completionTime") or "" for job in jobs
                       if finished_as(job) == COMPLETE]
        latest = max(completions, default="")
        if latest > status.get("lastSuccessfulTime", ""):
            status["lastSuccessfulTime"] = latest
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        return status

    async def _exists(self, reference: dict) -> bool:
        try:
            job = await self.client.get(self.jobs_info, reference.get("name", ""), reference.get("namespace"))
        except APIError as error:
            if is_not_found(error):
                return False
            raise
        return meta.metadata(job).get("uid") == reference.get("uid") and finished_as(job) is None

    async def _maybe_start(self, cronjob: dict, status: dict, jobs: list[dict], schedule: str, zone,
                           now: datetime) -> dict:
        spec = cronjob.get("spec") or {}
        earliest = meta.parse_rfc3339(status.get("lastScheduleTime") or
                                      meta.metadata(cronjob).get("creationTimestamp") or meta.now_rfc3339())
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=deadline))
        scheduled = most_recent(schedule, zone, earliest, now)
        if scheduled is None:
            return status
        if deadline is not None and scheduled + timedelta(seconds=deadline) < now:
            self.recorder.event(cronjob, "Warning", "MissSchedule", "Missed scheduled time to start a job: "
                                f"{meta.format_rfc3339(scheduled)}")
            return status
        running = [job for job in jobs if finished_as(job) is None]
        policy = spec.get("concurrencyPolicy", "Allow")
        if running and policy == "Forbid":
            return status  # skipped; looked at again at the next time
        if running and policy == "Replace":
            for job in running:
                await self._delete_job(cronjob, job, "SuccessfulDelete")
            status["active"] = []
        created = await self._create_job(cronjob, scheduled)
        status["active"] = [*[r for r in status.get("active") or () if r.get("uid") != created["metadata"]["uid"]],
                            _reference(created)]
        status["lastScheduleTime"] = meta.format_rfc3339(scheduled)
        return status

    async def _create_job(self, cronjob: dict, scheduled: datetime) -> dict:
        body = job_from_template(cronjob, scheduled)
        try:
            created = await self.client.create(self.jobs_info, body, meta.namespace_of(cronjob))
        except APIError as error:
            if not is_already_exists(error):
                self.recorder.event(cronjob, "Warning", "FailedCreate", f"Error creating job: {error.message}")
                raise
            return await self.client.get(self.jobs_info, meta.name_of(body), meta.namespace_of(cronjob))
        self.recorder.event(cronjob, "Normal", "SuccessfulCreate", f"Created job {meta.name_of(created)}")
        return created

    async def _delete_job(self, cronjob: dict, job: dict, reason: str) -> None:
        try:
            await self.client.delete(self.jobs_info, meta.name_of(job), meta.namespace_of(job),
                                     propagation_policy="Background")
        except APIError as error:
            if not is_not_found(error):
                raise
            return
        self.recorder.event(cronjob, "Normal", reason, f"Deleted job {meta.name_of(job)}")

    async def _write(self, cronjob: dict, status: dict) -> None:
        if status == (cronjob.get("status") or {}):
            return
        try:
            await self.client.update(self.cronjobs_info, {**cronjob, "status": status}, subresource="status")
        except APIError as error:
            if not is_not_found(error):
                raise
