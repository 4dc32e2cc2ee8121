"""The base every controller shares: informers that enqueue object keys, a rate-limited work queue, and an
idempotent `reconcile(key)` run by a few workers.

    class ReplicaSetController(Controller):
        name = "replicaset"

        def setup(self):
            self.replicasets = self.informer("replicasets", "apps")
            self.replicasets.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))
            self.informer("pods").add_handler(on_add=lambda pod: self.enqueue_owner(pod, "ReplicaSet"), ...)

        async def reconcile(self, key): ...   # read from the informers' caches, write through self.client

Contract: reconcile reads state from caches, writes only through the API, and may be called again for any key at
any time (restart-safe). Raising retries the key with per-key exponential backoff; `self.queue.add_after(key, s)`
looks again later (deadlines, TTLs).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from prometheus_client import CollectorRegistry

from kpy_components.client import (EventRecorder, Informer, RESTClient, SharedInformerFactory, WorkQueue, key_of,
                                   run_workers)

if TYPE_CHECKING:
    from .config import ControllerManagerConfig

log = logging.getLogger(__name__)


@dataclass
class ControllerContext:
    client: RESTClient
    informers: SharedInformerFactory
    config: ControllerManagerConfig
    recorder: Callable[[str], EventRecorder]  # recorder("deployment-controller")
    metrics: CollectorRegistry


def controller_ref(obj: dict) -> dict | None:
    """The ownerReference with controller: true, if any."""
    for reference in obj.get("metadata", {}).get("ownerReferences") or ():
        if reference.get("controller"):
            return reference
    return None


def new_controller_ref(owner: dict) -> dict:
    """An ownerReference making `owner` the controller of a child (blockOwnerDeletion, as controllers set it)."""
    metadata = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": metadata["name"],
            "uid": metadata["uid"], "controller": True, "blockOwnerDeletion": True}


class Controller:
    name: ClassVar[str]  # as listed in --controllers
    workers: ClassVar[int] = 2

    def __init__(self, context: ControllerContext):
        self.context = context
        self.client = context.client
        self.config = context.config
        self.queue = WorkQueue(self.name)
        self.workers = context.config.concurrent_syncs.get(self.name, self.workers)
        self.recorder = context.recorder(f"{self.name}-controller")

    # --- wiring helpers ------------------------------------------------------------------------------------------
    def informer(self, plural: str, group: str = "", version: str = "v1") -> Informer:
        """The shared informer of a resource (one list+watch per resource for the whole controller manager)."""
        return self.context.informers.informer(self.client.resource(plural, group, version))

    def enqueue(self, obj: dict, *_ignored) -> None:
        """Queue the object's key; usable directly as on_add/on_delete, and as on_update (it queues `old`'s key,
        which is the same key)."""
        self.queue.add(key_of(obj))

    def enqueue_owner(self, obj: dict, kind: str) -> None:
        """Queue the key of the `kind` that controls `obj` (via its controller ownerReference), if any."""
        reference = controller_ref(obj)
        if reference and reference.get("kind") == kind:
            namespace = obj.get("metadata", {}).get("namespace")
            self.queue.add(f"{namespace}/{reference['name']}" if namespace else reference["name"])

    # --- what each controller writes -----------------------------------------------------------------------------
    @classmethod
    def wanted(cls, config: ControllerManagerConfig) -> bool:
        """Whether this controller runs under `config` even when enabled (nodeipam needs allocateNodeCIDRs)."""
        return True

    def setup(self) -> None:
        """Ask for informers and add handlers that enqueue keys (called once, before informers start)."""
        raise NotImplementedError

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    # --- running -------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Workers over the queue until cancelled (the controller manager starts informers and waits for their
        sync before calling this)."""
        try:
            await run_workers(self.queue, self.reconcile, self.workers)
        finally:
            self.queue.shut_down()
