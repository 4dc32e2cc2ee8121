"""The sync loop: informer events only mark that something changed; one task renders the wanted ruleset from the
caches and brings the kernel to it, at most once per minSyncPeriod and at least once per syncPeriod.

A sync is full when nothing is known about the kernel (at start, after a failed sync) or the full-sync period has
passed, partial otherwise (script.py); a sync whose diff is empty calls nothing. Rendering and nft run in a worker
thread on a snapshot of the caches taken on the event loop (the stores are not thread-safe; their objects are never
mutated, so the snapshot's lists are enough). Nothing is removed on exit: the rules stay, so connections and
Services keep working while kpy-proxy restarts.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import conntrack_flows, model, rules, script
from .config import ProxyConfig
from .metrics import ProxyMetrics
from .nft import Nft, NftError

log = logging.getLogger(__name__)
FULL_SYNC_PERIOD = 3600.0  # seconds between full syncs while partial ones succeed (upstream's hour)
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"


@dataclass(frozen=True)
class Snapshot:
    services: list[dict]
    slices: list[dict]
    node: dict | None


def node_addresses(node: dict | None) -> tuple[str, ...]:
    """The Node's IPv4 InternalIPs (nodePortAddresses: ["primary"])."""
    addresses = ((node or {}).get("status") or {}).get("addresses") or ()
    return tuple(a["address"] for a in addresses if a.get("type") == "InternalIP" and a.get("address")
                 and ipaddress.ip_address(a["address"]).version == 4)


def node_eligible(node: dict | None) -> bool:
    """False when the Node is being deleted or drained by the cluster autoscaler (upstream's /healthz)."""
    if node is None:
        return True
    if (node.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return not any(t.get("key") == TO_BE_DELETED_TAINT for t in (node.get("spec") or {}).get("taints") or ())


class Proxier:
    def __init__(self, config: ProxyConfig, node_name: str, nft: Nft, metrics: ProxyMetrics,
                 clock=time.monotonic, wall_clock=time.time,
                 clear_flows: Callable[[list[list[str]]], object] = conntrack_flows.delete):
        self.config, self.node_name, self.nft, self.metrics = config, node_name, nft, metrics
        self.clear_flows = clear_flows  # runs conntrack_flows.stale_flows' commands
        self._last_ports: list[model.ServicePort] | None = None  # the ports of the last successful sync
        self.clock, self.wall_clock = clock, wall_clock
        self.current: rules.Ruleset | None = None  # what the kernel holds, as far as we know; None: unknown
        self.last_full = float("-inf")
        self.last_synced_wall: float | None = None  # wall time of the last successful sync (for /healthz)
        self.oldest_pending: float | None = None  # monotonic time of the oldest change not yet synced
        self._changed = asyncio.Event()
        self._changes = 0  # mark_changed calls so far
        self._ports = model.ServicePortCache()

    # --- events (on the event loop) --------------------------------------------------------------------------------
    def mark_changed(self, kind: str = "") -> None:
        self._changes += 1
        if kind == "service":
            self.metrics.service_changes.inc()
        elif kind == "endpoints":
            self.metrics.endpoint_changes.inc()
        if self.oldest_pending is None:
            self.oldest_pending = self.clock()
            self.metrics.last_queued.set(self.wall_clock())
        self._changed.set()

    # --- health ----------------------------------------------------------------------------------------------------
    def healthy(self) -> bool:
        """Synced at least once, and no change has waited more than twice the sync period (upstream's timeout)."""
        if self.last_synced_wall is None:
            return False
        return self.oldest_pending is None or self.clock() - self.oldest_pending < 2 * self.config.sync_period

    # --- syncing ---------------------------------------------------------------------------------------------------
    def settings(self, node: dict | None) -> rules.Settings:
        cidrs = self.config.node_port_addresses
        if cidrs == ("primary",):
            cidrs = tuple(f"{ip}/32" for ip in node_addresses(node)) or ("127.0.0.1/32",)  # none known: none
        return rules.Settings(node_name=self.node_name, cluster_cidr=self.config.cluster_cidr,
                              masquerade_all=self.config.masquerade_all,
                              masquerade_bit=self.config.masquerade_bit, nodeport_cidrs=cidrs)

    def sync(self, snapshot: Snapshot) -> str:
        """Bring the kernel to the snapshot's ruleset; "full", "partial" or "none" (nothing to change).
        Raises NftError when nft refuses (the kernel is then unchanged, and the next sync is a full one)."""
        started = self.clock()
        ports = self._ports.ports(snapshot.services, snapshot.slices)
        wanted = rules.render(ports, self.settings(snapshot.node))
        full = self.current is None or started - self.last_full >= FULL_SYNC_PERIOD
        try:
            text = "" if full else script.partial(self.current, wanted)
            # Nothing to change: is the table still there? (A partial script fails by itself when it is gone.)
            if not full and not text and not self.nft.table_present():
                log.warning("Found table ip kube-proxy missing (flushed by someone else); syncing it whole")
                self.current, full = None, True
            if full:
                existing = self.nft.existing() if self.current is None else script.Existing.of(self.current)
                text = script.full(wanted, existing)
            if text:
                self.nft.apply(text)
        except NftError:
            self.current = None
            self.metrics.sync_failures.inc()
            raise
        self.current = wanted
        if full:
            self.last_full = started
        if self._last_ports is not None and (stale := conntrack_flows.stale_flows(self._last_ports, ports,
                                                                                  self.node_name)):
            self.clear_flows(stale)  # after the rules: new datagrams must find the new translations
        self._last_ports = ports
        elapsed = self.clock() - started
        kind = "full" if full else ("partial" if text else "none")
        self.metrics.sync_duration.observe(elapsed)
        (self.metrics.full_sync_duration if full else self.metrics.partial_sync_duration).observe(elapsed)
        for name, count in wanted.counts().items():
            self.metrics.objects.labels(name).set(count)
        self.metrics.no_local_endpoints.labels("Internal").set(
            sum(1 for p in ports if p.internal_local and p.cluster_endpoints() and not p.local_endpoints(self.node_name)))
        self.metrics.no_local_endpoints.labels("External").set(
            sum(1 for p in ports if p.external_local and p.has_external and p.cluster_endpoints()
                and not p.local_endpoints(self.node_name)))
        log.debug("Synced proxy rules kind=%s services=%d seconds=%.3f", kind, len(ports), elapsed)
        return kind

    async def run(self, take_snapshot) -> None:
        """Sync until cancelled; `take_snapshot()` reads the caches (called on the event loop)."""
        last_start = float("-inf")
        self._changed.set()  # the first sync right away
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), self.config.sync_period)
            except TimeoutError:
                pass
            wait = last_start + self.config.min_sync_period - self.clock()
            if wait > 0:  # rate limit: changes arriving meanwhile join this sync
                await asyncio.sleep(wait)
            self._changed.clear()
            changes_seen = self._changes
            last_start = self.clock()
            try:
                kind = await asyncio.to_thread(self.sync, take_snapshot())
            except NftError as error:
                log.error("Failed to sync proxy rules error=%s", error)
                self._changed.set()  # retried after minSyncPeriod, as a full sync; the changes stay pending
                continue
            # Pending until a sync that started after them succeeds; those that came during this one still are.
            self.oldest_pending = None if self._changes == changes_seen else last_start
            self.last_synced_wall = self.wall_clock()
            self.metrics.last_sync.set(self.last_synced_wall)
            if kind != "none":
                log.info("Synced proxy rules kind=%s", kind)
