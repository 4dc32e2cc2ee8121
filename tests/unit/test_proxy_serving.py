"""kpy-proxy's plain-HTTP endpoints on loopback: /healthz and /livez as upstream answers them, /metrics."""
import json

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from kpy_components.proxy import serving
from kpy_components.proxy.metrics import ProxyMetrics

pytestmark = pytest.mark.anyio


@pytest.fixture
async def started():
    runners = []

    async def start(app):
        runner = await serving.start(app, ("127.0.0.1", 0))
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield start
    for runner in runners:
        await runner.cleanup()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), await answer.text()


async def test_health_answers_upstreams_json_and_follows_sync_and_node_state(started):
    state = {"healthy": False, "eligible": True, "last": None}
    base = await started(serving.health_app(lambda: state["healthy"], lambda: state["eligible"],
                                            lambda: state["last"], lambda: 1_700_000_000.25))
    status, content_type, text = await get(f"{base}/healthz")
    assert status == 503 and content_type.startswith("application/json")
    assert json.loads(text) == {"lastUpdated": "0001-01-01 00:00:00 +0000 UTC",
                                "currentTime": "2023-11-14 22:13:20.250 +0000 UTC", "nodeEligible": True}
    state.update(healthy=True, last=1_700_000_000.0)
    status, _, text = await get(f"{base}/healthz")
    assert status == 200 and json.loads(text)["lastUpdated"] == "2023-11-14 22:13:20.000 +0000 UTC"
    state["eligible"] = False  # the Node is being deleted: load balancers should stop sending here
    status, _, text = await get(f"{base}/healthz")
    assert status == 503 and json.loads(text)["nodeEligible"] is False
    status, _, text = await get(f"{base}/livez")  # liveness ignores the Node
    assert status == 200 and "nodeEligible" not in json.loads(text)
    state["healthy"] = False
    assert (await get(f"{base}/livez"))[0] == 503


async def test_metrics_serve_the_proxy_metrics(started):
    registry = CollectorRegistry()
    metrics = ProxyMetrics(registry)
    metrics.sync_duration.observe(0.003)
    metrics.objects.labels("rule").set(42)
    base = await started(serving.metrics_app(registry))
    status, content_type, text = await get(f"{base}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert "kubeproxy_sync_proxy_rules_duration_seconds_count 1.0" in text
    assert 'kubeproxy_sync_proxy_rules_nftables_total{kind="rule"} 42.0' in text
    assert (await get(f"{base}/proxyMode"))[2] == "nftables"
    assert (await get(f"{base}/healthz"))[2] == "ok"
