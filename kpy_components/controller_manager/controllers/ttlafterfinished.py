"""The TTL-after-finished controller (pkg/controller/ttlafterfinished): a finished Job (condition Complete or
Failed) with spec.ttlSecondsAfterFinished is deleted that many seconds after it finished, with its pods
(foreground propagation, as upstream). Before deleting, the Job is read again from the API and checked again, and
the deletion carries its uid as a precondition: a Job recreated under the same name, or one whose TTL was raised
meanwhile, is never deleted early.
"""
from __future__ import annotations

import logging
import time

from kpy_components.api import meta
from kpy_components.client import is_not_found

from ..controller import Controller
from .job import COMPLETE, FAILED

log = logging.getLogger(__name__)


def expires_at(job: dict) -> float | None:
    """When `job` is due for deletion (epoch seconds); None when it is not finished or has no TTL.
    ValueError when it finished without a readable finish time."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None:
        return None
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in (COMPLETE, FAILED) and condition.get("status") == "True":
            finished = condition.get("lastTransitionTime") or ""
            try:
                return meta.parse_rfc3339(finished).timestamp() + int(ttl)
            except ValueError:
                raise ValueError(f"unable to find the time when the Job {meta.name_of(job)} finished") from None
    return None


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"

    def setup(self) -> None:
        self.jobs = self.informer("jobs", "batch")
        self.jobs.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))

    async def reconcile(self, key: str) -> None:
        job = self.jobs.store.get(key)
        if job is None or job["metadata"].get("deletionTimestamp") or not self._due(key, job):
            return
        namespace, _, name = key.partition("/")
        jobs = self.client.resource("jobs", "batch")
        try:
            fresh = await self.client.get(jobs, name, namespace)  # the cache may be behind a TTL change
        except Exception as error:
            if is_not_found(error):
                return
            raise
        if self._due(key, fresh) and await self.client.delete_exactly(jobs, fresh, propagation_policy="Foreground"):
            log.info("Deleted finished Job after its TTL job=%s", key)

    def _due(self, key: str, job: dict) -> bool:
        """Whether `job` is to be deleted now; when due later, look again then."""
        try:
            expiry = expires_at(job)
        except ValueError as error:
            log.warning("Cannot apply ttlSecondsAfterFinished job=%s: %s", key, error)
            return False
        if expiry is None:
            return False
        remaining = expiry - time.time()
        if remaining > 0:
            self.queue.add_after(key, remaining)
            return False
        return True
