"""CoreDNS's three plain-HTTP ports: /health (health plugin, 8080: 200 "OK" while the process serves), /ready (ready
plugin, 8181: 200 "OK" once the caches synced and DNS is served, else 503 naming what is not ready) and /metrics
(prometheus plugin, 9153). Plain HTTP as CoreDNS's, so kubelets, load balancers and Prometheus read them as they
read CoreDNS's.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kpy_components.component.health import version_info

from .config import Address

log = logging.getLogger(__name__)


async def _version(_request: web.Request) -> web.Response:
    return web.json_response(version_info())


class ProbeServers:
    def __init__(self, health: Address, ready: Address, metrics: Address, registry: CollectorRegistry,
                 not_ready: Callable[[], list[str]]):
        """`not_ready` returns what keeps the server from being ready (empty: ready)."""
        self.addresses = {"health": health, "ready": ready, "metrics": metrics}
        self.registry, self.not_ready = registry, not_ready
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _ready(self, _request: web.Request) -> web.Response:
        waiting = self.not_ready()
        if waiting:
            return web.Response(status=503, text="\n".join(waiting) + "\n")
        return web.Response(text="OK")

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        for name, handler in (("health", self._health), ("ready", self._ready), ("metrics", self._metrics)):
            app = web.Application()
            app.router.add_get(f"/{name}", handler)
            if name == "health":  # the distribution version, as the other components serve it (what upgrades read)
                app.router.add_get("/version", _version)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            host, port = self.addresses[name]
            site = web.TCPSite(runner, host, port)
            await site.start()
            self._runners.append(runner)
            sockets = site._server.sockets if site._server else []  # aiohttp has no public bound-port accessor
            self.ports[name] = sockets[0].getsockname()[1] if sockets else port
            log.info("Serving /%s address=%s port=%d", name, host, self.ports[name])

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
