"""The work queue: de-duplication, one worker per key, re-queue after done, shutdown draining, delayed and
rate-limited adds, the rate limiters, and Hypothesis properties (no key processed concurrently, no add lost)."""
from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kpy_components.client.ratelimit import ExponentialBackoff, MaxOf, TokenBucket, default_controller_rate_limiter
from kpy_components.client.workqueue import QueueEmpty, ShutDown, WorkQueue, run_workers
from test_client_fake_api import eventually  # noqa: F401

KEYS = st.sampled_from(["a", "b", "c", "d"])


# --- behaviour -----------------------------------------------------------------------------------------------------

def test_a_queued_key_is_queued_once_and_keys_come_out_in_order():
    queue = WorkQueue()
    for key in ("b", "a", "b", "c", "a"):
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get_nowait() for _ in range(3)] == ["b", "a", "c"]
    with pytest.raises(QueueEmpty):
        queue.get_nowait()


def test_a_key_in_processing_is_not_handed_out_again_until_done():
    queue = WorkQueue()
    queue.add("a")
    assert queue.get_nowait() == "a" and queue.processing() == {"a"}
    queue.add("a")  # changed while being worked on
    queue.add("a")
    with pytest.raises(QueueEmpty):
        queue.get_nowait()
    queue.done("a")
    assert queue.get_nowait() == "a"
    queue.done("a")
    assert len(queue) == 0
    with pytest.raises(ValueError, match="done\\('a'\\): the key is not being processed"):
        queue.done("a")


@pytest.mark.anyio
async def test_get_waits_for_an_add():
    queue = WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("a")
    assert await asyncio.wait_for(getter, 1) == "a"


@pytest.mark.anyio
async def test_shut_down_drains_queued_keys_then_ends_workers():
    queue = WorkQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shut_down()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiting, 1)

    queue = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.shut_down()
    queue.add("c")  # ignored
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    with pytest.raises(ShutDown):
        await queue.get()


@pytest.mark.anyio
async def test_shut_down_with_drain_waits_for_work_in_progress():
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")  # re-queued at done: the drain must wait for that second round too
    drain = asyncio.create_task(queue.shut_down_with_drain())
    await asyncio.sleep(0.01)
    assert not drain.done()
    queue.done(key)
    assert await queue.get() == "a"
    await asyncio.sleep(0.01)
    assert not drain.done()
    queue.done("a")
    await asyncio.wait_for(drain, 1)


@pytest.mark.anyio
async def test_add_after_waits_and_the_earlier_time_wins():
    queue = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.add_after("a", 0.2)
    queue.add_after("a", 0.05)  # earlier: replaces
    queue.add_after("a", 1.0)  # later: ignored
    queue.add_after("now", 0)
    assert queue.get_nowait() == "now"
    assert await asyncio.wait_for(queue.get(), 1) == "a"
    assert 0.04 <= loop.time() - start < 0.2
    queue.add_after("b", 0.01)
    queue.shut_down()  # pending delayed adds are dropped
    await asyncio.sleep(0.03)
    assert len(queue) == 0


@pytest.mark.anyio
async def test_rate_limited_adds_back_off_per_key_until_forget():
    queue = WorkQueue(rate_limiter=ExponentialBackoff(base=0.02, cap=1.0))
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(3):
        start = loop.time()
        queue.add_rate_limited("a")
        key = await asyncio.wait_for(queue.get(), 2)
        delays.append(loop.time() - start)
        queue.done(key)
    assert delays[0] >= 0.02 and delays[1] >= 0.04 and delays[2] >= 0.08
    assert queue.num_requeues("a") == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0


@pytest.mark.anyio
async def test_run_workers_retries_failures_and_forgets_successes():
    queue = WorkQueue("test", rate_limiter=ExponentialBackoff(base=0.001, cap=0.01))
    calls = defaultdict(int)

    async def reconcile(key):
        calls[key] += 1
        if key == "flaky" and calls[key] < 3:
            raise RuntimeError("not yet")
    workers = asyncio.create_task(run_workers(queue, reconcile, workers=2))
    queue.add("flaky")
    queue.add("fine")
    await eventually(lambda: calls["flaky"] == 3)
    await queue.shut_down_with_drain()
    await asyncio.wait_for(workers, 1)
    assert calls == {"flaky": 3, "fine": 1} and queue.num_requeues("flaky") == 0


# --- rate limiters -------------------------------------------------------------------------------------------------

def test_exponential_backoff_doubles_per_key_up_to_the_cap():
    limiter = ExponentialBackoff(base=0.005, cap=0.03)
    assert [limiter.when("a") for _ in range(5)] == [0.005, 0.01, 0.02, 0.03, 0.03]
    assert limiter.when("b") == 0.005 and limiter.retries("a") == 5
    limiter.forget("a")
    assert limiter.when("a") == 0.005
    for _ in range(200):
        limiter.when("c")
    assert limiter.when("c") == 0.03
    with pytest.raises(ValueError, match="need 0 < base <= cap"):
        ExponentialBackoff(base=1, cap=0.5)


def test_token_bucket_allows_a_burst_then_spaces_retries_at_qps():
    now = [100.0]
    bucket = TokenBucket(qps=10, burst=3, clock=lambda: now[0])
    assert [bucket.when(k) for k in "abc"] == [0, 0, 0]
    assert [round(bucket.when(k), 3) for k in "def"] == [0.1, 0.2, 0.3]
    now[0] += 1.0  # refilled (capped at the burst), minus the three reserved above
    assert bucket.when("g") == 0
    with pytest.raises(ValueError, match="need qps > 0 and burst >= 1"):
        TokenBucket(qps=0)


def test_max_of_takes_the_longest_delay():
    now = [0.0]
    limiter = MaxOf(ExponentialBackoff(base=0.5, cap=10), TokenBucket(qps=1, burst=1, clock=lambda: now[0]))
    assert limiter.when("a") == 0.5  # backoff dominates
    assert limiter.when("b") == 1.0  # the bucket is empty: 1 s until the next token
    assert limiter.retries("a") == 1
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert default_controller_rate_limiter().when("x") == 0.005


# --- properties ----------------------------------------------------------------------------------------------------

PLANS = st.lists(st.one_of(st.tuples(st.just("add"), KEYS), st.tuples(st.just("pause"), st.integers(0, 3))),
                 max_size=40)


@settings(max_examples=150, deadline=None)
@given(plan=PLANS, workers=st.integers(1, 4), work=st.lists(st.integers(0, 4), min_size=1, max_size=8))
def test_no_key_is_processed_concurrently_and_no_add_is_lost(plan, workers, work):
    """Workers take each key for a varying number of loop turns while a producer adds keys between its own
    pauses: every interleaving asyncio produces from the drawn plan is checked."""
    asyncio.run(_interleave(plan, workers, work))


async def _interleave(plan, workers: int, work: list[int]) -> None:
    queue, clock = WorkQueue(), itertools.count()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    last_add: dict[str, int] = {}
    starts: dict[str, list[int]] = defaultdict(list)
    turns = itertools.cycle(work)

    async def worker(index: int) -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            starts[key].append(next(clock))
            for _ in range(next(turns) + index):
                await asyncio.sleep(0)
            in_flight.discard(key)
            queue.done(key)

    async def producer() -> None:
        for action, argument in plan:
            if action == "add":
                last_add[argument] = next(clock)
                queue.add(argument)
            else:
                for _ in range(argument):
                    await asyncio.sleep(0)
        await queue.shut_down_with_drain()

    await asyncio.wait_for(asyncio.gather(producer(), *(worker(i) for i in range(workers))), 10)
    assert overlaps == [], f"processed concurrently: {overlaps}"
    for key, added_at in last_add.items():
        assert any(start > added_at for start in starts[key]), f"{key} added at {added_at}, started {starts[key]}"


class QueueModel(RuleBasedStateMachine):
    """The queue against a plain model of its contract, one synchronous call at a time."""

    def __init__(self):
        super().__init__()
        self.queue = WorkQueue()
        self.queued: deque[str] = deque()
        self.processing: set[str] = set()
        self.readd: set[str] = set()

    @rule(key=KEYS)
    def add(self, key):
        self.queue.add(key)
        if key in self.processing:
            self.readd.add(key)
        elif key not in self.queued:
            self.queued.append(key)

    @precondition(lambda self: self.queued)
    @rule()
    def get(self):
        key = self.queue.get_nowait()
        assert key == self.queued.popleft()
        assert key not in self.processing
        self.processing.add(key)

    @precondition(lambda self: not self.queued)
    @rule()
    def get_when_empty(self):
        with pytest.raises(QueueEmpty):
            self.queue.get_nowait()

    @precondition(lambda self: self.processing)
    @rule(data=st.data())
    def done(self, data):
        key = data.draw(st.sampled_from(sorted(self.processing)))
        self.queue.done(key)
        self.processing.discard(key)
        if key in self.readd:
            self.readd.discard(key)
            self.queued.append(key)

    @invariant()
    def same_state(self):
        assert len(self.queue) == len(self.queued)
        assert self.queue.processing() == self.processing


TestQueueModel = QueueModel.TestCase
TestQueueModel.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
