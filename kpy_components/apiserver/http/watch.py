"""NDJSON watch streams: `{"type": ..., "object": ...}` per line over a chunked 200 response.

Table watches (one-row Tables; column definitions on the first event only), BOOKMARK events when the client allows
them, the stream closed at timeoutSeconds (default: a random 30-60 minutes, as kube-apiserver spreads re-watches),
a 410 Gone as an ERROR event (informers re-list on it), client disconnects ending the watch (the app cancels the
handler), and shutdown ending every watch cleanly.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from contextlib import aclosing

from aiohttp import web

from kpy_components.api import errors, tables
from kpy_components.apiserver.registry.store import Store
from kpy_components.apiserver.storage.codec import dumps

from . import negotiation
from .health import Metrics

log = logging.getLogger(__name__)
_MIN_REQUEST_TIMEOUT = 1800  # seconds; watches without timeoutSeconds end after 1-2 times this
_ENCODED_LINES = 1024  # recently encoded events kept for the other watchers of the same event


class Watches:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self._active: set[asyncio.Task] = set()
        self._closing = False
        self._lines: OrderedDict[tuple, tuple] = OrderedDict()

    def __len__(self) -> int:
        return len(self._active)

    def _encoded(self, store: Store, event, mode: tuple) -> bytes:
        """The event's line, encoded once for every watcher that gets the same event in the same form (the watch
        cache hands one Event object to all of them). Entries hold their event, so ids are not reused meanwhile."""
        key = (id(event), mode)
        cached = self._lines.get(key)
        if cached is not None and cached[0] is event:
            self._lines.move_to_end(key)
            return cached[1]
        line = _line(store, event, mode)
        self._lines[key] = (event, line)
        if len(self._lines) > _ENCODED_LINES:
            self._lines.popitem(last=False)
        return line

    async def close_all(self) -> None:
        """End every watch (graceful shutdown): each stream is finished properly, then its handler returns."""
        self._closing = True
        tasks = list(self._active)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def serve(self, request: web.Request, store: Store, namespace: str, name: str) -> web.StreamResponse:
        query = request.query
        field_selector = query.get("fieldSelector", "")
        if name:  # GET .../pods/x?watch=true watches one object
            field_selector = ",".join(filter(None, [f"metadata.name={name}", field_selector]))
        label_selector = query.get("labelSelector", "")
        store.matcher(label_selector, field_selector)  # 400 for malformed selectors before the stream starts
        timeout = _timeout(query.get("timeoutSeconds"))
        accept = negotiation.parse_accept(request.headers.get("Accept"))
        as_table = negotiation.wants_table(accept)
        include_object = query.get("includeObject") or "Metadata"
        bookmarks = query.get("allowWatchBookmarks", "").lower() == "true"
        events = store.watch(namespace, label_selector=label_selector, field_selector=field_selector,
                             resource_version=query.get("resourceVersion", ""), bookmarks=bookmarks)

        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                           "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        task = asyncio.current_task()
        self._active.add(task)
        resource, started, sent = store.info.qualified, time.monotonic(), 0
        self.metrics.watchers.labels(resource).inc()
        events_sent = self.metrics.watch_events.labels(resource)  # looked up once, not per event and watcher
        try:
            async with asyncio.timeout(timeout), aclosing(events):
                async for event in events:
                    if event.type == "BOOKMARK" and not bookmarks:
                        continue
                    mode = (as_table, include_object, as_table and sent == 0)
                    await response.write(self._encoded(store, event, mode))
                    sent += 1
                    events_sent.inc()
        except TimeoutError:
            pass  # timeoutSeconds reached: the client re-watches from its last resourceVersion
        except errors.APIError as error:  # e.g. 410 Gone for a compacted resourceVersion
            await response.write(dumps({"type": "ERROR", "object": error.status()}) + b"\n")
        except asyncio.CancelledError:
            if not self._closing:
                raise  # the client went away: nothing more to write
            task.uncancel()
        except ConnectionResetError:
            return response
        finally:
            self._active.discard(task)
            self.metrics.watchers.labels(resource).dec()
            log.info("Ended watch resource=%s namespace=%s events=%d seconds=%.1f", resource, namespace or "-",
                     sent, time.monotonic() - started)
        await response.write_eof()
        return response


def _line(store: Store, event, mode: tuple) -> bytes:
    as_table, include_object, column_definitions = mode
    if event.type == "BOOKMARK":
        obj = {"kind": store.info.kind, "apiVersion": store.info.api_version,
               "metadata": {"resourceVersion": str(event.revision)}}
    elif as_table:
        obj = tables.to_table(store.info, [event.object], include_object, column_definitions=column_definitions)
    else:
        obj = event.object
    return dumps({"type": event.type, "object": obj}) + b"\n"


def _timeout(value: str | None) -> float:
    if value:
        try:
            seconds = int(value)
        except ValueError:
            raise errors.bad_request(f'timeoutSeconds: Invalid value: "{value}": must be an integer') from None
        if seconds > 0:
            return seconds
    return _MIN_REQUEST_TIMEOUT * (1 + random.random())
