"""The Job controller's pod failure policy, backoffLimitPerIndex and success policy (jobpolicy.py and job.plan), as
Kubernetes 1.31 decides them: which rule a failed pod matches and what it does to the Job's counts and
conditions, per-index failure counts and failed indexes, and when a success policy is met."""
from __future__ import annotations

from kpy_components.controller_manager.controllers import jobpolicy
from kpy_components.controller_manager.controllers import pods as podutil
from kpy_components.controller_manager.controllers.job import indexed_pod, indexes_to_start, plan, pods_to_create
from kpy_components.controller_manager.controllers.jobindexes import INDEX_KEY

NOW = 1_700_000_000.0
RESTART_NEVER = {"spec": {"restartPolicy": "Never", "containers": [{"name": "main"}, {"name": "side"}]}}


def job(**spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "ns", "uid": "u1"},
            "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 6, "template": RESTART_NEVER, **spec},
            "status": {}}


def pod(name: str, phase: str = "Failed", *, exit_codes: dict | None = None, init_exit_codes: dict | None = None,
        conditions: list | None = None, index: int | None = None, failures: int | None = None,
        finished: float = NOW) -> dict:
    """A pod of the Job; `exit_codes` {container: code} terminated at `finished` (None: still running)."""
    def statuses(codes):
        return [{"name": name_, "state": {"running": {}} if code is None else {"terminated": {
            "exitCode": code, "finishedAt": podutil.now_rfc3339(finished)}}} for name_, code in codes.items()]
    annotations = {}
    if index is not None:
        annotations[INDEX_KEY] = str(index)
    if failures is not None:
        annotations[jobpolicy.FAILURE_COUNT] = str(failures)
    return {"metadata": {"name": name, "namespace": "ns", "annotations": annotations},
            "status": {"phase": phase, "containerStatuses": statuses(exit_codes or {}),
                       "initContainerStatuses": statuses(init_exit_codes or {}), "conditions": conditions or []}}


def rules(*entries: dict) -> dict:
    return {"rules": list(entries)}


def on_codes(action: str, operator: str, values: list[int], container: str | None = None) -> dict:
    requirement = {"operator": operator, "values": values}
    if container is not None:
        requirement["containerName"] = container
    return {"action": action, "onExitCodes": requirement}


def on_condition(action: str, kind: str = "DisruptionTarget", status: str = "True") -> dict:
    return {"action": action, "onPodConditions": [{"type": kind, "status": status}]}


def condition(status: dict, kind: str) -> dict | None:
    return podutil.condition({"status": status}, kind)


def types(status: dict) -> list[str]:
    return [c["type"] for c in status.get("conditions") or ()]


# --- matching a failed pod ---------------------------------------------------------------------------------------

def test_exit_code_rules_match_terminated_containers_with_a_nonzero_code():
    match = jobpolicy.match_pod_failure_policy
    crashed = pod("p", exit_codes={"main": 42, "side": 0})
    assert match(rules(on_codes("FailJob", "In", [42])), crashed) == jobpolicy.Match(
        "FailJob", True, "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0")
    assert match(rules(on_codes("FailJob", "In", [1, 2])), crashed) == jobpolicy.Match()  # no rule: counted
    # NotIn: some container's nonzero code outside the values; the side container's 0 never matches
    assert match(rules(on_codes("Ignore", "NotIn", [42])), crashed) == jobpolicy.Match()
    assert match(rules(on_codes("Ignore", "NotIn", [1])), crashed) == jobpolicy.Match("Ignore", counts=False)
    assert match(rules(on_codes("Count", "In", [42], container="side")), crashed) == jobpolicy.Match()
    assert match(rules(on_codes("Count", "In", [42], container="main")), crashed) == jobpolicy.Match("Count")
    running = pod("r", exit_codes={"main": None})
    assert match(rules(on_codes("FailJob", "NotIn", [0])), running) == jobpolicy.Match()
    init_failed = pod("i", init_exit_codes={"setup": 3})
    assert match(rules(on_codes("FailJob", "In", [3])), init_failed).message == (
        "Container setup for pod ns/i failed with exit code 3 matching FailJob rule at index 0")


def test_rules_are_evaluated_in_order_and_unknown_actions_skipped():
    match = jobpolicy.match_pod_failure_policy
    evicted = pod("e", exit_codes={"main": 137},
                  conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}])
    policy = rules(on_codes("Retry", "In", [137]), on_condition("Ignore"), on_codes("FailJob", "In", [137]))
    assert match(policy, evicted) == jobpolicy.Match("Ignore", counts=False)
    policy = rules(on_condition("FailJob", status="False"), on_codes("FailJob", "In", [137]),
                   on_condition("Ignore"))
    assert match(policy, evicted).message.endswith("matching FailJob rule at index 1")
    assert match(rules(on_condition("FailJob")), evicted).message == (
        "Pod ns/e has condition DisruptionTarget matching FailJob rule at index 0")
    assert match(None, evicted) == jobpolicy.Match()


# --- what the Job does with it -----------------------------------------------------------------------------------

def test_a_fail_job_rule_fails_the_job_after_its_other_pods_stopped():
    failing = job(podFailurePolicy=rules(on_codes("FailJob", "In", [42])))
    crashed, running = pod("bad", exit_codes={"main": 42}), pod("ok", "Running", exit_codes={"main": None})
    status, want = plan(failing, [crashed, running], NOW)
    target = condition(status, "FailureTarget")
    assert want == 0 and types(status) == ["FailureTarget"]
    assert (target["reason"], target["message"]) == (
        "PodFailurePolicy", "Container main for pod ns/bad failed with exit code 42 matching FailJob rule at index 0")
    assert status["failed"] == 2 and status["terminating"] == 1 and not status.get("active")
    failing["status"] = status
    status, want = plan(failing, [crashed], NOW + 1)
    assert types(status) == ["FailureTarget", "Failed"] and status["failed"] == 2
    failed = condition(status, "Failed")
    assert (failed["reason"], failed["message"]) == (target["reason"], target["message"])
    assert "completionTime" not in status


def test_ignored_failures_do_not_count_towards_the_backoff_limit():
    tolerant = job(backoffLimit=0, podFailurePolicy=rules(on_condition("Ignore"), on_codes("Count", "In", [1])))
    evicted = pod("e", conditions=[{"type": "DisruptionTarget", "status": "True"}], exit_codes={"main": 137})
    status, want = plan(tolerant, [evicted], NOW)
    assert want == 2 and not status.get("failed") and "conditions" not in status  # replaced, not counted
    status, want = plan(tolerant, [evicted, pod("c", exit_codes={"main": 1})], NOW)
    assert status["failed"] == 1 and condition(status, "FailureTarget")["reason"] == "BackoffLimitExceeded"


def test_with_a_failure_policy_a_terminating_pod_is_replaced_only_once_it_failed():
    indexed = job(completionMode="Indexed", podFailurePolicy=rules(on_condition("Ignore")))
    stopping = pod("s", "Running", index=0)
    stopping["metadata"]["deletionTimestamp"] = podutil.now_rfc3339(NOW)
    assert indexes_to_start(indexed, [stopping], 2) == [1, 2]
    plain = job(completionMode="Indexed")
    assert indexes_to_start(plain, [stopping], 2) == [0, 1]  # TerminatingOrFailed: replaced at once
    assert plan(indexed, [stopping], NOW)[0]["terminating"] == 1


# --- backoffLimitPerIndex ----------------------------------------------------------------------------------------

def per_index(**spec) -> dict:
    return job(**{"completionMode": "Indexed", "completions": 4, "parallelism": 4, "backoffLimitPerIndex": 1,
                  "backoffLimit": 2147483647, **spec})


def test_a_replacement_pod_carries_the_failure_count_of_its_index():
    limited = per_index(podFailurePolicy=rules(on_condition("Ignore")))
    first = indexed_pod(limited["spec"]["template"], limited, 0)
    assert first["metadata"]["annotations"][jobpolicy.FAILURE_COUNT] == "0"
    again = indexed_pod(limited["spec"]["template"], limited, 0, pod("f", index=0, failures=0))
    assert again["metadata"]["annotations"][jobpolicy.FAILURE_COUNT] == "1"
    assert jobpolicy.IGNORED_FAILURE_COUNT not in again["metadata"]["annotations"]
    disrupted = pod("d", index=0, failures=1, conditions=[{"type": "DisruptionTarget", "status": "True"}])
    annotations = indexed_pod(limited["spec"]["template"], limited, 0, disrupted)["metadata"]["annotations"]
    assert (annotations[jobpolicy.FAILURE_COUNT], annotations[jobpolicy.IGNORED_FAILURE_COUNT]) == ("1", "1")
    plain = job(completionMode="Indexed")
    assert jobpolicy.FAILURE_COUNT not in indexed_pod(plain["spec"]["template"], plain, 0)["metadata"]["annotations"]


def test_an_index_fails_after_its_own_backoff_limit_and_is_not_run_again():
    limited = per_index()
    once = [pod("a", index=1, failures=0, exit_codes={"main": 1}, finished=NOW - 4)]
    status, want = plan(limited, once, NOW)
    assert status["failedIndexes"] == "" and status["failed"] == 1 and "conditions" not in status
    created, wait = pods_to_create(limited, once, 4, NOW)
    assert [p["metadata"]["annotations"][INDEX_KEY] for p in created] == ["0", "2", "3"] and wait == 0
    limited["status"] = {"completedIndexes": "0,2-3"}
    created, wait = pods_to_create(limited, once, 4, NOW)
    assert created == [] and wait == 6  # index 1 alone is left: it waits its own 10 s backoff
    created, _ = pods_to_create(limited, once, 4, NOW + 6)
    assert [p["metadata"]["annotations"][INDEX_KEY] for p in created] == ["1"]
    assert created[0]["metadata"]["annotations"][jobpolicy.FAILURE_COUNT] == "1"
    limited["status"] = {}
    twice = [*once, pod("b", index=1, failures=1, exit_codes={"main": 1})]
    status, want = plan(limited, twice, NOW)
    assert status["failedIndexes"] == "1" and status["failed"] == 2 and "conditions" not in status
    assert indexes_to_start(limited, twice, 4) == [0, 2, 3]


def test_a_fail_index_rule_fails_the_index_at_once():
    limited = per_index(backoffLimitPerIndex=5, podFailurePolicy=rules(on_codes("FailIndex", "In", [3])))
    status, _ = plan(limited, [pod("a", index=2, failures=0, exit_codes={"main": 3})], NOW)
    assert status["failedIndexes"] == "2" and status["failed"] == 1


def test_the_job_fails_when_every_index_is_done_and_some_failed():
    limited = per_index()
    limited["status"] = {"completedIndexes": "0,2-3", "failedIndexes": "1"}
    status, want = plan(limited, [], NOW)
    assert want == 0 and types(status) == ["FailureTarget", "Failed"]
    assert (condition(status, "Failed")["reason"], condition(status, "Failed")["message"]) == (
        "FailedIndexes", "Job has failed indexes")


def test_the_job_fails_once_more_indexes_failed_than_max_failed_indexes():
    limited = per_index(backoffLimitPerIndex=0, maxFailedIndexes=1)
    running = pod("r", "Running", index=3, exit_codes={"main": None})
    failed = [pod("a", index=0, failures=0, exit_codes={"main": 1}), pod("b", index=1, failures=0,
                                                                         exit_codes={"main": 1})]
    status, want = plan(limited, [failed[0], running], NOW)
    assert want == 4 and status["failedIndexes"] == "0" and "conditions" not in status
    status, want = plan(limited, [*failed, running], NOW)
    target = condition(status, "FailureTarget")
    assert want == 0 and (target["reason"], target["message"]) == (
        "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes")
    assert status["failedIndexes"] == "0-1" and status["terminating"] == 1 and not condition(status, "Failed")


# --- successPolicy -----------------------------------------------------------------------------------------------

def test_success_policy_rules_on_indexes_and_counts():
    def message(*rule_list, succeeded):
        return jobpolicy.success_policy_message(job(completions=10, successPolicy=rules(*rule_list)), succeeded)
    assert message({"succeededIndexes": "0,2-3"}, succeeded={0, 2}) is None
    assert message({"succeededIndexes": "0,2-3"}, succeeded={0, 2, 3, 7}) == "Matched rules at index 0"
    assert message({"succeededIndexes": "0-4", "succeededCount": 2}, succeeded={1, 7}) is None
    assert message({"succeededCount": 9}, {"succeededIndexes": "0-4", "succeededCount": 2},
                   succeeded={1, 4, 7}) == "Matched rules at index 1"
    assert message({"succeededCount": 3}, succeeded={1, 4, 7}) == "Matched rules at index 0"
    assert message({"succeededCount": 0}, succeeded=set()) is None  # nothing succeeded: never met


def test_a_met_success_policy_completes_the_job_after_its_other_pods_stopped():
    leader = job(completionMode="Indexed", completions=3, parallelism=3,
                 successPolicy=rules({"succeededIndexes": "0"}))
    pods = [pod("l", "Succeeded", index=0, exit_codes={"main": 0}), pod("w", "Running", index=1)]
    status, want = plan(leader, pods, NOW)
    met = condition(status, "SuccessCriteriaMet")
    assert want == 0 and types(status) == ["SuccessCriteriaMet"] and status["terminating"] == 1
    assert (met["reason"], met["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    assert not status.get("failed") and "completionTime" not in status  # stopped pods of a success are no failures
    leader["status"] = status
    status, want = plan(leader, pods[:1], NOW + 2)
    complete = condition(status, "Complete")
    assert types(status) == ["SuccessCriteriaMet", "Complete"] and status["succeeded"] == 1
    assert (complete["reason"], complete["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    assert status["completionTime"] == podutil.now_rfc3339(NOW + 2)
