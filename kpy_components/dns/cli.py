"""`kpy-dns`: the cluster DNS server (CoreDNS-like), serving the cluster domain from watch-fed caches.

    kpy-dns --config /etc/kpy/dns.yaml [--kubeconfig FILE] [--log-level info]

Every replica serves (no leader election: DNS replicas are interchangeable). Life as the other kpy components':
config file -> API client -> informers -> DNS listeners and probe ports -> systemd READY=1 -> until SIGTERM.
Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot serve (a port taken), 2 for a bad command line or config file
(one line per problem naming the field; never a traceback).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from kpy_components import systemd
from kpy_components.client import RESTClient, SharedInformerFactory, load_default, load_kubeconfig
from kpy_components.component import collector, daemon
from kpy_components.component.runner import LOG_LEVELS
from kpy_components.version import VERSION

from . import config as dns_config
from .answer import Answerer
from .endpoints import EndpointsKeeper
from .feed import Feed
from .forward import Forwarder
from .metrics import DNSMetrics
from .probes import ProbeServers
from .records import ZoneIndex
from .server import Listener

NAME = "kpy-dns"
log = logging.getLogger(__name__)


class DNSServer:
    """Everything one kpy-dns process runs, over one API client; `start` returns once DNS is served."""

    def __init__(self, settings: dns_config.DNSConfig, client: RESTClient, registry: CollectorRegistry):
        self.settings, self.client, self.registry = settings, client, registry
        self.metrics = DNSMetrics(registry)
        self.metrics.build_info.labels(VERSION, "", f"python{sys.version_info.major}.{sys.version_info.minor}").set(1)
        self.index = ZoneIndex(settings.cluster_domain, settings.ttl)
        self.index.synced = False
        self.informers = SharedInformerFactory(client)
        self.feed = Feed(self.index, client, self.informers)
        self.keeper = (EndpointsKeeper(client, self.informers, self.feed.slices, settings.endpoint_slice)
                       if settings.endpoint_slice else None)
        forwarder = Forwarder(settings.upstreams, settings.upstream_timeout, settings.cache_size,
                              settings.cache_max_ttl, self.metrics)
        answerer = Answerer(self.index, forwarder)
        self.listeners = [Listener(host, port, answerer, self.metrics, settings.cache_size)
                          for host, port in settings.listen]
        self.probes = ProbeServers(settings.health, settings.ready, settings.metrics, registry, self.not_ready)
        self._serving = False
        self._tasks: list[asyncio.Task] = []

    def not_ready(self) -> list[str]:
        waiting = [] if self._serving else ["dns: not serving yet"]
        for name, informer in (("services", self.feed.services), ("endpointslices", self.feed.slices),
                               ("namespaces", self.feed.namespaces)):
            if not informer.has_synced:
                waiting.append(f"kubernetes: {name} not synced yet")
        return waiting

    async def start(self) -> None:
        self.informers.start()
        self._tasks = [asyncio.create_task(self._wait_for_sync(), name="kpy-dns-sync")]
        if self.keeper is not None:
            self._tasks.append(asyncio.create_task(self.keeper.run(), name="kpy-dns-endpoints"))
        for task in self._tasks:
            task.add_done_callback(_report_crash)
        await self.probes.start()
        for listener in self.listeners:
            await listener.start()
        self._serving = True

    async def _wait_for_sync(self) -> None:
        await self.informers.wait_for_sync()
        self.index.synced = True
        log.info("Synced caches services=%d endpointslices=%d namespaces=%d", len(self.feed.services.store),
                 len(self.feed.slices.store), len(self.feed.namespaces.store))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for listener in self.listeners:
            await listener.stop()
        await self.informers.stop()
        await self.probes.stop()


def _report_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Crashed task=%s", task.get_name(), exc_info=task.exception())


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog=NAME, description="Serve the cluster domain over DNS (CoreDNS-like).")
    result.add_argument("--config", help="configuration file (YAML, kind KpyDNSConfiguration)")
    result.add_argument("--kubeconfig", help="kubeconfig to reach the API server (overrides the config file's "
                        "clientConnection.kubeconfig; default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    result.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    result.add_argument("--version", action="version", version=f"{NAME} v{VERSION}")
    return result


async def serve(settings: dns_config.DNSConfig, client_config, stop: asyncio.Event) -> int:
    collector.tune()
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    async with RESTClient(client_config, user_agent=f"{NAME}/v{VERSION}") as client:
        server = DNSServer(settings, client, registry)
        try:
            await server.start()
            if systemd.notify_ready():  # Type=notify: `systemctl start` returns once DNS is served
                log.info("Notified systemd ready=1")
            await stop.wait()
            return 0
        finally:
            await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def load() -> tuple[dns_config.DNSConfig, object]:
        settings = dns_config.load(args.config, args)
        return settings, load_kubeconfig(settings.kubeconfig) if settings.kubeconfig else load_default()

    return daemon.main(NAME, args, load, lambda loaded, stop: serve(*loaded, stop))


if __name__ == "__main__":
    sys.exit(main())
