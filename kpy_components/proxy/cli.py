"""kpy-proxy: the entry point.

    config file + flags -> API client -> informers (Services, EndpointSlices, its Node) -> /healthz /livez (10256)
    and /metrics (10249) -> conntrack sysctls -> the sync loop -> until SIGTERM

Exit codes: 0 after SIGTERM/SIGINT (the rules stay in the kernel, so Services and connections keep working
while it restarts), 1 when it failed, 2 for a bad command line or config file (one line per problem naming the
field; never a traceback).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import time

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from kpy_components import systemd
from kpy_components.client import KubeconfigError, RESTClient, SharedInformerFactory, load_default, load_kubeconfig
from kpy_components.component.config import ConfigError
from kpy_components.version import VERSION

from . import config as proxy_config
from . import conntrack, serving
from .metrics import ProxyMetrics
from .nft import Nft
from .proxier import Proxier, Snapshot, node_eligible

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2
# As upstream: Services of another proxy, and headless Services' slices, are not this proxy's business.
PROXIED_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
CACHE_SYNC_TIMEOUT = 60.0


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="kpy-proxy", description="kpy's kube-proxy: programs Services into the "
                                     "kernel with nftables (table ip kube-proxy)")
    result.add_argument("--config", help="KubeProxyConfiguration file (YAML)")
    result.add_argument("--kubeconfig", help="kubeconfig to reach the API server (overrides clientConnection)")
    result.add_argument("--hostname-override", default="", help="the Node's name (default: this host's name)")
    result.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    result.add_argument("--version", action="version", version=f"Kubernetes v{VERSION} (kpy-proxy)")
    return result


async def serve(config: proxy_config.ProxyConfig, stop: asyncio.Event) -> int:
    client_config = load_kubeconfig(config.kubeconfig) if config.kubeconfig else load_default()
    node_name = config.hostname_override or socket.gethostname().lower()
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    proxier = Proxier(config, node_name, Nft(), ProxyMetrics(registry))
    client = RESTClient(client_config, user_agent=f"kpy-proxy/v{VERSION} ({node_name})")
    informers = SharedInformerFactory(client)
    services = informers.informer(client.resource("services"), label_selector=PROXIED_SELECTOR)
    slices = informers.informer(client.resource("endpointslices", "discovery.k8s.io"),
                                label_selector=PROXIED_SELECTOR)
    nodes = informers.informer(client.resource("nodes"), field_selector=f"metadata.name={node_name}")
    for informer, kind in ((services, "service"), (slices, "endpoints"), (nodes, "node")):
        informer.add_handler(on_add=lambda _o, k=kind: proxier.mark_changed(k),
                             on_update=lambda _old, _new, k=kind: proxier.mark_changed(k),
                             on_delete=lambda _o, k=kind: proxier.mark_changed(k))

    def node() -> dict | None:
        return nodes.store.get(node_name)

    def snapshot() -> Snapshot:
        return Snapshot(services.store.list(), slices.store.list(), node())

    runners = [await serving.start(serving.health_app(proxier.healthy, lambda: node_eligible(node()),
                                                      lambda: proxier.last_synced_wall, time.time),
                                   config.healthz_address),
               await serving.start(serving.metrics_app(registry), config.metrics_address)]
    await asyncio.to_thread(conntrack.apply, config)
    informers.start()

    async def work() -> None:
        if not await informers.wait_for_sync(CACHE_SYNC_TIMEOUT):
            log.warning("Caches not synced after %.0fs; waiting on", CACHE_SYNC_TIMEOUT)
            await informers.wait_for_sync()
        if systemd.notify_ready():
            log.info("Notified systemd ready=1")
        await proxier.run(snapshot)

    task = asyncio.create_task(work(), name="kpy-proxy")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return EXIT_OK
        log.error("Failed: %s", task.exception(), exc_info=task.exception())
        return EXIT_FAILED
    finally:
        stopping.cancel()
        for runner in runners:
            await runner.cleanup()
        await informers.stop()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = proxy_config.load(args.config, args)
    except ConfigError as error:
        for problem in error.problems:
            print(f"kpy-proxy: {error.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await serve(config, stop)

    try:
        return asyncio.run(run())
    except KubeconfigError as error:
        print(f"kpy-proxy: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except OSError as error:  # a port taken, ...
        print(f"kpy-proxy: cannot serve: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
