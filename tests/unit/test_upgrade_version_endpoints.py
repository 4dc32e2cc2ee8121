"""kpy-kubelet (healthz port), kpy-proxy (health port) and kpy-dns (health port) answer /version with the same JSON
as the API server, scheduler and controller-manager: what the upgrade preflight reads on each host."""
import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from kpy_components.component.health import version_info
from kpy_components.dns.probes import ProbeServers
from kpy_components.kubelet import server as kubelet_server
from kpy_components.proxy import serving as proxy_serving
from kpy_components.version import VERSION

pytestmark = pytest.mark.anyio


async def get_json(url: str) -> dict:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.status == 200
        return await answer.json()


async def test_kubelet_and_proxy_serve_version():
    async def ok():
        return None
    apps = [kubelet_server.healthz_app({"ping": ok}),
            proxy_serving.health_app(lambda: True, lambda: True, lambda: None, lambda: 0.0)]
    for app in apps:
        runner = await proxy_serving.start(app, ("127.0.0.1", 0))
        try:
            answer = await get_json(f"http://127.0.0.1:{runner.addresses[0][1]}/version")
        finally:
            await runner.cleanup()
        assert answer == version_info() and answer["gitVersion"] == f"v{VERSION}"


async def test_dns_serves_version_on_its_health_port_only():
    servers = ProbeServers(("127.0.0.1", 0), ("127.0.0.1", 0), ("127.0.0.1", 0), CollectorRegistry(), list)
    await servers.start()
    try:
        assert await get_json(f"http://127.0.0.1:{servers.ports['health']}/version") == version_info()
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{servers.ports['ready']}/version") as answer:
            assert answer.status == 404
    finally:
        await servers.stop()
