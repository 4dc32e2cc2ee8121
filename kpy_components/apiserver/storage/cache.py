"""The watch cache: the Storage interface in front of a Storage, serving watches and `resourceVersion=0` reads from
memory (Kubernetes' cacher).

Per resource prefix (`/registry/<resource>/`, derived from the key; started lazily on first use, or by `prime`):
one list, then one watch of the storage, feeding the current objects and a ring buffer of recent events. Every
watcher of that resource is served from memory; its events are not copied (treat them as read-only). A watcher
that falls more than `watcher_backlog` events behind is ended (it resumes from its last revision); it never slows
the others. A watch from a revision older than the buffer raises Compacted (410 Gone: the client re-lists).

Reads: `get(key, 0)` and `list(prefix, revision=0)` come from memory (possibly slightly stale, as in Kubernetes);
every other read, and every write, goes to the storage. A key outside any resource prefix bypasses the cache.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from kpy_components.apiserver.storage.codec import clone, encode_continue, prefix_end
from kpy_components.apiserver.storage.fanout import Broker
from kpy_components.apiserver.storage.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyNotFound,
    ListResult,
    Preconditions,
    Storage,
    StorageError,
    UpdateFunc,
)

log = logging.getLogger(__name__)


def resource_prefix(key: str) -> str | None:
    """`/registry/<resource>/` of a key or prefix below it; None when there is none (`/registry/`, `/x`)."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] or not parts[1] or not parts[2]:
        return None
    return f"/{parts[1]}/{parts[2]}/"


@dataclass(frozen=True)
class CacheSettings:
    capacity: int = 1000  # events kept at least; more while younger than min_age
    min_age: float = 75.0  # seconds an event stays in the buffer (a watch may resume that long after it)
    max_capacity: int = 100_000  # hard bound on buffered events per resource, whatever their age
    watcher_backlog: int = 1000  # events a watcher may fall behind before it is ended
    bookmark_interval: float = 60.0  # seconds of quiet before a watcher that asked for bookmarks gets one
    retry_delay: float = 0.5  # first pause before re-watching a failed storage watch (doubles up to 30 s)

    def __post_init__(self) -> None:
        for name in ("capacity", "max_capacity", "watcher_backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"watch cache setting {name} must be at least 1, not {getattr(self, name)}")
        for name in ("min_age", "bookmark_interval", "retry_delay"):
            if getattr(self, name) <= 0:
                raise ValueError(f"watch cache setting {name} must be positive, not {getattr(self, name)}")


class _Resource:
    """The cached state of one resource prefix: objects, sorted keys, recent events, watchers."""

    def __init__(self, prefix: str, settings: CacheSettings):
        self.prefix = prefix
        self.settings = settings
        self.objects: dict[str, dict] = {}
        self.keys: list[str] = []  # sorted
        self.revision = 0  # every event up to here is applied
        self.floor = 0  # a watch from revision r can be served iff r >= floor
        self.events: deque[tuple[Event, float]] = deque()
        self.watchers = Broker(settings.watcher_backlog)
        self.started: asyncio.Task | None = None  # the initial list (then the follower starts)
        self.follower: asyncio.Task | None = None

    def reset(self, listed: ListResult) -> None:
        """Start over from a list: earlier events are gone, so current watchers are ended (they resume or
        get 410)."""
        self.objects = dict(zip(listed.keys, listed.items, strict=True))
        self.keys = sorted(self.objects)
        self.revision = self.floor = listed.revision
        self.events.clear()
        self.watchers.close_all()

    def apply(self, event: Event) -> None:
        if event.revision <= self.revision:
            return  # already applied (a re-watch overlapping the list)
        key = event.key
        if event.type == "DELETED":
            if self.objects.pop(key, None) is not None:
                del self.keys[bisect.bisect_left(self.keys, key)]
        else:
            if key not in self.objects:
                bisect.insort(self.keys, key)
            self.objects[key] = event.object
        self.revision = event.revision
        now = time.monotonic()
        self.events.append((event, now))
        while len(self.events) > self.settings.capacity and (
                now - self.events[0][1] > self.settings.min_age or len(self.events) > self.settings.max_capacity):
            self.floor = self.events.popleft()[0].revision
        self.watchers.publish(key, event)

    def since(self, prefix: str, revision: int) -> list[Event]:
        """Buffered events under `prefix` after `revision`, in order."""
        newer = []
        for event, _ in reversed(self.events):
            if event.revision <= revision:
                break
            if event.key.startswith(prefix):
                newer.append(event)
        newer.reverse()
        return newer

    def list(self, prefix: str, limit: int) -> ListResult:
        start = bisect.bisect_left(self.keys, prefix)
        end = bisect.bisect_left(self.keys, prefix_end(prefix), start)
        stop = min(end, start + limit) if limit else end
        keys = self.keys[start:stop]
        items = [clone(self.objects[key]) for key in keys]
        if stop == end:
            return ListResult(items, self.revision, keys=keys)
        token = encode_continue(prefix, self.revision, keys[-1] + "\0")
        return ListResult(items, self.revision, token, end - stop, keys)


class WatchCache:
    """A Storage serving watches and resourceVersion=0 reads from memory; `storage` is closed with it.

    `ready` is set once `prime` has loaded every resource it was given (for /readyz)."""

    def __init__(self, storage: Storage, settings: CacheSettings | None = None,
                 prefix_of: Callable[[str], str | None] = resource_prefix):
        self.storage = storage
        self.settings = settings or CacheSettings()
        self.ready = asyncio.Event()
        self._prefix_of = prefix_of
        self._resources: dict[str, _Resource] = {}
        self._closed = False

    # --- resources -----------------------------------------------------------------------------------------

    async def prime(self, prefixes: list[str]) -> None:
        """Load these resource prefixes now, then set `ready`."""
        await asyncio.gather(*(self._resource(prefix) for prefix in prefixes))
        self.ready.set()

    async def _resource(self, key: str, at_revision: int = 0) -> _Resource | None:
        """The started resource of `key` (None: not cacheable). A resource started for a watch from revision r
        begins at r when the storage still has it, so that watch can be served."""
        prefix = self._prefix_of(key)
        if prefix is None:
            return None
        if self._closed:
            raise StorageError("the watch cache is closed")
        resource = self._resources.get(prefix)
        if resource is None:
            resource = self._resources[prefix] = _Resource(prefix, self.settings)
            resource.started = asyncio.create_task(self._start(resource, at_revision), name=f"cache-list {prefix}")
        try:
            await asyncio.shield(resource.started)
        except BaseException:
            if resource.started.done() and self._resources.get(prefix) is resource:
                del self._resources[prefix]  # the next caller tries again
            raise
        return resource

    async def _start(self, resource: _Resource, at_revision: int) -> None:
        try:
            listed = await self.storage.list(resource.prefix, revision=at_revision or None)
        except (Compacted, FutureRevision):
            listed = await self.storage.list(resource.prefix)
        resource.reset(listed)
        resource.follower = asyncio.create_task(self._follow(resource), name=f"cache-watch {resource.prefix}")

    async def _follow(self, resource: _Resource) -> None:
        """Apply the storage's events to `resource` for as long as the cache runs, re-watching after failures."""
        delay = self.settings.retry_delay
        while not self._closed:
            try:
                async for event in self.storage.watch(resource.prefix, resource.revision):
                    resource.apply(event)
                    delay = self.settings.retry_delay
                if self._closed:
                    return
            except Compacted:
                log.warning("watch cache of %s fell behind compaction; re-listing", resource.prefix)
                await self._relist(resource)
            except Exception as error:  # keep following whatever happened; a bug is logged with its traceback
                log.warning("watch cache of %s lost its storage watch (%s); retrying in %.1fs", resource.prefix,
                            error, delay, exc_info=not isinstance(error, StorageError))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _relist(self, resource: _Resource) -> None:
        try:
            resource.reset(await self.storage.list(resource.prefix))
        except StorageError as error:
            log.warning("watch cache of %s could not re-list (%s)", resource.prefix, error)
            await asyncio.sleep(self.settings.retry_delay)

    # --- the Storage interface -----------------------------------------------------------------------------

    async def get(self, key: str, resource_version: int | None = None) -> dict:
        """resource_version 0: from memory; otherwise from memory when the cache has reached it, else storage."""
        if resource_version is not None:
            resource = await self._resource(key)
            if resource is not None and resource.revision >= resource_version:
                obj = resource.objects.get(key)
                if obj is None:
                    raise KeyNotFound(f"{key} not found")
                return clone(obj)
        return await self.storage.get(key, resource_version)

    async def peek(self, key: str) -> dict | None:
        """The cache's own object at `key` (None: not cached), not a copy: read it, never change it."""
        resource = await self._resource(key)
        return resource.objects.get(key) if resource is not None else None

    async def list(self, prefix: str, *, revision: int | None = None, limit: int = 0,
                   continue_token: str | None = None) -> ListResult:
        """revision 0 (without a continue token): from memory, at the cache's revision; its continue token is
        served by the storage at that revision. Otherwise: the storage."""
        if revision == 0 and not continue_token:
            resource = await self._resource(prefix)
            if resource is not None:
                return resource.list(prefix, limit)
        return await self.storage.list(prefix, revision=revision or None, limit=limit,
                                       continue_token=continue_token)

    async def create(self, key: str, obj: dict, ttl: int | None = None) -> dict:
        await self._resource(key)  # follow the resource before writing, so its buffer holds this write
        return await self.storage.create(key, obj, ttl)

    async def guaranteed_update(self, key: str, update: UpdateFunc, *, preconditions: Preconditions | None = None,
                                ignore_not_found: bool = False, ttl: int | None = None,
                                suggestion: dict | None = None) -> dict:
        """The storage's, with the cached object as the suggestion (no read before the swap when it is current)."""
        resource = await self._resource(key)
        if suggestion is None and resource is not None and key in resource.objects:
            suggestion = clone(resource.objects[key])
        return await self.storage.guaranteed_update(key, update, preconditions=preconditions,
                                                    ignore_not_found=ignore_not_found, ttl=ttl,
                                                    suggestion=suggestion)

    async def delete(self, key: str, *, preconditions: Preconditions | None = None) -> dict:
        await self._resource(key)
        return await self.storage.delete(key, preconditions=preconditions)

    async def watch(self, prefix: str, revision: int, *, bookmarks: bool = False) -> AsyncIterator[Event]:
        """Events under `prefix` after `revision`, from memory. With `bookmarks`, a BOOKMARK event (object
        {"metadata": {"resourceVersion": "<n>"}}) after each `bookmark_interval` without events. The iterator
        ends when the watcher falls too far behind or the cache re-lists: resume from the last revision seen."""
        resource = await self._resource(prefix, at_revision=revision)
        if resource is None:
            async for event in self.storage.watch(prefix, revision):
                yield event
            return
        if revision < resource.floor:
            raise Compacted(revision, resource.floor - 1)
        watcher = resource.watchers.subscribe(prefix)
        watcher.replay(resource.since(prefix, revision))  # no await since subscribing: no event falls between
        interval = self.settings.bookmark_interval if bookmarks else None
        last = revision
        try:
            while True:
                try:
                    event = await watcher.next(timeout=interval)
                except TimeoutError:
                    last = max(last, resource.revision)
                    yield Event("BOOKMARK", {"metadata": {"resourceVersion": str(last)}}, last)
                    continue
                if event is None:
                    return
                if event.revision > last:
                    last = event.revision
                    yield event
        finally:
            resource.watchers.unsubscribe(watcher)

    async def current_revision(self) -> int:
        return await self.storage.current_revision()

    async def compact(self, revision: int) -> None:
        await self.storage.compact(revision)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per resource prefix: objects, buffered events, watchers and revision (for /metrics)."""
        return {prefix: {"objects": len(r.objects), "events": len(r.events), "watchers": len(r.watchers),
                         "revision": r.revision} for prefix, r in self._resources.items()}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = []
        for resource in self._resources.values():
            resource.watchers.close_all()
            tasks += [task for task in (resource.started, resource.follower) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._resources.clear()
        await self.storage.close()
