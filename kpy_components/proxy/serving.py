"""kpy-proxy's plain-HTTP endpoints, as kube-proxy serves them:

- healthz address (0.0.0.0:10256, what load balancers probe): /healthz answers 200 while the rules are current
  (synced at least once, no change waiting longer than twice syncPeriod) and the Node is not being deleted, else
  503; /livez the same without the Node check. Both bodies are upstream's JSON:
  {"lastUpdated": "...", "currentTime": "...", "nodeEligible": true}. /version: the distribution version, as the
  other components serve it (what upgrades read).
- metrics address (127.0.0.1:10249): /metrics (Prometheus text), /healthz (ok), /proxyMode (nftables).
"""
from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kpy_components.component.health import version_info

log = logging.getLogger(__name__)


def _go_time(seconds: float | None) -> str:
    if seconds is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} +0000 UTC"


def health_app(healthy: Callable[[], bool], eligible: Callable[[], bool], last_updated: Callable[[], float | None],
               now: Callable[[], float]) -> web.Application:
    app = web.Application()

    def answer(check_node: bool) -> web.Response:
        node_ok = eligible()
        ok = healthy() and (node_ok or not check_node)
        body = {"lastUpdated": _go_time(last_updated()), "currentTime": _go_time(now())}
        if check_node:
            body["nodeEligible"] = node_ok
        return web.Response(status=200 if ok else 503, text=json.dumps(body), content_type="application/json")

    async def healthz(_request: web.Request) -> web.Response:
        return answer(check_node=True)

    async def livez(_request: web.Request) -> web.Response:
        return answer(check_node=False)

    async def version(_request: web.Request) -> web.Response:
        return web.json_response(version_info())

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/version", version)
    return app


def metrics_app(registry: CollectorRegistry) -> web.Application:
    app = web.Application()

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def mode(_request: web.Request) -> web.Response:
        return web.Response(text="nftables")

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/proxyMode", mode)
    return app


async def start(app: web.Application, address: tuple[str, int]) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, address[0], address[1]).start()
    log.info("Serving address=%s port=%d", *address)
    return runner
