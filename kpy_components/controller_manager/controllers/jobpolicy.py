"""What a Job's spec says about its finished pods, as Kubernetes 1.31's Job controller reads it (pure functions):

- spec.podFailurePolicy: the first rule matching a failed pod decides. onExitCodes looks at terminated containers
  (app containers, then init containers; exit code 0 never matches; containerName narrows it), onPodConditions at
  the pod's conditions (type and status). Actions: FailJob (the Job fails), FailIndex (the pod's index fails),
  Ignore (not counted towards backoffLimit), Count (counted, as without a policy). No rule: counted.
- spec.backoffLimitPerIndex: each pod of an index carries how many earlier pods of its index failed
  (batch.kubernetes.io/job-index-failure-count, and the ignored ones in ...-ignored-failure-count); a counted failure
  of a pod whose count already reached the limit, or a FailIndex match, fails the index. A failed index is never
  run again; its replacement waits the pod failure backoff of that index alone.
- spec.successPolicy: the first rule met by the succeeded indexes ("Matched rules at index <i>").
"""
from __future__ import annotations

from dataclasses import dataclass

from kpy_components.api import meta

from . import pods as podutil
from .jobindexes import completed_indexes, completion_index, parse_indexes

FAIL_JOB, FAIL_INDEX, IGNORE, COUNT = "FailJob", "FailIndex", "Ignore", "Count"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
BACKOFF_BASE, BACKOFF_MAX = 10.0, 360.0  # seconds: DefaultJobPodFailureBackOff, MaxJobPodFailureBackOff


@dataclass(frozen=True)
class Match:
    action: str | None = None  # the matching rule's action; None when no rule matched
    counts: bool = True  # counts towards backoffLimit (and backoffLimitPerIndex): False only for Ignore
    message: str | None = None  # FailJob: why the Job fails, in upstream's words


def match_pod_failure_policy(policy: dict | None, pod: dict) -> Match:
    """How the policy treats this failed pod. A rule with an action this version does not know is skipped."""
    for index, rule in enumerate((policy or {}).get("rules") or ()):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            container = _matching_container(pod, rule["onExitCodes"])
            if container is None:
                continue
            code = container["state"]["terminated"].get("exitCode")
            message = (f"Container {container.get('name')} for pod {meta.namespace_of(pod)}/{meta.name_of(pod)} "
                       f"failed with exit code {code} matching {action} rule at index {index}")
        elif rule.get("onPodConditions") is not None:
            condition = _matching_condition(pod, rule["onPodConditions"])
            if condition is None:
                continue
            message = (f"Pod {meta.namespace_of(pod)}/{meta.name_of(pod)} has condition {condition.get('type')} "
                       f"matching {action} rule at index {index}")
        else:
            continue
        if action == FAIL_JOB:
            return Match(FAIL_JOB, True, message)
        if action in (FAIL_INDEX, COUNT):
            return Match(action)
        if action == IGNORE:
            return Match(IGNORE, counts=False)
    return Match()


def _matching_container(pod: dict, requirement: dict) -> dict | None:
    status = pod.get("status") or {}
    for container in [*(status.get("containerStatuses") or ()), *(status.get("initContainerStatuses") or ())]:
        terminated = (container.get("state") or {}).get("terminated")
        if not terminated or not terminated.get("exitCode"):
            continue  # still running, or succeeded: exit code 0 is never a failure to match
        name = requirement.get("containerName")
        if name is not None and name != container.get("name"):
            continue
        listed = terminated["exitCode"] in (requirement.get("values") or ())
        if {"In": listed, "NotIn": not listed}.get(requirement.get("operator"), False):
            return container
    return None


def _matching_condition(pod: dict, patterns: list[dict]) -> dict | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if any(condition.get("type") == p.get("type") and condition.get("status") == p.get("status")
               for p in patterns):
            return condition
    return None


def is_failed(pod: dict) -> bool:
    return podutil.phase(pod) == "Failed"


def counted_failures(job: dict, pods: list[dict]) -> int:
    """Failed pods that count towards backoffLimit (all of them without a policy)."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    return sum(1 for pod in pods if is_failed(pod) and match_pod_failure_policy(policy, pod).counts)


def fail_job_message(job: dict, pods: list[dict]) -> str | None:
    """The message of the first failed pod matching a FailJob rule, None when none does."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if not policy:
        return None
    return next((match.message for pod in pods if is_failed(pod)
                 and (match := match_pod_failure_policy(policy, pod)).action == FAIL_JOB), None)


def only_replaces_failed_pods(job: dict) -> bool:
    """podReplacementPolicy Failed (the only one allowed with a podFailurePolicy): a terminating pod is replaced
    once it has failed, not while it terminates."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or bool(spec.get("podFailurePolicy"))


# --- backoffLimitPerIndex ----------------------------------------------------------------------------------------

def has_backoff_limit_per_index(job: dict) -> bool:
    spec = job.get("spec") or {}
    return spec.get("backoffLimitPerIndex") is not None and spec.get("completionMode") == "Indexed"


def failure_counts(pod: dict) -> tuple[int, int]:
    """(earlier counted failures, earlier ignored failures) of the pod's index, from its annotations."""
    annotations = meta.annotations_of(pod)

    def read(key: str) -> int:
        try:
            return max(int(annotations.get(key, 0)), 0)
        except (TypeError, ValueError):
            return 0
    return read(FAILURE_COUNT), read(IGNORED_FAILURE_COUNT)


def next_failure_counts(job: dict, replaced: dict | None) -> tuple[int, int]:
    """The counts a new pod of an index carries: its failed predecessor's, plus that failure."""
    if replaced is None:
        return 0, 0
    counted, ignored = failure_counts(replaced)
    if match_pod_failure_policy((job.get("spec") or {}).get("podFailurePolicy"), replaced).counts:
        return counted + 1, ignored
    return counted, ignored + 1


def fails_its_index(job: dict, pod: dict) -> bool:
    if not is_failed(pod):
        return False
    match = match_pod_failure_policy((job.get("spec") or {}).get("podFailurePolicy"), pod)
    if match.action == FAIL_INDEX:
        return True
    return match.counts and failure_counts(pod)[0] >= (job.get("spec") or {}).get("backoffLimitPerIndex", 0)


def failed_indexes(job: dict, pods: list[dict]) -> set[int]:
    """status.failedIndexes plus the indexes failed pods fail now (below completions, not succeeded)."""
    completions = (job.get("spec") or {}).get("completions") or 0
    known = parse_indexes((job.get("status") or {}).get("failedIndexes"), completions)
    new = {index for pod in pods if fails_its_index(job, pod)
           and (index := completion_index(pod)) is not None and index < completions}
    return (known | new) - completed_indexes(job, pods)


def last_failed_pods(pods: list[dict]) -> dict[int, dict]:
    """Per index, its failed pod with the most failures before it: the one whose counts its replacement
    continues."""
    last: dict[int, dict] = {}
    for pod in pods:
        index = completion_index(pod)
        if not is_failed(pod) or index is None:
            continue
        if index not in last or sum(failure_counts(last[index])) <= sum(failure_counts(pod)):
            last[index] = pod
    return last


def backoff_delay(failures: int) -> float:
    """The pod failure backoff after `failures` failures in a row: 10 s, doubling, at most 6 minutes."""
    return min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX) if failures > 0 else 0.0


def finished_at(pod: dict) -> float | None:
    """When the pod's containers ended (the latest finishedAt), None if it does not say."""
    times = []
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        finished = ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
        try:
            times.append(meta.parse_rfc3339(finished).timestamp())
        except (TypeError, ValueError):
            continue
    return max(times, default=None)


def index_backoff_remaining(last_failed: dict | None, now: float) -> float:
    """Seconds before an index whose last pod failed may start again: the backoff of its failures so far."""
    if last_failed is None:
        return 0.0
    finished = finished_at(last_failed)
    if finished is None:
        return 0.0
    return max(0.0, finished + backoff_delay(sum(failure_counts(last_failed)) + 1) - now)


# --- successPolicy -----------------------------------------------------------------------------------------------

def success_policy_message(job: dict, succeeded: set[int]) -> str | None:
    """"Matched rules at index <i>" for the first rule the succeeded indexes meet, None when none is met."""
    spec = job.get("spec") or {}
    if not succeeded:
        return None
    for index, rule in enumerate((spec.get("successPolicy") or {}).get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_indexes(rule["succeededIndexes"], spec.get("completions") or 0)
            if not required:
                continue
            met = len(required & succeeded)
            if met == len(required) or count is not None and met >= count:
                return f"Matched rules at index {index}"
        elif count is not None and len(succeeded) >= count:
            return f"Matched rules at index {index}"
    return None
