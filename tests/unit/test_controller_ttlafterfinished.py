"""When the TTL-after-finished controller deletes a Job: ttlSecondsAfterFinished after its Complete/Failed
condition turned true; never for a running Job or one without a TTL."""
import pytest

from kpy_components.api import meta
from kpy_components.controller_manager.controllers.ttlafterfinished import expires_at


def job(ttl=None, conditions=()) -> dict:
    spec = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    return {"metadata": {"name": "j", "namespace": "ns"}, "spec": spec, "status": {"conditions": list(conditions)}}


def finished(kind: str, when: str, status: str = "True") -> dict:
    return {"type": kind, "status": status, "lastTransitionTime": when}


@pytest.mark.parametrize("kind", ["Complete", "Failed"])
def test_a_finished_job_expires_ttl_seconds_after_it_finished(kind):
    when = "2026-11-22T07:00:00Z"
    assert expires_at(job(30, [finished(kind, when)])) == meta.parse_rfc3339(when).timestamp() + 30
    assert expires_at(job(0, [finished(kind, when)])) == meta.parse_rfc3339(when).timestamp()


def test_running_jobs_and_jobs_without_a_ttl_never_expire():
    assert expires_at(job(None, [finished("Complete", "2026-11-22T07:00:00Z")])) is None
    assert expires_at(job(30)) is None
    assert expires_at(job(30, [finished("Complete", "2026-11-22T07:00:00Z", "False"),
                               finished("Suspended", "2026-11-22T07:00:00Z")])) is None


def test_a_finish_without_a_readable_time_is_named():
    with pytest.raises(ValueError, match="unable to find the time when the Job j finished"):
        expires_at(job(30, [finished("Failed", "")]))
