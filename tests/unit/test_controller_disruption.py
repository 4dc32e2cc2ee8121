"""PodDisruptionBudget arithmetic: expected pods and desired healthy for minAvailable/maxUnavailable as ints and
percentages, healthy pods, and which recorded evictions still count."""
import time
from datetime import datetime, timezone

import pytest

from kpy_components.api.meta import format_rfc3339
from kpy_components.controller_manager.controllers.disruption import (DELETION_TIMEOUT, Budget, SyncFailed,
                                                                      count_healthy, desired_healthy,
                                                                      disrupted_still_pending)


def scale(value):
    return lambda: value


@pytest.mark.parametrize("spec, pods, controllers, expected", [
    ({"minAvailable": 2}, 3, 10, (3, 2)),
    ({"minAvailable": "50%"}, 3, 5, (5, 3)),
    ({"minAvailable": "100%"}, 3, 3, (3, 3)),
    ({"maxUnavailable": 1}, 3, 4, (4, 3)),
    ({"maxUnavailable": "34%"}, 3, 3, (3, 1)),
    ({"maxUnavailable": 9}, 3, 3, (3, 0)),
    ({}, 3, 3, (3, 0)),
], ids=["min-int", "min-percent", "min-all", "max-int", "max-percent-rounds-up", "max-beyond", "neither"])
def test_expected_and_desired(spec, pods, controllers, expected):
    assert desired_healthy(spec, pods, scale(controllers)) == expected


def test_the_controllers_scale_is_only_asked_for_when_needed():
    def fail():
        raise SyncFailed("found no controllers for pod 'x'")
    assert desired_healthy({"minAvailable": 1}, 2, fail) == (2, 1)
    with pytest.raises(SyncFailed, match="found no controllers"):
        desired_healthy({"maxUnavailable": 1}, 2, fail)


def test_allowed_never_drops_below_zero():
    assert Budget(expected=3, desired=2, healthy=3).allowed == 1
    assert Budget(expected=3, desired=3, healthy=1).allowed == 0


def pod(name, ready=True, deleting=False):
    metadata = {"name": name, **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"metadata": metadata, "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_healthy_pods_are_ready_not_deleting_and_not_just_evicted():
    pods = [pod("a"), pod("b", ready=False), pod("c", deleting=True), pod("d"), pod("e")]
    assert count_healthy(pods, {"d": "2026-01-01T00:00:00Z"}) == 2


def test_recorded_evictions_count_until_the_pod_goes_or_they_time_out():
    now = time.time()

    def stamp(age):
        return format_rfc3339(datetime.fromtimestamp(now - age, timezone.utc))
    pods = {"fresh": pod("fresh"), "old": pod("old"), "deleting": pod("deleting", deleting=True)}
    disrupted = {"fresh": stamp(5), "old": stamp(DELETION_TIMEOUT + 5), "deleting": stamp(5), "gone": stamp(5),
                 "garbled": "yesterday"}
    assert disrupted_still_pending(disrupted, pods, now) == {"fresh": disrupted["fresh"]}
