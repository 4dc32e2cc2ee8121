"""Keeps the authorizers' in-memory views (RBAC objects, the node graph's pods and claims) in line with the store.

Three ways in, from cheapest to most complete:
  - `observe(group, plural, type, obj)`: the server forwards watch events (exact, immediate);
  - `refresh_after(moment)`: before a request is denied, the views are re-listed once unless a list that started
    after the request arrived has already completed (so a RoleBinding created just before `kubectl auth can-i` is
    seen); concurrent callers share one list;
  - `run_periodic(interval)`: a background re-list, which is what catches permissions being taken away when no
    events are forwarded.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from kpy_components.api.errors import APIError
from kpy_components.apiserver.auth.node import NodeGraph
from kpy_components.apiserver.auth.rbac import GROUP as RBAC_GROUP
from kpy_components.apiserver.auth.rbac import PLURALS as RBAC_PLURALS
from kpy_components.apiserver.auth.rbac import RBACIndex
from kpy_components.apiserver.http.context import InternalAPI

log = logging.getLogger(__name__)


class _Source:
    """One view and how to list it; `refresh_after` coalesces concurrent re-lists."""

    def __init__(self, name: str, load, clock: Callable[[], float]):
        self.name, self._load, self._clock = name, load, clock
        self.completed_start = float("-inf")  # start time of the last completed list
        self._running: asyncio.Task | None = None
        self._running_start = 0.0

    async def refresh(self) -> None:
        started = self._clock()
        await self._load()
        self.completed_start = max(self.completed_start, started)

    async def refresh_after(self, moment: float) -> None:
        """Return once a list that started at or after `moment` has completed, starting one if needed.
        List failures propagate."""
        while self.completed_start < moment:
            if self._running is not None and self._running_start < moment:
                await asyncio.shield(self._running)  # began too early to count: let it finish, then start ours
                continue
            if self._running is None:
                self._running_start = self._clock()
                self._running = asyncio.ensure_future(self.refresh())
                self._running.add_done_callback(self._finished)
            await asyncio.shield(self._running)

    def _finished(self, task: asyncio.Task) -> None:
        if self._running is task:
            self._running = None
        if not task.cancelled():
            task.exception()  # retrieved here so an unobserved failure is not reported twice


class PolicyCache:
    def __init__(self, api: InternalAPI, rbac: RBACIndex, graph: NodeGraph,
                 clock: Callable[[], float] = time.monotonic):
        self.api, self.rbac, self.graph, self.clock = api, rbac, graph, clock
        self.rbac_source = _Source("rbac", self._load_rbac, clock)
        self.pods_source = _Source("pods", self._load_pods, clock)

    async def _load_rbac(self) -> None:
        listed = await asyncio.gather(*(self.api.list(RBAC_GROUP, plural) for plural in RBAC_PLURALS))
        for plural, items in zip(RBAC_PLURALS, listed):
            self.rbac.replace(plural, items)

    async def _load_pods(self) -> None:
        pods, claims = await asyncio.gather(self.api.list("", "pods"), self.api.list("", "persistentvolumeclaims"))
        self.graph.replace(pods)
        self.graph.replace_claims(claims)

    async def start(self) -> None:
        await asyncio.gather(self.rbac_source.refresh(), self.pods_source.refresh())

    @staticmethod
    def observed() -> list[tuple[str, str]]:
        """(group, plural) of the resources the views hold."""
        return [(RBAC_GROUP, plural) for plural in RBAC_PLURALS] + [("", "pods"), ("", "persistentvolumeclaims")]

    def observe(self, group: str, plural: str, event_type: str, obj: dict) -> None:
        """A watch event of any resource; those the views do not hold are ignored."""
        if group == RBAC_GROUP and plural in RBAC_PLURALS:
            self.rbac.apply(plural, event_type, obj)
        elif group == "" and plural == "pods":
            self.graph.apply(event_type, obj)
        elif group == "" and plural == "persistentvolumeclaims":
            self.graph.apply_claim(event_type, obj)

    async def run_periodic(self, rbac_interval: float = 2.0, pods_interval: float = 30.0) -> None:
        """Re-list forever (cancel to stop); a failed list is logged and retried at the next tick."""
        next_pods = self.clock() + pods_interval
        while True:
            await asyncio.sleep(rbac_interval)
            sources = [self.rbac_source]
            if self.clock() >= next_pods:
                sources.append(self.pods_source)
                next_pods = self.clock() + pods_interval
            for source in sources:
                try:
                    await source.refresh()
                except (APIError, OSError) as error:
                    log.warning("Failed to re-list the %s view error=%r", source.name, str(error))
