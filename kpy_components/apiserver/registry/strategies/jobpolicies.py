"""Validation of a Job spec's podFailurePolicy, backoffLimitPerIndex/maxFailedIndexes, successPolicy and
podReplacementPolicy, with upstream's field paths and wording (Kubernetes 1.31 pkg/apis/batch/validation). Used for
Jobs (`spec`) and CronJobs' job templates (`spec.jobTemplate.spec`)."""
from __future__ import annotations

import re

from kpy_components.api.errors import Cause
from kpy_components.api.meta import field_duplicate, field_invalid, field_not_supported, field_required, field_too_long

from .. import validation

MAX_RULES = 20  # podFailurePolicy.rules and successPolicy.rules
MAX_EXIT_CODES = 255
MAX_CONDITION_PATTERNS = 20
MAX_SUCCEEDED_INDEXES_LENGTH = 64 * 1024
MAX_FAILED_INDEXES = 100_000
COMPLETIONS_SOFT_LIMIT, PARALLELISM_ABOVE_SOFT_LIMIT, MAX_FAILED_INDEXES_ABOVE_SOFT_LIMIT = 100_000, 10_000, 10_000
ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
OPERATORS = ["In", "NotIn"]
CONDITION_STATUSES = ["False", "True", "Unknown"]
REPLACEMENT_POLICIES = ["Failed", "TerminatingOrFailed"]
_INTEGER = re.compile(r"[+-]?[0-9]+")
IMMUTABLE = ("podFailurePolicy", "backoffLimitPerIndex", "successPolicy")  # besides selector, completions, mode


def _too_many(path: str, count: int, limit: int) -> Cause:
    return Cause(path, f"Too many: {count}: must have at most {limit} items", "FieldValueTooMany")


def _invalid(path: str, detail: str) -> Cause:
    """field.Invalid with field.OmitValueType{}: no value shown."""
    return Cause(path, f"Invalid value: {detail}", "FieldValueInvalid")


def _valid_values(supported: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "valid values: [" + " ".join(f'"{value}"' for value in supported) + "]"


def _int32s(values) -> str:
    """Go's %#v of a []int32, as upstream prints a bad values list."""
    return "[]int32{" + ", ".join(str(value) for value in values) + "}"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(spec: dict, path: str = "spec") -> list[Cause]:
    causes = _per_index(spec, path)
    policy = spec.get("podFailurePolicy")
    if policy is not None:
        causes.extend(_pod_failure_policy(spec, policy, f"{path}.podFailurePolicy"))
        restart = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
        if restart == "OnFailure":  # Always and unknown values have their own errors
            causes.append(field_invalid(f"{path}.template.spec.restartPolicy", restart,
                                        'only "Never" is supported when podFailurePolicy is specified'))
    success = spec.get("successPolicy")
    if success is not None:
        if spec.get("completionMode") != "Indexed":
            causes.append(field_invalid(f"{path}.successPolicy", success, "requires indexed completion mode"))
        else:
            causes.extend(_success_policy(spec, success, f"{path}.successPolicy"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        allowed = ["Failed"] if policy is not None else REPLACEMENT_POLICIES
        causes.extend(validation.one_of(replacement, f"{path}.podReplacementPolicy", allowed))
    return causes


def validate_immutable(new_spec: dict, old_spec: dict, path: str = "spec") -> list[Cause]:
    return [field_invalid(f"{path}.{name}", new_spec.get(name), "field is immutable") for name in IMMUTABLE
            if new_spec.get(name) != old_spec.get(name)]


def _per_index(spec: dict, path: str) -> list[Cause]:
    per_index, most = spec.get("backoffLimitPerIndex"), spec.get("maxFailedIndexes")
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    causes = validation.non_negative(per_index, f"{path}.backoffLimitPerIndex")
    if most is not None:
        causes.extend(validation.non_negative(most, f"{path}.maxFailedIndexes"))
        if per_index is None:
            causes.append(field_required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    if spec.get("completionMode") != "Indexed":
        causes.extend(field_invalid(f"{path}.{name}", value, "requires indexed completion mode")
                      for name, value in (("backoffLimitPerIndex", per_index), ("maxFailedIndexes", most))
                      if value is not None)
        return causes
    if _is_int(most) and _is_int(completions) and most > completions:
        causes.append(field_invalid(f"{path}.maxFailedIndexes", most, "must be less than or equal to completions"))
    if _is_int(most) and most > MAX_FAILED_INDEXES:
        causes.append(field_invalid(f"{path}.maxFailedIndexes", most,
                                    f"must be less than or equal to {MAX_FAILED_INDEXES}"))
    if _is_int(completions) and completions > COMPLETIONS_SOFT_LIMIT and per_index is not None:
        above = f"when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
        if most is None:
            causes.append(field_required(f"{path}.maxFailedIndexes",
                                         f"must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"))
        if _is_int(parallelism) and parallelism > PARALLELISM_ABOVE_SOFT_LIMIT:
            causes.append(field_invalid(f"{path}.parallelism", parallelism, "must be less than or equal to "
                                        f"{PARALLELISM_ABOVE_SOFT_LIMIT} {above}"))
        if _is_int(most) and most > MAX_FAILED_INDEXES_ABOVE_SOFT_LIMIT:
            causes.append(field_invalid(f"{path}.maxFailedIndexes", most, "must be less than or equal to "
                                        f"{MAX_FAILED_INDEXES_ABOVE_SOFT_LIMIT} {above}"))
    return causes


def _rules(policy, path: str) -> tuple[list[Cause], list[dict]]:
    """The policy's rules (objects only) and the errors of their list."""
    if not isinstance(policy, dict):
        return [field_invalid(path, policy, "must be an object")], []
    rules = policy.get("rules")
    if rules is not None and not isinstance(rules, list):
        return [field_invalid(f"{path}.rules", rules, "must be a list")], []
    rules = rules or []
    causes = [_too_many(f"{path}.rules", len(rules), MAX_RULES)] if len(rules) > MAX_RULES else []
    return causes, [rule if isinstance(rule, dict) else {} for rule in rules]


def _pod_failure_policy(spec: dict, policy, path: str) -> list[Cause]:
    causes, rules = _rules(policy, path)
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    names = {container.get("name") for container in [*(pod_spec.get("containers") or ()),
                                                      *(pod_spec.get("initContainers") or ())]
             if isinstance(container, dict)}
    for index, rule in enumerate(rules):
        here = f"{path}.rules[{index}]"
        action = rule.get("action")
        if not action:
            causes.append(field_required(f"{here}.action", _valid_values(ACTIONS)))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                causes.append(field_invalid(f"{here}.action", action, "requires the backoffLimitPerIndex to be set"))
        elif action not in ACTIONS:
            causes.append(field_not_supported(f"{here}.action", action, ACTIONS))
        on_codes, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if on_codes is not None:
            causes.extend(_on_exit_codes(on_codes if isinstance(on_codes, dict) else {}, f"{here}.onExitCodes",
                                         names))
        if on_conditions:
            causes.extend(_on_pod_conditions(on_conditions if isinstance(on_conditions, list) else [],
                                             f"{here}.onPodConditions"))
        if on_codes is not None and on_conditions:
            causes.append(_invalid(here, "specifying both OnExitCodes and OnPodConditions is not supported"))
        if on_codes is None and not on_conditions:
            causes.append(_invalid(here, "specifying one of OnExitCodes and OnPodConditions is required"))
    return causes


def _on_exit_codes(requirement: dict, path: str, container_names: set) -> list[Cause]:
    causes = []
    operator = requirement.get("operator")
    if not operator:
        causes.append(field_required(f"{path}.operator", _valid_values(OPERATORS)))
    elif operator not in OPERATORS:
        causes.append(field_not_supported(f"{path}.operator", operator, OPERATORS))
    name = requirement.get("containerName")
    if name is not None and name not in container_names:
        causes.append(field_invalid(f"{path}.containerName", name,
                                    "must be one of the container or initContainer names in the pod template"))
    values = requirement.get("values")
    values = values if isinstance(values, list) else []
    if not values:
        causes.append(Cause(f"{path}.values", f"Invalid value: {_int32s(values)}: at least one value is required"))
    elif len(values) > MAX_EXIT_CODES:
        causes.append(_too_many(f"{path}.values", len(values), MAX_EXIT_CODES))
    seen: set = set()
    for index, value in enumerate(values):
        here = f"{path}.values[{index}]"
        if not _is_int(value):
            causes.append(field_invalid(here, value, "must be an integer"))
            continue
        if operator == "In" and value == 0:
            causes.append(field_invalid(here, value, "must not be 0 for the In operator"))
        if value in seen:
            causes.append(field_duplicate(here, value))
        seen.add(value)
    numbers = [value for value in values if _is_int(value)]
    if any(earlier > later for earlier, later in zip(numbers, numbers[1:])):
        causes.append(Cause(f"{path}.values", f"Invalid value: {_int32s(values)}: must be ordered"))
    return causes


def _on_pod_conditions(patterns: list, path: str) -> list[Cause]:
    causes = [_too_many(path, len(patterns), MAX_CONDITION_PATTERNS)] if len(patterns) > MAX_CONDITION_PATTERNS \
        else []
    for index, pattern in enumerate(patterns):
        pattern = pattern if isinstance(pattern, dict) else {}
        here = f"{path}[{index}]"
        causes.extend(validation.qualified_name(str(pattern.get("type") or ""), f"{here}.type"))
        status = pattern.get("status")
        if not status:
            causes.append(field_required(f"{here}.status", _valid_values(CONDITION_STATUSES)))
        elif status not in CONDITION_STATUSES:
            causes.append(field_not_supported(f"{here}.status", status, CONDITION_STATUSES))
    return causes


def _success_policy(spec: dict, policy, path: str) -> list[Cause]:
    causes, rules = _rules(policy, path)
    if not rules:
        causes.append(field_required(f"{path}.rules",
                                     "at least one rules must be specified when the successPolicy is specified"))
    completions = spec.get("completions") if _is_int(spec.get("completions")) else 0
    for index, rule in enumerate(rules):
        here = f"{path}.rules[{index}]"
        indexes, count = rule.get("succeededIndexes"), rule.get("succeededCount")
        if indexes is None and count is None:
            causes.append(field_required(here, "at least one of succeededCount or succeededIndexes must be "
                                               "specified"))
        total = 0
        if indexes is not None and not isinstance(indexes, str):
            causes.append(field_invalid(f"{here}.succeededIndexes", indexes, "must be a string"))
        elif indexes is not None:
            if len(indexes) > MAX_SUCCEEDED_INDEXES_LENGTH:
                causes.append(field_too_long(f"{here}.succeededIndexes", indexes, MAX_SUCCEEDED_INDEXES_LENGTH))
            try:
                total = count_indexes(indexes, completions)
            except ValueError as error:
                causes.append(field_invalid(f"{here}.succeededIndexes", indexes,
                                            f"error parsing succeededIndexes: {error}"))
        if count is not None:
            causes.extend(validation.non_negative(count, f"{here}.succeededCount"))
            if _is_int(count) and count > completions:
                causes.append(field_invalid(f"{here}.succeededCount", count, f"must be less than or equal to "
                                            f"{completions} (the number of specified completions)"))
            if _is_int(count) and isinstance(indexes, str) and count > total:
                causes.append(field_invalid(f"{here}.succeededCount", count, f"must be less than or equal to "
                                            f"{total} (the number of indexes in the specified succeededIndexes "
                                            "field)"))
    return causes


def count_indexes(text: str, completions: int) -> int:
    """How many indexes "0,2-4" names (validateIndexesFormat): intervals increasing, each index below
    `completions`; a ValueError in upstream's words otherwise."""
    if not text:
        return 0
    total, last = 0, None
    for interval in text.split(","):
        first, final = _interval(interval, completions)
        if last is not None and last >= first:
            raise ValueError(f"non-increasing order, previous: {last}, current: {first}")
        total += final - first + 1
        last = final
    return total


def _interval(text: str, completions: int) -> tuple[int, int]:
    limits = text.split("-")
    if len(limits) > 2:
        raise ValueError(f"the fragment \"{text}\" violates the requirement that an index interval can have at "
                         "most two parts separated by '-'")
    numbers = []
    for limit in limits:
        if not _INTEGER.fullmatch(limit):  # what Go's strconv.Atoi reads
            raise ValueError(f"cannot convert string to integer for index: \"{limit}\"")
        number = int(limit)
        if number >= completions:
            raise ValueError(f"too large index: \"{limit}\"")
        numbers.append(number)
    if len(numbers) == 2 and numbers[0] >= numbers[1]:
        raise ValueError(f"non-increasing order, previous: {numbers[0]}, current: {numbers[1]}")
    return numbers[0], numbers[-1]
