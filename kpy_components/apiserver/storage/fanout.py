"""In-process event fan-out: a publisher hands each event to the subscribers of its key's prefixes, never blocking.

A subscriber that lets more than `backlog` events pile up is marked `overflowed` and its backlog dropped: the
publisher (and every other subscriber) never waits for a slow one. What an overflow means is the consumer's call:
the SQLite backend re-reads the missed events from its history, the watch cache ends that watch.
"""
from __future__ import annotations

import asyncio
from collections import deque

from kpy_components.apiserver.storage.interface import Event


class Subscriber:
    def __init__(self, prefix: str, backlog: int):
        self.prefix = prefix
        self.backlog = backlog
        self.overflowed = False
        self.closed = False
        self._events: deque[Event] = deque()
        self._wake = asyncio.Event()

    def offer(self, event: Event) -> None:
        """Queue `event` (publisher side, never blocks)."""
        if self.closed or self.overflowed:
            return
        if len(self._events) >= self.backlog:
            self.overflowed = True
            self._events.clear()
        else:
            self._events.append(event)
        self._wake.set()

    def replay(self, events: list[Event]) -> None:
        """Queue events from history ahead of live ones (not counted against the backlog)."""
        self._events.extend(events)
        self._wake.set()

    def resume(self) -> None:
        """Forget an overflow: the consumer has caught up by other means."""
        self.overflowed = False
        self._events.clear()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event; None once closed or overflowed with nothing left. TimeoutError after `timeout` s idle."""
        while not self._events:
            if self.closed or self.overflowed:
                return None
            self._wake.clear()
            if timeout is None:  # most watches: no timer to arm and cancel per event
                await self._wake.wait()
            else:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        return self._events.popleft()


class Broker:
    """Subscribers by prefix; `publish` offers an event to every subscriber whose prefix its key starts with."""

    def __init__(self, backlog: int):
        self.backlog = backlog
        self._subscribers: set[Subscriber] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, prefix: str) -> Subscriber:
        subscriber = Subscriber(prefix, self.backlog)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        subscriber.close()

    def publish(self, key: str, event: Event) -> None:
        for subscriber in self._subscribers:
            if key.startswith(subscriber.prefix):
                subscriber.offer(event)

    def close_all(self) -> None:
        for subscriber in list(self._subscribers):
            self.unsubscribe(subscriber)
