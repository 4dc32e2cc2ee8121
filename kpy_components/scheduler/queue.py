"""The scheduling queue (kube-scheduler's PriorityQueue): activeQ, backoffQ and the unschedulable pods.

- activeQ: pods ready to be scheduled, highest priority first, then the earliest queued (a heap).
- backoffQ: pods that failed and wait out their backoff: podInitialBackoffSeconds * 2^(attempts-1), capped at
  podMaxBackoffSeconds, counted from the failed attempt. `pop` moves expired entries to activeQ itself.
- unschedulable: pods no node fitted. A cluster event (node added or changed, an assigned pod deleted, ...) moves
  the pods that one of their rejecting plugins cares about (Plugin.events) to backoffQ, or to activeQ when their
  backoff is over. Pods stay at most `max_unschedulable_seconds` (kube-scheduler: 5 minutes) before retrying anyway.
- A pod that failed while a move happened during its attempt goes to backoffQ, not unschedulable (the event may
  be exactly what it needed): moves are counted in `move_cycle`, attempts remember the cycle they started in.

Entries are keyed `namespace/name`; an update replaces the queued PodInfo in place. Not thread-safe: one event loop.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field

from .podinfo import PodInfo

ACTIVE, BACKOFF, UNSCHEDULABLE, GATED = "active", "backoff", "unschedulable", "gated"
DEFAULT_MAX_UNSCHEDULABLE_SECONDS = 300.0


@dataclass
class QueuedPod:
    info: PodInfo
    timestamp: float  # when first queued (activeQ order; latency metrics)
    attempts: int = 0
    retry_on: frozenset[str] | None = None  # events that may help it; None: any event
    backoff_until: float = 0.0
    cycle: int = 0  # the move cycle its last attempt started in
    where: str = ""
    seq: int = field(default=0, compare=False)


class SchedulingQueue:
    def __init__(self, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable_seconds: float = DEFAULT_MAX_UNSCHEDULABLE_SECONDS, clock=time.monotonic):
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.max_unschedulable_seconds = max_unschedulable_seconds
        self.clock = clock
        self.move_cycle = 0
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []  # (-priority, timestamp, seq, key)
        self._backoff: list[tuple[float, int, str]] = []  # (backoff_until, seq, key)
        self._unschedulable: dict[str, float] = {}  # key -> when it became unschedulable
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.gated: set[str] = set()  # keys of our pods held back by schedulingGates (counted, never popped)

    # --- informer side -------------------------------------------------------------------------------------------
    def add(self, info: PodInfo) -> None:
        """A new pending pod (or a re-listed one): into activeQ unless queued already."""
        if info.key in self._pods:
            self.update(info)
            return
        self._push_active(QueuedPod(info, self.clock()))

    def update(self, info: PodInfo) -> None:
        """The pod changed: keep its place, with the new object; an unschedulable pod gets another try."""
        queued = self._pods.get(info.key)
        if queued is None:
            self.add(info)
            return
        queued.info = info
        if queued.where == UNSCHEDULABLE:
            del self._unschedulable[info.key]
            self._requeue(queued)

    def delete(self, key: str) -> None:
        """The pod is gone or bound: drop it wherever it waits (heap entries are skipped lazily)."""
        queued = self._pods.pop(key, None)
        if queued is not None and queued.where == UNSCHEDULABLE:
            del self._unschedulable[key]

    def move_on_event(self, event: str) -> int:
        """A cluster event: move the unschedulable pods it may help. Returns how many moved."""
        self.move_cycle += 1
        moved = 0
        for key in list(self._unschedulable):
            queued = self._pods[key]
            if queued.retry_on is None or event in queued.retry_on:
                del self._unschedulable[key]
                self._requeue(queued)
                moved += 1
        return moved

    # --- scheduler side ------------------------------------------------------------------------------------------
    async def pop(self) -> QueuedPod | None:
        """The next pod to schedule (waiting for one); None once closed."""
        while not self._closed:
            self._flush()
            while self._active:
                _, _, seq, key = heapq.heappop(self._active)
                queued = self._pods.get(key)
                if queued is not None and queued.where == ACTIVE and queued.seq == seq:
                    queued.where, queued.cycle = "", self.move_cycle
                    queued.attempts += 1
                    return queued
            self._wakeup.clear()
            timeout = self._next_deadline()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout if timeout is None else max(timeout, 0.001))
            except TimeoutError:
                pass
        return None

    def done(self, key: str) -> None:
        """The popped pod was scheduled (assumed): forget it."""
        self._pods.pop(key, None)

    def add_unschedulable(self, queued: QueuedPod, retry_on: frozenset[str] | None) -> None:
        """A popped pod no node fitted; `retry_on`: the cluster events that may help (the union of the rejecting
        plugins' events), None for any event."""
        if self._pods.get(queued.info.key) is not queued:
            return  # deleted (or bound) meanwhile
        queued.retry_on = retry_on
        queued.backoff_until = self.clock() + self.backoff_duration(queued.attempts)
        if self.move_cycle > queued.cycle:
            self._push_backoff(queued)
        else:
            queued.where = UNSCHEDULABLE
            self._unschedulable[queued.info.key] = self.clock()

    def requeue_after_error(self, queued: QueuedPod) -> None:
        """An attempt failed for a reason of ours or the API's (binding failed): back off, then retry."""
        self._pods.setdefault(queued.info.key, queued)
        queued.backoff_until = self.clock() + self.backoff_duration(queued.attempts)
        self._push_backoff(queued)

    def backoff_duration(self, attempts: int) -> float:
        return min(self.initial_backoff * 2 ** max(attempts - 1, 0), self.max_backoff)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    def pending(self) -> dict[str, int]:
        """Pods per queue, for scheduler_pending_pods."""
        counts = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0}
        for queued in self._pods.values():
            if queued.where in counts:
                counts[queued.where] += 1
        counts[GATED] = len(self.gated)
        return counts

    # --- internals -----------------------------------------------------------------------------------------------
    def _push_active(self, queued: QueuedPod) -> None:
        queued.where, queued.seq = ACTIVE, next(self._seq)
        self._pods[queued.info.key] = queued
        heapq.heappush(self._active, (-queued.info.priority, queued.timestamp, queued.seq, queued.info.key))
        self._wakeup.set()

    def _push_backoff(self, queued: QueuedPod) -> None:
        queued.where, queued.seq = BACKOFF, next(self._seq)
        heapq.heappush(self._backoff, (queued.backoff_until, queued.seq, queued.info.key))
        self._wakeup.set()

    def _requeue(self, queued: QueuedPod) -> None:
        if queued.backoff_until > self.clock():
            self._push_backoff(queued)
        else:
            self._push_active(queued)

    def _next_deadline(self) -> float | None:
        """Seconds until a backoff ends or an unschedulable pod's stay runs out; None: nothing pending."""
        deadlines = [self._backoff[0][0]] if self._backoff else []
        if self._unschedulable:
            deadlines.append(min(self._unschedulable.values()) + self.max_unschedulable_seconds)
        return min(deadlines) - self.clock() if deadlines else None

    def _flush(self) -> None:
        """Expired backoffs to activeQ; pods unschedulable for too long back into play."""
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            queued = self._pods.get(key)
            if queued is not None and queued.where == BACKOFF and queued.seq == seq:
                self._push_active(queued)
        if self._unschedulable:
            stale = [key for key, since in self._unschedulable.items()
                     if now - since >= self.max_unschedulable_seconds]
            for key in stale:
                del self._unschedulable[key]
                self._requeue(self._pods[key])
