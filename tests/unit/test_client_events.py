"""The event recorder against the in-process fake API: Event contents, count aggregation of repeats, recreation
of expired Events, non-blocking callers with a bounded queue, retries, and flushing on stop."""
from __future__ import annotations

import asyncio
import json

import pytest

from kpy_components.client.events import EventRecorder, object_reference
from test_client_fake_api import Fault, fake_api  # noqa: F401

pytestmark = pytest.mark.anyio
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1",
                                                        "resourceVersion": "7"}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1", "uid": "u-2"}}


@pytest.fixture
async def recorder(fake_api):
    async with fake_api.client() as client:
        recorder = EventRecorder(client, "kpy-scheduler", "cp1")
        recorder.start()
        yield recorder
        await recorder.stop()


def events(fake_api) -> list[dict]:
    return [obj for key, obj in sorted(fake_api.objects.items()) if key[2] == "events"]


async def test_an_event_names_the_object_and_the_source(fake_api, recorder):
    recorder.event(POD, "Warning", "FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.")
    await recorder.flush()
    [event] = events(fake_api)
    assert event["metadata"]["namespace"] == "shop" and event["metadata"]["name"].startswith("web-0.")
    assert event["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "namespace": "shop", "name": "web-0",
                                       "uid": "u-1", "resourceVersion": "7"}
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "FailedScheduling", 1)
    assert event["message"] == "0/3 nodes are available: 3 Insufficient cpu."
    assert event["source"] == {"component": "kpy-scheduler", "host": "cp1"}
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert (event["reportingComponent"], event["reportingInstance"]) == ("kpy-scheduler", "cp1")


async def test_repeats_patch_the_count_and_different_events_stay_apart(fake_api, recorder):
    for _ in range(3):
        recorder.event(POD, "Warning", "FailedScheduling", "no nodes")
    recorder.eventf(POD, "Normal", "Scheduled", "Successfully assigned %s/%s to %s", "shop", "web-0", "n1")
    recorder.event(NODE, "Normal", "NodeReady", "ready")  # cluster-scoped: recorded in "default"
    await recorder.flush()
    by_reason = {event["reason"]: event for event in events(fake_api)}
    assert by_reason["FailedScheduling"]["count"] == 3
    assert by_reason["Scheduled"]["message"] == "Successfully assigned shop/web-0 to n1"
    assert by_reason["NodeReady"]["metadata"]["namespace"] == "default"
    patches = [json.loads(body) for method, _, _, body in fake_api.bodies if method == "PATCH"]
    assert [p["count"] for p in patches] == [2, 3] and all("lastTimestamp" in p for p in patches)
    assert {c for m, _, c, _ in fake_api.bodies if m == "PATCH"} == {"application/strategic-merge-patch+json"}


async def test_an_expired_event_is_created_again_with_its_count(fake_api, recorder):
    recorder.event(POD, "Normal", "Pulled", "image pulled")
    await recorder.flush()
    [event] = events(fake_api)
    fake_api.remove(event["metadata"]["name"], "shop", plural="events")  # the Event TTL ran out
    recorder.event(POD, "Normal", "Pulled", "image pulled")
    await recorder.flush()
    [again] = events(fake_api)
    assert again["metadata"]["name"] == event["metadata"]["name"] and again["count"] == 2
    assert again["firstTimestamp"] == event["firstTimestamp"]


async def test_transient_failures_are_retried_and_others_dropped(fake_api, recorder, monkeypatch):
    monkeypatch.setattr("kpy_components.client.events.Backoff.next_delay", lambda self: 0.01)
    fake_api.faults.append(Fault("POST", "/events", 503, times=2))
    recorder.event(POD, "Normal", "Retried", "x")
    await recorder.flush()
    assert [e["reason"] for e in events(fake_api)] == ["Retried"]
    fake_api.faults.append(Fault("POST", "/events", 403, reason="Forbidden"))
    recorder.event(POD, "Normal", "Refused", "x")
    recorder.event(POD, "Normal", "After", "x")
    await recorder.flush()
    assert sorted(e["reason"] for e in events(fake_api)) == ["After", "Retried"]


async def test_callers_never_block_a_full_queue_drops_and_counts(fake_api):
    async with fake_api.client() as client:
        recorder = EventRecorder(client, "kpy-test", queue_size=2)  # not started: nothing drains the queue
        for index in range(5):
            recorder.event(POD, "Normal", "Flood", f"event {index}")
        assert recorder.dropped == 3
        recorder.start()
        await recorder.stop()  # flushes what was queued
    assert sorted(e["message"] for e in events(fake_api)) == ["event 0", "event 1"]


def test_bad_calls_are_refused_at_once():
    recorder = EventRecorder.__new__(EventRecorder)  # no client needed to validate the call
    with pytest.raises(ValueError, match="event type 'Error': must be 'Normal' or 'Warning'"):
        EventRecorder.event(recorder, POD, "Error", "Reason", "message")
    with pytest.raises(ValueError, match="the object has no name"):
        EventRecorder.event(recorder, {"kind": "Pod"}, "Normal", "Reason", "message")


def test_object_reference_of_a_reference_and_a_field_path():
    assert object_reference({"kind": "Node", "name": "n1"}) == {"kind": "Node", "name": "n1"}
    assert object_reference(POD, "spec.containers{app}")["fieldPath"] == "spec.containers{app}"


async def test_stop_gives_up_after_its_timeout(fake_api):
    fake_api.faults.append(Fault("POST", "/events", 503, times=1000))
    async with fake_api.client() as client:
        recorder = EventRecorder(client, "kpy-test")
        recorder.start()
        recorder.event(POD, "Normal", "Stuck", "x")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await recorder.stop(timeout=0.2)
        assert loop.time() - started < 1.0
