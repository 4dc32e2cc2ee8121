"""API validation and defaults of a Job's podFailurePolicy, backoffLimitPerIndex/maxFailedIndexes, successPolicy and
podReplacementPolicy: each bad spec gets upstream's field path and wording (Kubernetes 1.31)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpy_components.api.catalog import default_registry
from kpy_components.apiserver.registry.strategies import jobpolicies
from kpy_components.apiserver.registry.strategies.workloads import CronJobStrategy, JobStrategy, default_job_spec
from kpy_components.controller_manager.controllers.jobindexes import format_indexes, parse_indexes

TEMPLATE = {"spec": {"restartPolicy": "Never", "containers": [{"name": "main"}], "initContainers": [{"name": "setup"}]}}


def spec(**fields) -> dict:
    return {"completions": 4, "parallelism": 2, "template": TEMPLATE, **fields}


def indexed(**fields) -> dict:
    return spec(completionMode="Indexed", **fields)


def failure_policy(*rules: dict) -> dict:
    return {"rules": list(rules)}


def on_codes(operator="In", values=(1,), action="FailJob", **extra) -> dict:
    return {"action": action, "onExitCodes": {"operator": operator, "values": list(values), **extra}}


def errors(job_spec: dict) -> list[tuple[str, str]]:
    return [(cause.field, cause.message) for cause in jobpolicies.validate(job_spec)]


VALID = [
    spec(podFailurePolicy=failure_policy(on_codes("NotIn", [0, 1]), {"action": "Ignore", "onPodConditions": [
        {"type": "DisruptionTarget", "status": "True"}]}), podReplacementPolicy="Failed"),
    indexed(backoffLimitPerIndex=1, maxFailedIndexes=4,
            podFailurePolicy=failure_policy(on_codes(action="FailIndex", containerName="setup"))),
    indexed(successPolicy={"rules": [{"succeededIndexes": "0,2-3", "succeededCount": 3}, {"succeededCount": 1}]}),
]


@pytest.mark.parametrize("job_spec", VALID)
def test_valid_policies_pass(job_spec):
    assert errors(job_spec) == []


@pytest.mark.parametrize("job_spec, expected", [
    (spec(podFailurePolicy=failure_policy(on_codes()), template={"spec": {"restartPolicy": "OnFailure"}}),
     ("spec.template.spec.restartPolicy",
      'Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified')),
    (spec(podFailurePolicy=failure_policy(on_codes(action="FailIndex"))),
     ("spec.podFailurePolicy.rules[0].action",
      'Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set')),
    (spec(podFailurePolicy=failure_policy(on_codes(action="Retry"))),
     ("spec.podFailurePolicy.rules[0].action",
      'Unsupported value: "Retry": supported values: "Count", "FailIndex", "FailJob", "Ignore"')),
    (spec(podFailurePolicy=failure_policy({"onExitCodes": {"operator": "In", "values": [1]}})),
     ("spec.podFailurePolicy.rules[0].action",
      'Required value: valid values: ["Count" "FailIndex" "FailJob" "Ignore"]')),
    (spec(podFailurePolicy=failure_policy(on_codes("Between"))),
     ("spec.podFailurePolicy.rules[0].onExitCodes.operator",
      'Unsupported value: "Between": supported values: "In", "NotIn"')),
    (spec(podFailurePolicy=failure_policy(on_codes("In", [0, 3]))),
     ("spec.podFailurePolicy.rules[0].onExitCodes.values[0]", "Invalid value: 0: must not be 0 for the In operator")),
    (spec(podFailurePolicy=failure_policy(on_codes("In", [3, 1]))),
     ("spec.podFailurePolicy.rules[0].onExitCodes.values", "Invalid value: []int32{3, 1}: must be ordered")),
    (spec(podFailurePolicy=failure_policy(on_codes("In", [1, 1]))),
     ("spec.podFailurePolicy.rules[0].onExitCodes.values[1]", "Duplicate value: 1")),
    (spec(podFailurePolicy=failure_policy(on_codes("In", []))),
     ("spec.podFailurePolicy.rules[0].onExitCodes.values", "Invalid value: []int32{}: at least one value is required")),
    (spec(podFailurePolicy=failure_policy(on_codes("NotIn", range(256)))),
     ("spec.podFailurePolicy.rules[0].onExitCodes.values", "Too many: 256: must have at most 255 items")),
    (spec(podFailurePolicy=failure_policy(on_codes(containerName="sidecar"))),
     ("spec.podFailurePolicy.rules[0].onExitCodes.containerName",
      'Invalid value: "sidecar": must be one of the container or initContainer names in the pod template')),
    (spec(podFailurePolicy=failure_policy(*[on_codes()] * 21)),
     ("spec.podFailurePolicy.rules", "Too many: 21: must have at most 20 items")),
    (spec(podFailurePolicy=failure_policy({"action": "Ignore"})),
     ("spec.podFailurePolicy.rules[0]", "Invalid value: specifying one of OnExitCodes and OnPodConditions is "
                                        "required")),
    (spec(podFailurePolicy=failure_policy({**on_codes(), "onPodConditions": [{"type": "X", "status": "True"}]})),
     ("spec.podFailurePolicy.rules[0]", "Invalid value: specifying both OnExitCodes and OnPodConditions is not "
                                        "supported")),
    (spec(podFailurePolicy=failure_policy({"action": "Ignore", "onPodConditions": [{"type": "X", "status": "Yes"}]})),
     ("spec.podFailurePolicy.rules[0].onPodConditions[0].status",
      'Unsupported value: "Yes": supported values: "False", "True", "Unknown"')),
    (spec(podFailurePolicy=failure_policy(on_codes()), podReplacementPolicy="TerminatingOrFailed"),
     ("spec.podReplacementPolicy", 'Unsupported value: "TerminatingOrFailed": supported values: "Failed"')),
    (spec(backoffLimitPerIndex=1),
     ("spec.backoffLimitPerIndex", "Invalid value: 1: requires indexed completion mode")),
    (spec(maxFailedIndexes=1),
     ("spec.backoffLimitPerIndex", "Required value: when maxFailedIndexes is specified")),
    (indexed(backoffLimitPerIndex=-1),
     ("spec.backoffLimitPerIndex", "Invalid value: -1: must be greater than or equal to 0")),
    (indexed(backoffLimitPerIndex=1, maxFailedIndexes=5),
     ("spec.maxFailedIndexes", "Invalid value: 5: must be less than or equal to completions")),
    (spec(successPolicy={"rules": [{"succeededCount": 1}]}),
     ("spec.successPolicy", 'Invalid value: {"rules":[{"succeededCount":1}]}: requires indexed completion mode')),
    (indexed(successPolicy={"rules": []}),
     ("spec.successPolicy.rules",
      "Required value: at least one rules must be specified when the successPolicy is specified")),
    (indexed(successPolicy={"rules": [{}]}),
     ("spec.successPolicy.rules[0]",
      "Required value: at least one of succeededCount or succeededIndexes must be specified")),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "0-4"}]}),
     ("spec.successPolicy.rules[0].succeededIndexes",
      'Invalid value: "0-4": error parsing succeededIndexes: too large index: "4"')),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "2,1"}]}),
     ("spec.successPolicy.rules[0].succeededIndexes",
      'Invalid value: "2,1": error parsing succeededIndexes: non-increasing order, previous: 2, current: 1')),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "a"}]}),
     ("spec.successPolicy.rules[0].succeededIndexes",
      'Invalid value: "a": error parsing succeededIndexes: cannot convert string to integer for index: "a"')),
    (indexed(successPolicy={"rules": [{"succeededCount": 5}]}),
     ("spec.successPolicy.rules[0].succeededCount",
      "Invalid value: 5: must be less than or equal to 4 (the number of specified completions)")),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "0-1", "succeededCount": 3}]}),
     ("spec.successPolicy.rules[0].succeededCount",
      "Invalid value: 3: must be less than or equal to 2 (the number of indexes in the specified succeededIndexes "
      "field)")),
    (spec(podFailurePolicy="never"), ("spec.podFailurePolicy", 'Invalid value: "never": must be an object')),
    (indexed(successPolicy={"rules": [{"succeededIndexes": 1}]}),
     ("spec.successPolicy.rules[0].succeededIndexes", "Invalid value: 1: must be a string")),
])
def test_invalid_policies_are_refused_with_upstream_paths_and_words(job_spec, expected):
    assert expected in errors(job_spec)


def test_policies_and_the_per_index_limit_are_immutable():
    old = indexed(backoffLimitPerIndex=1, maxFailedIndexes=1, podFailurePolicy=failure_policy(on_codes()))
    new = {**old, "backoffLimitPerIndex": 2, "maxFailedIndexes": 2, "successPolicy": {"rules": [{"succeededCount": 1}]}}
    assert [(c.field, c.message) for c in jobpolicies.validate_immutable(new, old)] == [
        ("spec.backoffLimitPerIndex", "Invalid value: 2: field is immutable"),
        ("spec.successPolicy", 'Invalid value: {"rules":[{"succeededCount":1}]}: field is immutable')]


def test_defaults_follow_the_policies():
    per_index = indexed(backoffLimitPerIndex=1, podFailurePolicy=failure_policy(on_codes()))
    default_job_spec(per_index, None)
    assert per_index["backoffLimit"] == 2147483647 and per_index["podReplacementPolicy"] == "Failed"
    plain = spec()
    default_job_spec(plain, None)
    assert plain["backoffLimit"] == 6 and plain["podReplacementPolicy"] == "TerminatingOrFailed"


@given(st.sets(st.integers(min_value=0, max_value=300), max_size=40))
def test_what_the_controller_writes_the_validator_reads_back(indexes):
    """completedIndexes/failedIndexes as the controller formats them are valid succeededIndexes naming the same
    indexes, and the controller parses them back to the same set."""
    text = format_indexes(indexes)
    assert jobpolicies.count_indexes(text, 301) == len(indexes)
    assert parse_indexes(text, 301) == indexes


def test_a_cron_jobs_job_template_is_held_to_the_same_rules():
    info = default_registry().get("batch", "v1", "cronjobs")
    cronjob = {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {
        "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "main", "image": "busybox"}]}},
        "podFailurePolicy": failure_policy(on_codes())}}}}
    CronJobStrategy(info).default(cronjob)
    assert ("spec.jobTemplate.spec.template.spec.restartPolicy",
            'Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified') in [
        (cause.field, cause.message) for cause in CronJobStrategy(info).validate(cronjob)]


def test_an_indexed_job_changes_completions_only_together_with_parallelism():
    strategy = JobStrategy(default_registry().get("batch", "v1", "jobs"))
    old = {"spec": indexed(completions=4, parallelism=4)}

    def update(**fields):
        return [(c.field, c.message) for c in strategy.validate_immutable({"spec": {**old["spec"], **fields}}, old)]
    assert update(completions=2, parallelism=2) == []  # elastic Indexed Job
    assert update(completions=2) == [("spec.completions",
                                      "Invalid value: 2: can only be modified in tandem with spec.parallelism")]
    non_indexed = {"spec": spec(completions=4, parallelism=4)}
    assert [(c.field, c.message) for c in strategy.validate_immutable(
        {"spec": {**non_indexed["spec"], "completions": 2, "parallelism": 2}}, non_indexed)] == [
        ("spec.completions", "Invalid value: 2: field is immutable")]
