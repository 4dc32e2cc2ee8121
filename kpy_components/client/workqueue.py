"""A work queue of object keys for controllers (client-go's workqueue), for asyncio.

Guarantees:
- A key is queued at most once: adding a queued key again does nothing (de-duplication).
- A key handed out by `get` is never handed out again until `done(key)`: no two workers process one key at once.
  If the key is added meanwhile, it is queued again when `done` is called, so the change is not lost.
- Keys come out in the order they were (first) queued.
- After `shut_down`, adds are ignored, `get` still hands out what is queued, then raises ShutDown;
  `shut_down_with_drain` also waits until every key handed out is done.

Delays and retries (`add_after`, `add_rate_limited`, `forget`) use a RateLimiter (ratelimit.py): per-key
exponential backoff capped, and an overall token bucket.

The standard worker loop is `run_workers(queue, reconcile, workers=N)`.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

from .ratelimit import RateLimiter, default_controller_rate_limiter

log = logging.getLogger(__name__)


class ShutDown(Exception):
    """The queue is shut down and empty: the worker should return."""


class QueueEmpty(Exception):
    """get_nowait found nothing ready."""


class WorkQueue:
    def __init__(self, name: str = "", rate_limiter: RateLimiter | None = None):
        self.name = name
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()  # queued, or to be queued again when its processing is done
        self._processing: set[Hashable] = set()
        self._waiters: list[asyncio.Future] = []
        self._drained: list[asyncio.Future] = []
        self._timers: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}  # delayed adds: (due, timer)
        self._shutting_down = False

    def __len__(self) -> int:
        """Keys queued and ready (not those being processed or waiting for a delay)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def processing(self) -> frozenset:
        return frozenset(self._processing)

    # --- the core queue ------------------------------------------------------------------------------------------
    def add(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._wake(self._waiters)

    async def get(self) -> Hashable:
        """The next key, waiting for one; the caller must call `done(key)` when finished with it."""
        while True:
            try:
                return self.get_nowait()
            except QueueEmpty:
                await self._wait(self._waiters)

    def get_nowait(self) -> Hashable:
        if not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            raise QueueEmpty(self.name)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Hashable) -> None:
        """Processing of `key` ended; if it was added meanwhile it is queued again now."""
        if key not in self._processing:
            raise ValueError(f"done({key!r}): the key is not being processed")
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake(self._waiters)
        if not self._processing:
            self._wake(self._drained)

    def shut_down(self) -> None:
        """Ignore further adds; workers drain the queued keys, then get ShutDown. Pending delayed adds are dropped."""
        self._shutting_down = True
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._wake(self._waiters)

    async def shut_down_with_drain(self) -> None:
        """shut_down, then wait until every queued key was handed out and every handed-out key is done."""
        self.shut_down()
        while self._queue or self._processing:
            await self._wait(self._drained)

    @staticmethod
    async def _wait(waiters: list[asyncio.Future]) -> None:
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    @staticmethod
    def _wake(waiters: list[asyncio.Future]) -> None:
        """Wake every waiter; each looks again (cheap on one loop, and no wake-up can be lost to a cancellation)."""
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        waiters.clear()

    # --- delays and rate-limited retries -------------------------------------------------------------------------
    def add_after(self, key: Hashable, delay: float) -> None:
        """Add `key` after `delay` seconds; if it is already waiting, the earlier time wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: Hashable) -> None:
        """Add `key` once the rate limiter allows (after a failure): backoff grows with each call until forget."""
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Hashable) -> None:
        """The key succeeded: its backoff starts from the beginning next time (it is not removed from the queue)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.rate_limiter.retries(key)


async def run_workers(queue: WorkQueue, reconcile: Callable[[Hashable], Awaitable[None]], workers: int = 1) -> None:
    """The controller loop: `workers` tasks take keys and await `reconcile(key)`. Success forgets the key's
    backoff; an exception is logged and the key re-added rate-limited. Returns when the queue is shut down and
    drained; cancelling it cancels the workers."""
    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                await reconcile(key)
            except Exception as error:  # noqa: BLE001 - every failure is retried, with backoff
                log.warning("Failed reconcile queue=%s key=%s retries=%d error=%r", queue.name, key,
                            queue.num_requeues(key), error)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    async with asyncio.TaskGroup() as group:
        for index in range(workers):
            group.create_task(worker(), name=f"{queue.name or 'workqueue'}-worker-{index}")
