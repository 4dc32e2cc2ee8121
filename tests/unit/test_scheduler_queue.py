"""The scheduling queue: activeQ order (priority, then arrival), backoff growth and expiry, unschedulable pods moved
back only by the cluster events that may help them, and updates/deletes of queued pods. A fake clock drives time."""
from __future__ import annotations

import asyncio

import pytest
from test_scheduler_plugins import pod

from kpy_components.scheduler.framework import ASSIGNED_POD_DELETE, NODE_ADD, NODE_UPDATE
from kpy_components.scheduler.queue import ACTIVE, BACKOFF, GATED, UNSCHEDULABLE, SchedulingQueue

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock) -> SchedulingQueue:
    return SchedulingQueue(initial_backoff=1.0, max_backoff=10.0, clock=clock)


async def pop_names(queue: SchedulingQueue, count: int) -> list[str]:
    return [(await asyncio.wait_for(queue.pop(), 1)).info.name for _ in range(count)]


async def test_higher_priority_first_then_arrival_order(queue, clock):
    for name, priority in (("low-1", 0), ("high-1", 100), ("low-2", 0), ("high-2", 100)):
        queue.add(pod(name, priority=priority))
        clock.now += 1
    assert await pop_names(queue, 4) == ["high-1", "high-2", "low-1", "low-2"]


async def test_backoff_doubles_per_attempt_up_to_the_maximum(queue):
    assert [queue.backoff_duration(attempt) for attempt in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]


async def test_unschedulable_pod_waits_for_an_event_its_plugins_care_about(queue, clock):
    queue.add(pod("stuck"))
    queued = await queue.pop()
    queue.add_unschedulable(queued, frozenset({NODE_ADD, NODE_UPDATE}))
    assert queue.pending() == {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 1, GATED: 0}
    assert queue.move_on_event(ASSIGNED_POD_DELETE) == 0  # cannot help a pod rejected for its node's taints
    assert queue.move_on_event(NODE_ADD) == 1
    assert queue.pending() == {ACTIVE: 0, BACKOFF: 1, UNSCHEDULABLE: 0, GATED: 0}  # its 1 s backoff is not over yet
    clock.now += 1.0
    assert await pop_names(queue, 1) == ["stuck"]


async def test_backoff_expiry_wakes_a_waiting_pop(queue):
    queue.clock = asyncio.get_running_loop().time  # real time, briefly: pop must wake on its own
    queue.initial_backoff = 0.05
    queue.add(pod("retry"))
    queued = await queue.pop()
    queue.requeue_after_error(queued)
    assert (await asyncio.wait_for(queue.pop(), 1)).info.name == "retry"


async def test_a_move_during_the_attempt_sends_the_pod_to_backoff(queue):
    queue.add(pod("racing"))
    queued = await queue.pop()
    queue.move_on_event(NODE_ADD)  # a node arrived while the pod was being scheduled
    queue.add_unschedulable(queued, frozenset({NODE_ADD}))
    assert queue.pending()[BACKOFF] == 1


async def test_updates_give_unschedulable_pods_another_try_and_deletes_drop_them(queue, clock):
    queue.add(pod("edited"))
    queue.add(pod("deleted"))
    for queued in [await queue.pop(), await queue.pop()]:
        queue.add_unschedulable(queued, frozenset({NODE_ADD}))
    clock.now += 5
    queue.update(pod("edited", cpu="1"))
    queue.delete("default/deleted")
    assert queue.pending() == {ACTIVE: 1, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0}
    popped = await queue.pop()
    assert popped.info.requests == {"cpu": 1000} and popped.attempts == 2
    assert "default/deleted" not in queue


async def test_long_unschedulable_pods_are_retried_anyway(queue, clock):
    queue.add(pod("forgotten"))
    queue.add_unschedulable(await queue.pop(), frozenset({NODE_ADD}))
    clock.now += queue.max_unschedulable_seconds
    assert await pop_names(queue, 1) == ["forgotten"]


async def test_close_ends_pop(queue):
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    queue.close()
    assert await asyncio.wait_for(waiter, 1) is None
