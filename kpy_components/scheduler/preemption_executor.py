"""Carries out what DefaultPreemption decided (kube-scheduler's preemption Executor, asynchronous as with its
SchedulerAsyncPreemption): the cycle never awaits, so the API writes run in a background task.

For each victim not already being deleted: the DisruptionTarget condition (reason PreemptionByScheduler, message
"<scheduler>: preempting to accommodate a higher priority pod") is added to its status, the pod is deleted
(graceful, its own grace period) and a `Preempted` event says "Preempted by pod <uid> on node <node>". Pods of
lower priority nominated to the same node lose their nomination (they may no longer fit there). From the
decision until the informer shows a victim terminating or gone (`forget`), it counts as being preempted, so the
preemptor does not preempt again meanwhile (upstream's lastVictimsPendingPreemption).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kpy_components.api.errors import APIError
from kpy_components.api.meta import now_rfc3339
from kpy_components.client.errors import ClientConnectionError, is_not_found
from kpy_components.client.events import NORMAL, EventRecorder
from kpy_components.client.informer import Informer
from kpy_components.client.rest import RESTClient

from .nominator import Nominator
from .plugins.default_preemption import DISRUPTION_TARGET, PREEMPTION_BY_SCHEDULER
from .podinfo import PodInfo
from .preemption import Candidate

log = logging.getLogger(__name__)


class PreemptionExecutor:
    def __init__(self, client: RESTClient, pdbs: Informer, recorders: dict[str, EventRecorder],
                 spawn: Callable, writes: asyncio.Semaphore, nominator: Nominator):
        """`spawn(coroutine)` runs a background task the scheduler owns; `writes` bounds API writes in flight."""
        self.client, self.pods = client, client.resource("pods")
        self._pdbs, self.recorders, self.spawn, self.writes = pdbs, recorders, spawn, writes
        self.nominator = nominator
        self.victims: set[str] = set()  # keys of victims the informer has not yet shown terminating or gone

    def pdbs(self) -> list[dict]:
        return self._pdbs.store.list()

    def preempting(self, key: str) -> bool:
        return key in self.victims

    def forget(self, key: str) -> None:
        """The informer shows the pod terminating or gone (or its eviction failed)."""
        self.victims.discard(key)

    def preempt(self, pod: PodInfo, candidate: Candidate) -> None:
        victims = [victim for victim in candidate.victims if not victim.terminating]
        displaced = [other for other in self.nominator.pods_on(candidate.node) if other.priority < pod.priority]
        for other in displaced:
            self.nominator.remove(other.key)
        self.victims.update(victim.key for victim in victims)
        log.info("Preempting pods=%s node=%s preemptor=%s", [v.key for v in victims], candidate.node, pod.key)
        self.spawn(self._run(pod, candidate.node, victims, displaced))

    async def _run(self, pod: PodInfo, node: str, victims: list[PodInfo], displaced: list[PodInfo]) -> None:
        await asyncio.gather(*(self._write(other, "Failed to clear the nominated node",
                                           self._patch_status, other, {"nominatedNodeName": None})
                               for other in displaced),
                             *(self._write(victim, "Failed to preempt", self._evict, pod, node, victim)
                               for victim in victims))

    async def _write(self, target: PodInfo, failure: str, write, *args) -> None:
        try:
            async with self.writes:
                await write(*args)
        except (APIError, ClientConnectionError) as error:
            self.forget(target.key)  # gone already, or not going: the preemptor may try again
            if not is_not_found(error):
                log.warning("%s pod=%s error=%s", failure, target.key, error)

    async def _evict(self, pod: PodInfo, node: str, victim: PodInfo) -> None:
        condition = {"type": DISRUPTION_TARGET, "status": "True", "reason": PREEMPTION_BY_SCHEDULER,
                     "message": f"{pod.scheduler_name}: preempting to accommodate a higher priority pod",
                     "lastTransitionTime": now_rfc3339()}
        await self._patch_status(victim, {"conditions": [condition]})
        await self.client.delete(self.pods, victim.name, victim.namespace)
        recorder = self.recorders.get(pod.scheduler_name)
        if recorder is not None:
            recorder.event(victim.pod, NORMAL, "Preempted", f"Preempted by pod {pod.uid} on node {node}")

    async def _patch_status(self, target: PodInfo, status: dict) -> None:
        await self.client.patch(self.pods, target.name, {"status": status}, target.namespace,
                                patch_type="strategic", subresource="status")
