"""An event recorder: `recorder.event(pod, "Warning", "FailedScheduling", "0/3 nodes are available: ...")`
becomes a core/v1 Event about the pod, written in the background.

Contracts:
- `event`/`eventf` never block and never raise for API trouble: they queue the event and return. When the queue
  is full (a flood, or the API server is down) further events are dropped and counted in `dropped`, as
  client-go's broadcaster drops them.
- Repeats aggregate: the same event (same object, type, reason, message and source) recorded again while it is
  remembered (the last MAX_REMEMBERED distinct events) patches the existing Event's `count` and `lastTimestamp`
  instead of creating another. If that Event has gone (expired by TTL), it is created again with the count.
- Writes failing with a connection error, 429 or 5xx are retried with backoff (MAX_ATTEMPTS); other failures are
  logged and the event is dropped: events are best-effort, as in Kubernetes.
- `stop()` flushes what is queued (within a timeout), then stops the writer.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.meta import now_rfc3339

from .backoff import Backoff
from .errors import ClientConnectionError, is_not_found, is_retryable
from .rest import RESTClient

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"
QUEUE_SIZE = 1000
MAX_REMEMBERED = 4096
MAX_ATTEMPTS = 5


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    first_timestamp: str


def object_reference(obj: dict, field_path: str = "") -> dict:
    """The ObjectReference of an object (or of a reference dict with kind/name/namespace)."""
    meta = obj.get("metadata") or {}
    reference = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                 "namespace": meta.get("namespace", obj.get("namespace", "")), "name": meta.get("name",
                                                                                         obj.get("name", "")),
                 "uid": meta.get("uid", obj.get("uid", "")),
                 "resourceVersion": meta.get("resourceVersion", obj.get("resourceVersion", ""))}
    if field_path:
        reference["fieldPath"] = field_path
    return {k: v for k, v in reference.items() if v}


class EventRecorder:
    def __init__(self, client: RESTClient, component: str, host: str = "", *, queue_size: int = QUEUE_SIZE):
        self.client, self.component, self.host = client, component, host
        self.events = client.resource("events")
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[dict, str, str, str]] = asyncio.Queue(queue_size)
        self._seen: OrderedDict[tuple, _Seen] = OrderedDict()
        self._task: asyncio.Task | None = None

    # --- callers -------------------------------------------------------------------------------------------------
    def event(self, obj: dict, event_type: str, reason: str, message: str, field_path: str = "") -> None:
        if event_type not in (NORMAL, WARNING):
            raise ValueError(f"event type {event_type!r}: must be {NORMAL!r} or {WARNING!r}")
        reference = object_reference(obj, field_path)
        if not reference.get("name"):
            raise ValueError(f"event {reason!r}: the object has no name to refer to")
        try:
            self._queue.put_nowait((reference, event_type, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("Dropped event reason=%s object=%s/%s queue_full=%d", reason, reference.get("namespace", ""),
                        reference["name"], self._queue.maxsize)

    def eventf(self, obj: dict, event_type: str, reason: str, message_format: str, *args) -> None:
        self.event(obj, event_type, reason, message_format % args if args else message_format)

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"event-recorder-{self.component}")
        return self._task

    async def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
        except TimeoutError:
            log.warning("Dropped events at stop component=%s queued=%d", self.component, self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def flush(self) -> None:
        """Wait until every event queued so far is written (or dropped)."""
        await self._queue.join()

    # --- the writer ----------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            reference, event_type, reason, message = await self._queue.get()
            try:
                await self._write(reference, event_type, reason, message)
            except Exception:  # a bug here must not end event recording for the whole component
                log.exception("Failed to record event reason=%s", reason)
            finally:
                self._queue.task_done()

    async def _write(self, reference: dict, event_type: str, reason: str, message: str) -> None:
        key = (self.component, self.host, *(reference.get(f, "") for f in
               ("kind", "apiVersion", "namespace", "name", "uid", "fieldPath")), event_type, reason, message)
        now = now_rfc3339()
        seen = self._seen.get(key)
        backoff = Backoff(base=0.5, cap=10.0)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                if seen is None:
                    seen = await self._create(reference, event_type, reason, message, now)
                else:
                    await self._bump(seen, reference, event_type, reason, message, now)
                break
            except (APIError, ClientConnectionError) as error:
                if not is_retryable(error) or attempt == MAX_ATTEMPTS:
                    log.warning("Dropped event reason=%s object=%s/%s error=%s", reason,
                                reference.get("namespace", ""), reference["name"], error)
                    self._seen.pop(key, None)
                    return
                await asyncio.sleep(backoff.next_delay())
        self._seen[key] = seen
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)

    async def _create(self, reference: dict, event_type: str, reason: str, message: str, now: str,
                      seen: _Seen | None = None) -> _Seen:
        namespace = reference.get("namespace") or "default"
        name = seen.name if seen else f"{reference['name']}.{time.time_ns():x}"
        body = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
                "involvedObject": reference, "type": event_type, "reason": reason, "message": message,
                "source": {k: v for k, v in (("component", self.component), ("host", self.host)) if v},
                "firstTimestamp": seen.first_timestamp if seen else now, "lastTimestamp": now,
                "count": seen.count if seen else 1,
                "reportingComponent": self.component, "reportingInstance": self.host}
        await self.client.create(self.events, body, namespace)
        return seen or _Seen(name, namespace, 1, now)

    async def _bump(self, seen: _Seen, reference: dict, event_type: str, reason: str, message: str,
                    now: str) -> None:
        count = seen.count + 1
        try:
            await self.client.patch(self.events, seen.name, {"count": count, "lastTimestamp": now},
                                    seen.namespace, patch_type="strategic")
        except APIError as error:
            if not is_not_found(error):
                raise
            await self._create(reference, event_type, reason, message, now, _Seen(seen.name, seen.namespace,
                                                                                  count, seen.first_timestamp))
        seen.count = count
