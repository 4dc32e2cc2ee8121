"""The API server's compactor: history older than one interval goes, the latest interval stays readable."""
import asyncio

import pytest

from kpy_components.apiserver.compactor import run_compactor
from kpy_components.apiserver.storage.interface import Compacted
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio


async def test_each_interval_compacts_to_the_revision_seen_one_interval_before(tmp_path):
    storage = SqliteStorage(tmp_path / "db.sqlite")
    created = await storage.create("/registry/configmaps/ns/a", {"metadata": {"name": "a"}, "n": 0})
    first = int(created["metadata"]["resourceVersion"])
    compactor = asyncio.create_task(run_compactor(storage, 0.2))
    try:
        await asyncio.sleep(0.05)  # the first round noted the revision `first`, and compacted nothing
        await storage.list("/registry/configmaps/", revision=first)
        await storage.guaranteed_update("/registry/configmaps/ns/a", lambda o: {**o, "n": 1})
        second = await storage.current_revision()
        async with asyncio.timeout(5):
            while True:  # the next round compacts to `first`
                try:
                    await storage.list("/registry/configmaps/", revision=first - 1)
                except Compacted:
                    break
                await asyncio.sleep(0.02)
        assert (await storage.list("/registry/configmaps/", revision=first)).items[0]["n"] == 0
        assert (await storage.list("/registry/configmaps/", revision=second)).items[0]["n"] == 1
    finally:
        compactor.cancel()
        await storage.close()
