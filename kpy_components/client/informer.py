"""Informers: a local, indexed copy of one resource kept current by list+watch, with event handlers.

The loop (client-go's reflector):
1. list (in pages) and take the list's resourceVersion; replace the store, calling on_add/on_update/on_delete for
   what changed (so a re-list after a gap reports the deletions it missed); `has_synced` turns true;
2. watch from that resourceVersion with bookmarks and a server-side timeout (a random 5-10 minutes, so many
   informers do not re-watch together), advancing the resourceVersion with every event and bookmark;
3. when the stream ends or the connection breaks, watch again from the last resourceVersion seen (after a backoff
   if the server is unreachable, answers 429/5xx, or the stream ended at once);
4. on 410 Gone (an ERROR event or an HTTP 410) the resourceVersion is too old: go back to 1 at once (after a
   backoff if 410 comes again before any watch event); other errors (403, 404, ...) are logged and go back to 1
   after a backoff. The backoff resets once a watch delivers events.

Handlers are plain callables run on the informer's task, in event order. They must be quick (enqueue a key and
return). They receive the store's own objects, shared with every other handler and every reader of the store, so
they MUST NOT mutate them (they may keep them; deep-copy with `kpy_components.api.meta.deep_copy` before changing
one) — as client-go's informers, and for the same reason: a copy per event and handler cost more CPU than the rest
of the informer together. A handler that raises is logged and the informer carries on. A handler added after
objects are cached first gets on_add for each of them.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.resources import ResourceInfo

from .backoff import Backoff
from .cache import IndexFunc, Indexer, key_of
from .errors import ClientConnectionError, is_gone, is_retryable
from .rest import RESTClient

log = logging.getLogger(__name__)

WATCH_TIMEOUT = (300, 600)  # seconds; the server ends each watch after a random time in this range
PAGE_SIZE = 500
MIN_WATCH_SECONDS = 1.0  # a watch ending faster than this (without events) counts as a failure, so we back off


@dataclass
class Handler:
    on_add: Callable[[dict], None] | None = None
    on_update: Callable[[dict, dict], None] | None = None
    on_delete: Callable[[dict], None] | None = None


class Informer:
    def __init__(self, client: RESTClient, info: ResourceInfo, namespace: str | None = None, *,
                 label_selector: str = "", field_selector: str = "", indexers: dict[str, IndexFunc] | None = None,
                 page_size: int = PAGE_SIZE, watch_timeout: tuple[int, int] = WATCH_TIMEOUT,
                 backoff: Backoff | None = None):
        self.client, self.info, self.namespace = client, info, namespace or None
        self.label_selector, self.field_selector = label_selector, field_selector
        self.store = Indexer(indexers)
        self.page_size, self.watch_timeout = page_size, watch_timeout
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.resource_version: str | None = None  # the last one seen: where the next watch starts
        self.lists = 0  # how many times the informer listed (1 + re-lists): for tests and metrics
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._gone_streak = 0  # 410s since the last watch event

    def __repr__(self) -> str:
        return f"Informer({self.info.qualified}, namespace={self.namespace or '*'})"

    # --- consumers -----------------------------------------------------------------------------------------------
    @property
    def has_synced(self) -> bool:
        """True once the first list is in the store (and its on_add calls were made)."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    def add_handler(self, on_add: Callable[[dict], None] | None = None,
                    on_update: Callable[[dict, dict], None] | None = None,
                    on_delete: Callable[[dict], None] | None = None) -> Handler:
        """Register handlers; returns the registration for `remove_handler`."""
        handler = Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if handler.on_add:
            for obj in self.store.list():
                self._call(handler.on_add, obj)
        return handler

    def remove_handler(self, handler: Handler) -> None:
        self._handlers.remove(handler)

    # --- running -------------------------------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        """Run in a background task (once; later calls return the same task). A crash is logged at once."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=repr(self))
            self._task.add_done_callback(_report_crash)
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        """List and watch until cancelled."""
        while True:
            try:
                if self.resource_version is None:
                    await self._list()
                await self._watch()
                continue
            except APIError as error:
                if is_gone(error):
                    self.resource_version = None
                    self._gone_streak += 1
                    if self._gone_streak == 1:  # at once; but a server that keeps saying 410 gets the backoff
                        log.info("Re-listing after 410 resource=%s message=%s", self.info.qualified, error.message)
                        continue
                if not is_retryable(error):  # e.g. 403 until RBAC allows us: start over from a list
                    self.resource_version = None
                problem = f"{error.code} {error.message}"
            except ClientConnectionError as error:
                problem = str(error)
            delay = self.backoff.next_delay()
            log.warning("Failed list/watch resource=%s error=%s retry_in=%.1fs", self.info.qualified, problem, delay)
            await asyncio.sleep(delay)

    async def _list(self) -> None:
        items, resource_version = await self._list_pages()
        added, updated, deleted = self.store.replace(items)
        self.resource_version = resource_version
        self.lists += 1
        for obj in deleted:
            self._dispatch("on_delete", obj)
        for obj in added:
            self._dispatch("on_add", obj)
        for old, new in updated:
            self._dispatch("on_update", old, new)
        self._synced.set()
        log.debug("Listed resource=%s items=%d resource_version=%s", self.info.qualified, len(items),
                  resource_version)

    async def _list_pages(self) -> tuple[list[dict], str]:
        """Every item, page by page; if the continue token expires (410), one unpaged list instead."""
        items, token, limit = [], None, self.page_size
        while True:
            try:
                page = await self.client.list(self.info, self.namespace, label_selector=self.label_selector,
                                              field_selector=self.field_selector, limit=limit,
                                              continue_token=token)
            except APIError as error:
                if not (is_gone(error) and token):
                    raise
                items, token, limit = [], None, None
                continue
            if token is None:
                resource_version = page["metadata"].get("resourceVersion", "")
            kind = self.info.kind
            for item in page.get("items") or []:
                items.append({"apiVersion": self.info.api_version, "kind": kind, **item})  # lists omit them
            token = page["metadata"].get("continue")
            if not token:
                return items, resource_version

    async def _watch(self) -> None:
        started, events = time.monotonic(), 0
        async with self.client.watch(self.info, self.namespace, resource_version=self.resource_version,
                                     label_selector=self.label_selector, field_selector=self.field_selector,
                                     allow_bookmarks=True, timeout_seconds=random.randint(*self.watch_timeout)
                                     ) as stream:
            async for event_type, obj in stream:
                events += 1
                self._apply(event_type, obj)
        if events == 0 and time.monotonic() - started < MIN_WATCH_SECONDS:
            raise ClientConnectionError(f"watch of {self.info.qualified} ended at once without events")
        self.backoff.reset()

    def _apply(self, event_type: str, obj: dict) -> None:
        self._gone_streak = 0
        self.backoff.reset()
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if event_type in ("ADDED", "MODIFIED"):
            old = self.store.upsert(obj)
            if old is None:
                self._dispatch("on_add", obj)
            else:
                self._dispatch("on_update", old, obj)
        elif event_type == "DELETED":
            self.store.delete(key_of(obj))
            self._dispatch("on_delete", obj)  # the server's final state of the object
        elif event_type != "BOOKMARK":
            log.warning("Ignored watch event type=%s resource=%s", event_type, self.info.qualified)
        if version:
            self.resource_version = version

    def _dispatch(self, kind: str, *objects: dict) -> None:
        for handler in list(self._handlers):
            callback = getattr(handler, kind)
            if callback is not None:
                self._call(callback, *objects)

    def _call(self, callback, *args) -> None:
        try:
            callback(*args)
        except Exception:  # one consumer's bug must not stop the informer for all the others
            log.exception("Failed handler resource=%s callback=%s", self.info.qualified,
                          getattr(callback, "__qualname__", callback))


def _report_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Crashed informer task=%s", task.get_name(), exc_info=task.exception())


class SharedInformerFactory:
    """One informer (one list+watch) per resource, namespace and selectors, shared by every consumer that asks:

        factory = SharedInformerFactory(client)
        pods = factory.informer(client.resource("pods"))
        pods.add_handler(on_add=lambda pod: queue.add(key_of(pod)))
        factory.start()
        await factory.wait_for_sync(timeout=30)
    """

    def __init__(self, client: RESTClient, namespace: str | None = None, **informer_options):
        self.client, self.namespace, self.options = client, namespace, informer_options
        self._informers: dict[tuple, Informer] = {}

    def informer(self, info: ResourceInfo, *, namespace: str | None = None, label_selector: str = "",
                 field_selector: str = "") -> Informer:
        namespace = (namespace or self.namespace) if info.namespaced else None
        key = (info.group, info.version, info.plural, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = self._informers[key] = Informer(self.client, info, namespace, label_selector=label_selector,
                                                       field_selector=field_selector, **self.options)
        return informer

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet running (call again after asking for more informers)."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """True when every informer has synced within `timeout` seconds."""
        results = await asyncio.gather(*(i.wait_for_sync(timeout) for i in self._informers.values()))
        return all(results)

    async def stop(self) -> None:
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))
