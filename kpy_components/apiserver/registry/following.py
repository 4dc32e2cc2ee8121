"""Keeping an in-process view of one resource's objects in step with the store (what the API server's own
controllers, the CRD controller and the aggregator, follow)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kpy_components.api import errors, meta

from .store import Store

log = logging.getLogger(__name__)


async def follow(store: Store, known: dict[str, dict], changed: Callable[[str], None], revision: str) -> None:
    """Forever: apply the store's events after `revision` to `known` (name -> object; deleted names leave) and
    call `changed(name)` for each. A watch that ends in an error (410 Gone after a compaction) is followed by a
    re-list, after which every name that was or is known counts as changed."""
    while True:
        try:
            async for event in store.watch(resource_version=revision):
                if event.type == "BOOKMARK":
                    continue
                revision = str(event.revision)
                name = meta.name_of(event.object)
                if event.type == "DELETED":
                    known.pop(name, None)
                else:
                    known[name] = event.object
                changed(name)
        except errors.APIError as error:
            log.info("Watch of %s ended (%s); re-listing", store.info.qualified, error)
            listed = await store.list()
            revision = listed["metadata"]["resourceVersion"]
            current = {meta.name_of(item): item for item in listed["items"]}
            gone = set(known) - set(current)
            known.clear()
            known.update(current)
            for name in gone | set(current):
                changed(name)


async def settle_each(queue: asyncio.Queue, settle: Callable[[str], Awaitable[None]], what: str,
                      recheck: float) -> None:
    """Forever: settle the names `queue` hands out, one at a time. One object's failure must not stop the others:
    it is logged and its name queued again after `recheck` seconds."""
    while True:
        name = await queue.get()
        try:
            await settle(name)
        except Exception:
            log.exception("Failed to settle %s name=%s", what, name)
            asyncio.get_running_loop().call_later(recheck, queue.put_nowait, name)
