"""The Job controller's decisions (job.plan): how many pods to run, the counts, and when the Job is Complete or
Failed (BackoffLimitExceeded, DeadlineExceeded), and which indexes an Indexed Job runs."""
from __future__ import annotations

from kpy_components.controller_manager.controllers import pods as podutil
from kpy_components.controller_manager.controllers.job import (backoff_remaining, indexed_pod, indexes_to_start,
                                                              is_finished, plan, pods_to_stop,
                                                              restarts_exceed_limit, surplus_indexed_pods)
from kpy_components.controller_manager.controllers.jobindexes import INDEX_KEY, format_indexes, parse_indexes

NOW = 1_700_000_000.0


def job(**spec) -> dict:
    return {"metadata": {"name": "pi", "namespace": "ns"},
            "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 6, **spec}, "status": {}}


def pods(*phases: str) -> list[dict]:
    return [{"metadata": {"name": f"p{i}"}, "status": {"phase": phase}} for i, phase in enumerate(phases)]


def reason(status: dict, kind: str) -> str | None:
    condition = podutil.condition({"status": status}, kind)
    return condition["reason"] if condition and condition["status"] == "True" else None


def test_runs_parallelism_pods_until_completions_succeeded():
    status, want = plan(job(), [], NOW)
    assert want == 2 and status["startTime"] == podutil.now_rfc3339(NOW) and "conditions" not in status
    status, want = plan(job(), pods("Succeeded", "Succeeded", "Running"), NOW)
    assert want == 1 and status["succeeded"] == 2 and status["active"] == 1
    status, want = plan(job(), pods("Succeeded", "Succeeded", "Succeeded"), NOW + 3)
    assert want == 0 and reason(status, "Complete") == "CompletionsReached"
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]  # 1.31: interim first
    assert status["completionTime"] == podutil.now_rfc3339(NOW + 3) and is_finished({"status": status})


def test_counts_never_go_down_when_finished_pods_are_removed():
    earlier = job()
    earlier["status"] = {"succeeded": 2, "failed": 1}
    status, want = plan(earlier, [], NOW)
    assert (status["succeeded"], status["failed"], want) == (2, 1, 1)


def test_failures_counted_earlier_still_fail_the_job_once_their_pods_are_gone():
    failed_before = job(backoffLimit=1)
    failed_before["status"] = {"failed": 3}
    status, want = plan(failed_before, [], NOW)
    assert want == 0 and status["conditions"][0]["reason"] == "BackoffLimitExceeded"


def test_more_failures_than_the_backoff_limit_fail_the_job():
    status, want = plan(job(backoffLimit=1), pods("Failed", "Running"), NOW)
    assert want == 2 and "conditions" not in status and status["failed"] == 1
    failing = job(backoffLimit=1)
    status, want = plan(failing, pods("Failed", "Failed", "Running"), NOW)
    # 1.31: FailureTarget first; the running pod is stopped (and counted failed), then Failed
    assert want == 0 and reason(status, "FailureTarget") == "BackoffLimitExceeded" and not reason(status, "Failed")
    assert status["failed"] == 3 and status["terminating"] == 1
    failing["status"] = status
    status, want = plan(failing, pods("Failed", "Failed"), NOW + 1)
    assert reason(status, "Failed") == "BackoffLimitExceeded" and status["failed"] == 3
    assert status["conditions"][-1]["message"] == "Job has reached the specified backoff limit"


def test_active_deadline_fails_the_job():
    running = job(activeDeadlineSeconds=30)
    running["status"] = {"startTime": podutil.now_rfc3339(NOW)}
    assert plan(running, pods("Running"), NOW + 10)[1] == 2
    status, want = plan(running, pods("Running"), NOW + 30)
    assert want == 0 and reason(status, "FailureTarget") == "DeadlineExceeded" and not reason(status, "Failed")
    status, want = plan(running, [], NOW + 31)
    assert want == 0 and reason(status, "Failed") == "DeadlineExceeded"


def test_work_queue_job_completes_after_a_success_once_nothing_runs():
    queue = job(completions=None, parallelism=3)
    assert plan(queue, [], NOW)[1] == 3
    status, want = plan(queue, pods("Succeeded", "Running"), NOW)
    assert want == 1 and "conditions" not in status
    status, want = plan(queue, pods("Succeeded", "Succeeded"), NOW)
    assert want == 0 and reason(status, "Complete") == "CompletionsReached"


def test_suspended_job_runs_nothing():
    status, want = plan(job(suspend=True), pods("Running"), NOW)
    assert want == 0 and reason(status, "Suspended") == "JobSuspended" and "startTime" not in status


def finished(phase: str, at: float, restarts: int = 0) -> dict:
    return {"metadata": {"name": f"{phase}-{at}"}, "status": {"phase": phase, "containerStatuses": [
        {"name": "c", "restartCount": restarts,
         "state": {"terminated": {"finishedAt": podutil.now_rfc3339(at)}}}]}}


def test_new_pods_wait_a_doubling_backoff_after_failures_since_the_last_success():
    assert backoff_remaining([], NOW) == 0
    one = [finished("Failed", NOW - 4)]
    assert backoff_remaining(one, NOW) == 6  # 10 s after the failure
    two = [finished("Failed", NOW - 30), finished("Failed", NOW - 4)]
    assert backoff_remaining(two, NOW) == 16  # 20 s after the latest
    assert backoff_remaining([*two, finished("Succeeded", NOW - 2)], NOW) == 0
    many = [finished("Failed", NOW - n) for n in range(12)]
    assert backoff_remaining(many, NOW) == 360  # capped at 6 minutes


def test_container_restarts_of_on_failure_pods_count_against_the_backoff_limit():
    on_failure = job(backoffLimit=2, template={"spec": {"restartPolicy": "OnFailure"}})
    restarting = {"metadata": {"name": "r"}, "status": {"phase": "Running", "containerStatuses": [
        {"name": "c", "restartCount": 1}]}}
    assert not restarts_exceed_limit(on_failure, [restarting])
    twice = {**restarting, "status": {"phase": "Running", "containerStatuses": [{"name": "c", "restartCount": 2}]}}
    assert restarts_exceed_limit(on_failure, [twice])
    status, want = plan(on_failure, [twice], NOW)
    assert want == 0 and reason(status, "FailureTarget") == "BackoffLimitExceeded"
    never = job(backoffLimit=2, template={"spec": {"restartPolicy": "Never"}})
    assert not restarts_exceed_limit(never, [twice])


# --- Indexed completion mode ------------------------------------------------------------------------------------

def indexed_pods(*entries: tuple[int, str]) -> list[dict]:
    return [{"metadata": {"name": f"p{i}", "annotations": {INDEX_KEY: str(index)}}, "status": {"phase": phase}}
            for i, (index, phase) in enumerate(entries)]


def test_completed_indexes_read_and_written_as_upstream_intervals():
    assert format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7" and format_indexes(set()) == ""
    assert parse_indexes("0-2,4,6-7") == {0, 1, 2, 4, 6, 7} and parse_indexes("x,3") == {3}
    assert parse_indexes(None) == set()


def test_an_indexed_job_completes_when_every_index_succeeded_once():
    indexed = job(completionMode="Indexed", completions=3, parallelism=2)
    status, want = plan(indexed, indexed_pods((0, "Succeeded"), (0, "Succeeded"), (5, "Succeeded")), NOW)
    assert want == 2 and status["succeeded"] == 1 and status["completedIndexes"] == "0"  # 0 twice, 5 out of range
    assert indexes_to_start(indexed, indexed_pods((0, "Succeeded"), (1, "Running")), 2) == [2]
    assert indexes_to_start(indexed, indexed_pods((1, "Failed")), 2) == [0, 1]  # a failed index runs again
    status, want = plan(indexed, indexed_pods((0, "Succeeded"), (1, "Succeeded"), (2, "Succeeded")), NOW)
    assert want == 0 and status["completedIndexes"] == "0-2" and reason(status, "Complete") == "CompletionsReached"
    indexed["status"] = {"completedIndexes": "0-1"}  # pods of finished indexes gone (pod GC): still counted
    status, want = plan(indexed, indexed_pods((2, "Succeeded")), NOW)
    assert status["succeeded"] == 3 and reason(status, "Complete") == "CompletionsReached"


def test_an_indexed_pod_knows_its_index():
    indexed = {"apiVersion": "batch/v1", "kind": "Job", **job(completionMode="Indexed")}
    indexed["metadata"]["uid"] = "u1"
    template = {"spec": {"subdomain": "svc", "containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}],
                         "initContainers": [{"name": "i"}]}}
    pod = indexed_pod(template, indexed, 2)
    assert pod["metadata"]["generateName"] == "pi-2-"
    assert pod["metadata"]["annotations"][INDEX_KEY] == pod["metadata"]["labels"][INDEX_KEY] == "2"
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("pi-2", "svc")
    for container in [*pod["spec"]["containers"], *pod["spec"]["initContainers"]]:
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}} in container["env"]
    assert template["spec"]["containers"][0]["env"] == [{"name": "X", "value": "1"}]  # the template is untouched


def test_an_elastic_indexed_job_stops_pods_beyond_its_completions_and_second_pods_of_an_index():
    shrunk = job(completionMode="Indexed", completions=2, parallelism=2)
    running = indexed_pods((0, "Running"), (1, "Running"), (2, "Running"), (3, "Running"))
    assert [p["metadata"]["name"] for p in pods_to_stop(shrunk, running, 2)] == ["p2", "p3"]
    twice = indexed_pods((0, "Pending"), (0, "Running"), (1, "Running"))
    assert [p["metadata"]["name"] for p in pods_to_stop(shrunk, twice, 2)] == ["p0"]  # the pending one goes
    assert len(pods_to_stop(job(completions=2, parallelism=2), running, 2)) == 2  # NonIndexed: by count only
    assert surplus_indexed_pods(shrunk, running[:2]) == []
