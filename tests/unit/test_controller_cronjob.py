"""The CronJob controller's pure parts: schedules (cron fields, macros, time zones, errors), the most recent unmet
time and the next one, Job names and templates, and the history limits."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from kpy_components.controller_manager.controllers import cronjob as cj

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 30, 30, tzinfo=UTC)


def cron_job(schedule: str = "*/5 * * * *", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "ns", "uid": "cj-1"},
            "spec": {"schedule": schedule, "jobTemplate": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "r"}]}}}}, **spec}}


def test_next_and_most_recent_times():
    schedule, zone = cj.schedule_of(cron_job())
    assert cj.next_time(schedule, zone, NOW) == datetime(2026, 3, 1, 12, 35, tzinfo=UTC)
    assert cj.most_recent(schedule, zone, NOW - timedelta(hours=1), NOW) == datetime(2026, 3, 1, 12, 30,
                                                                                      tzinfo=UTC)
    assert cj.most_recent(schedule, zone, datetime(2026, 3, 1, 12, 30, tzinfo=UTC), NOW) is None
    exactly = datetime(2026, 3, 1, 12, 35, tzinfo=UTC)
    assert cj.most_recent(schedule, zone, NOW, exactly) == exactly  # a time equal to now is due


def test_macros_and_time_zones():
    schedule, zone = cj.schedule_of(cron_job("@daily"))
    assert cj.next_time(schedule, zone, NOW) == datetime(2026, 3, 2, tzinfo=UTC)
    schedule, zone = cj.schedule_of(cron_job("0 9 * * *", timeZone="Europe/Berlin"))
    assert cj.next_time(schedule, zone, NOW).astimezone(UTC) == datetime(2026, 3, 2, 8, tzinfo=UTC)


@pytest.mark.parametrize("schedule,zone,message", [
    ("61 * * * *", None, "unparseable schedule '61 * * * *'"),
    ("* * * *", None, "expected 5 cron fields"),
    ("0 0 * * * *", None, "expected 5 cron fields"),
    ("* * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'")])
def test_bad_schedules_are_named(schedule, zone, message):
    with pytest.raises(cj.ScheduleError, match=re.escape(message)):
        cj.schedule_of(cron_job(schedule, **({"timeZone": zone} if zone else {})))


def test_job_from_template_is_named_by_the_scheduled_minute():
    scheduled = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    job = cj.job_from_template(cron_job(), scheduled)
    assert job["metadata"]["name"] == f"report-{int(scheduled.timestamp()) // 60}"
    assert job["metadata"]["labels"] == {"team": "a"}
    assert job["metadata"]["annotations"] == {cj.SCHEDULED_TIMESTAMP: "2026-03-01T12:30:00Z"}
    assert job["metadata"]["ownerReferences"][0] == {"apiVersion": "batch/v1", "kind": "CronJob",
                                                     "name": "report", "uid": "cj-1", "controller": True,
                                                     "blockOwnerDeletion": True}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def _finished(name: str, kind: str, started: str) -> dict:
    return {"metadata": {"name": name}, "status": {"startTime": started,
                                                   "conditions": [{"type": kind, "status": "True"}]}}


def test_history_limits_delete_the_oldest_finished_jobs():
    jobs = [_finished(f"ok-{n}", "Complete", f"2026-03-01T0{n}:00:00Z") for n in range(5)]
    jobs += [_finished(f"bad-{n}", "Failed", f"2026-03-01T0{n}:00:00Z") for n in range(3)]
    jobs.append({"metadata": {"name": "running"}, "status": {"startTime": "2026-03-01T00:00:00Z"}})
    doomed = [job["metadata"]["name"] for job in cj.history_to_delete(cron_job(), jobs)]
    assert doomed == ["ok-0", "ok-1", "bad-0", "bad-1"]  # 3 successful and 1 failed kept by default
    keep_all = cron_job(successfulJobsHistoryLimit=10, failedJobsHistoryLimit=10)
    assert cj.history_to_delete(keep_all, jobs) == []
