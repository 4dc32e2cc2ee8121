"""The `kubernetes` Service's endpoints reconciler: API servers announce themselves with lease keys."""
from __future__ import annotations

import pytest

from kpy_components.api.catalog import default_registry
from kpy_components.apiserver.registry import bootstrap
from kpy_components.apiserver.registry.api import API
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio


@pytest.fixture
async def storage(tmp_path):
    storage = SqliteStorage(tmp_path / "db.sqlite")
    yield storage
    await storage.close()


async def start(storage, address: str) -> API:
    """What one API server's start does: default objects, then a first reconcile with a new reconciler."""
    api = API(default_registry(), storage, storage, "10.96.0.0/24")
    await bootstrap.create_defaults(api, 6443, [])
    await bootstrap.EndpointsReconciler(api, storage, address, 6443).reconcile()
    return api


async def endpoint_ips(api: API) -> list[str]:
    endpoints = await api.store("", "endpoints").get("default", "kubernetes")
    return [a["ip"] for subset in endpoints["subsets"] for a in subset["addresses"]]


async def test_a_restarted_server_takes_over_its_lease_at_once(storage):
    await start(storage, "10.0.0.1")
    (before,) = (await storage.list(bootstrap.LEASE_PREFIX)).items
    api = await start(storage, "10.0.0.1")  # the restart, while the previous run's lease key still lives
    (after,) = (await storage.list(bootstrap.LEASE_PREFIX)).items  # one key per server, renewed
    assert after["metadata"]["name"] == "10.0.0.1"
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert await endpoint_ips(api) == ["10.0.0.1"]


async def test_endpoints_list_every_server_with_a_live_lease(storage):
    await start(storage, "10.0.0.2")
    api = await start(storage, "10.0.0.1")
    assert await endpoint_ips(api) == ["10.0.0.1", "10.0.0.2"]
