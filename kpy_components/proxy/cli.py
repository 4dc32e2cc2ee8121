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
import socket
import sys
import time


from kpy_components import systemd
from kpy_components.client import RESTClient, SharedInformerFactory, load_default, load_kubeconfig
from kpy_components.component import daemon
from kpy_components.component.health import component_registry
from kpy_components.version import VERSION

from . import config as proxy_config
from . import conntrack, serving
from .metrics import ProxyMetrics
from .nft import Nft
from .proxier import Proxier, Snapshot, node_eligible

log = logging.getLogger(__name__)
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
    registry = component_registry()
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

    try:
        return await daemon.until_stopped(work(), stop, "kpy-proxy")
    finally:
        for runner in runners:
            await runner.cleanup()
        await informers.stop()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return daemon.main("kpy-proxy", args, lambda: proxy_config.load(args.config, args), serve)


if __name__ == "__main__":
    sys.exit(main())
