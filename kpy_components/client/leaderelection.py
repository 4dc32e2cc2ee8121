"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Many replicas run `LeaderElector.run()`; one holds the Lease and runs `on_started_leading()`, the others wait.
Safety comes from the timing rules (checked by LeaderElectionConfig, a ValueError naming the settings otherwise):

    lease_duration > renew_deadline > JITTER_FACTOR * retry_period

- A candidate takes the Lease only when it is free (holderIdentity empty) or expired: unchanged for
  leaseDurationSeconds as measured on the candidate's OWN clock from when it first saw that record (so clock skew
  between hosts does not matter).
- The leader renews every retry_period. If it has not renewed for renew_deadline (API unreachable, conflicts) it
  stops leading: its work task is cancelled and on_stopped_leading runs, before anyone else can consider the Lease
  expired (renew_deadline < lease_duration).
- Stopping gracefully (cancelling `run`) releases the Lease (holderIdentity emptied), so a standby takes over within
  about a retry period instead of a lease duration.

`run()` returns (or re-raises the work's exception) once leadership ends; components then exit and let their
supervisor restart them, as kube-scheduler does.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.meta import now_rfc3339_micro
from kpy_components.version import VERSION

from .errors import ClientConnectionError, is_already_exists, is_not_found
from .rest import RESTClient

log = logging.getLogger(__name__)

# The holder writes the version of its code here, so an upgrade can tell which version leads (and which host, from
# holderIdentity `<hostname>_<uuid>`) without reaching the holder's own port.
HOLDER_VERSION = "kpy.io/holder-version"
JITTER_FACTOR = 1.2  # a candidate waits retry_period * (1 + random * JITTER_FACTOR) between attempts


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Seconds throughout; defaults are kube-scheduler's (15 s / 10 s / 2 s)."""
    lease_name: str
    identity: str
    lease_namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self):
        problems = [f"{name} must not be empty" for name in ("lease_name", "lease_namespace", "identity")
                    if not getattr(self, name)]
        problems += [f"{name} ({getattr(self, name)}) must be greater than 0"
                     for name in ("lease_duration", "renew_deadline", "retry_period") if getattr(self, name) <= 0]
        if not problems:
            if self.lease_duration <= self.renew_deadline:
                problems.append(f"lease_duration ({self.lease_duration}) must be greater than renew_deadline "
                                f"({self.renew_deadline})")
            if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
                problems.append(f"renew_deadline ({self.renew_deadline}) must be greater than retry_period "
                                f"({self.retry_period}) x {JITTER_FACTOR} = {JITTER_FACTOR * self.retry_period:g}")
        if problems:
            raise ValueError("leader election: " + "; ".join(problems))

    @property
    def lease_duration_seconds(self) -> int:
        """What the Lease records (whole seconds, rounded up so others never expire us early)."""
        return max(1, math.ceil(self.lease_duration))


class LeaderElector:
    def __init__(self, client: RESTClient, config: LeaderElectionConfig, *,
                 on_started_leading: Callable[[], Awaitable[None]] | None = None,
                 on_stopped_leading: Callable[[], object] | None = None,
                 on_new_leader: Callable[[str], object] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        """Callbacks: on_started_leading is the leader's work (cancelled when leadership ends); on_stopped_leading
        and on_new_leader(identity) may be plain or async functions."""
        self.client, self.config = client, config
        self.leases = client.resource("leases", "coordination.k8s.io")
        self.on_started_leading, self.on_stopped_leading = on_started_leading, on_stopped_leading
        self.on_new_leader = on_new_leader
        self._clock = clock
        self._observed_spec: dict | None = None
        self._observed_at = 0.0
        self._reported_leader: str | None = None
        self._leading = False

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str | None:
        """The holder last seen on the Lease ("" or None when it is free)."""
        return (self._observed_spec or {}).get("holderIdentity") or None

    # --- the loop ------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        await self._acquire()
        self._leading = True
        log.info("Started leading lease=%s/%s identity=%s", self.config.lease_namespace, self.config.lease_name,
                 self.config.identity)
        work = asyncio.create_task(self.on_started_leading(), name="leader-work") if self.on_started_leading \
            else None
        renewing = asyncio.create_task(self._renew_until_lost(), name="leader-renew")
        release = self.config.release_on_cancel  # stopped or the work ended: give the Lease back
        try:
            await asyncio.wait([t for t in (work, renewing) if t], return_when=asyncio.FIRST_COMPLETED)
            release = release and not renewing.done()  # lost: the Lease is not ours to release
        finally:
            await self._step_down(work, renewing, release=release)
        if work is not None and work.done() and not work.cancelled() and work.exception() is not None:
            raise work.exception()

    async def _step_down(self, work: asyncio.Task | None, renewing: asyncio.Task, release: bool) -> None:
        self._leading = False
        for task in (work, renewing):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(*(t for t in (work, renewing) if t), return_exceptions=True)
        if release:
            await self._release()
        log.info("Stopped leading lease=%s/%s identity=%s released=%s", self.config.lease_namespace,
                 self.config.lease_name, self.config.identity, release)
        await _call(self.on_stopped_leading)

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(self.config.retry_period * (1 + random.random() * JITTER_FACTOR))

    async def _renew_until_lost(self) -> None:
        """Returns when leadership is lost: no renewal for renew_deadline, or someone else holds the Lease."""
        renewed = self._clock()
        while True:
            await asyncio.sleep(self.config.retry_period)
            remaining = renewed + self.config.renew_deadline - self._clock()
            if remaining <= 0:
                log.warning("Failed to renew lease=%s/%s within renew_deadline=%ss", self.config.lease_namespace,
                            self.config.lease_name, self.config.renew_deadline)
                return
            try:
                async with asyncio.timeout(remaining):
                    ok = await self._attempt()
            except TimeoutError:
                ok = False
            if ok:
                renewed = self._clock()
            elif self.leader not in (None, self.config.identity):
                log.warning("Lost lease=%s/%s to holder=%s", self.config.lease_namespace, self.config.lease_name,
                            self.leader)
                return

    # --- one attempt ---------------------------------------------------------------------------------------------
    async def _attempt(self) -> bool:
        """Try to acquire or renew once; errors count as a failed attempt (logged)."""
        try:
            return await self._try_acquire_or_renew()
        except (APIError, ClientConnectionError) as error:
            log.info("Failed lease attempt lease=%s/%s error=%s", self.config.lease_namespace,
                     self.config.lease_name, error)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        config, now = self.config, now_rfc3339_micro()
        mine = {"holderIdentity": config.identity, "leaseDurationSeconds": config.lease_duration_seconds,
                "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        try:
            lease = await self.client.get(self.leases, config.lease_name, config.lease_namespace)
        except APIError as error:
            if not is_not_found(error):
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": config.lease_name, "namespace": config.lease_namespace,
                                 "annotations": {HOLDER_VERSION: VERSION}}, "spec": mine}
            try:
                created = await self.client.create(self.leases, body, config.lease_namespace)
            except APIError as create_error:
                if is_already_exists(create_error):
                    return False
                raise
            await self._observe(created["spec"])
            return True
        spec = lease.get("spec") or {}
        await self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != config.identity and not self._expired(spec):
            return False
        if holder == config.identity:
            mine["acquireTime"] = spec.get("acquireTime") or now
            mine["leaseTransitions"] = spec.get("leaseTransitions") or 0
        else:
            mine["leaseTransitions"] = (spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = mine  # metadata.resourceVersion stays: a concurrent writer makes this a 409
        lease.setdefault("metadata", {}).setdefault("annotations", {})[HOLDER_VERSION] = VERSION
        updated = await self.client.update(self.leases, lease, config.lease_namespace)
        await self._observe(updated["spec"])
        return True

    def _expired(self, spec: dict) -> bool:
        duration = spec.get("leaseDurationSeconds") or self.config.lease_duration_seconds
        return self._observed_at + duration <= self._clock()

    async def _observe(self, spec: dict) -> None:
        """Remember the Lease record and when it last changed (on our clock); report a new leader."""
        if spec != self._observed_spec:
            self._observed_spec, self._observed_at = dict(spec), self._clock()
        holder = spec.get("holderIdentity") or None
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            log.info("Observed new leader lease=%s/%s holder=%s", self.config.lease_namespace,
                     self.config.lease_name, holder)
            await _call(self.on_new_leader, holder)

    async def _release(self) -> None:
        """Give the Lease back (holder emptied, 1 s duration) if we still hold it; errors are logged: the Lease
        then simply expires."""
        config = self.config
        try:
            lease = await self.client.get(self.leases, config.lease_name, config.lease_namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != config.identity:
                return
            now = now_rfc3339_micro()
            lease["spec"] = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                             "leaseTransitions": spec.get("leaseTransitions") or 0}
            await self.client.update(self.leases, lease, config.lease_namespace)
        except (APIError, ClientConnectionError) as error:
            log.warning("Failed to release lease=%s/%s error=%s", config.lease_namespace, config.lease_name, error)


async def _call(callback, *args) -> None:
    if callback is None:
        return
    result = callback(*args)
    if inspect.isawaitable(result):
        await result
