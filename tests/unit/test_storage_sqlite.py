"""What only the SQLite backend has: a file that survives restarts, TTLs, compaction of rows, and watches that
catch up from history when they fall behind (the shared behaviour is in the integration contract suite)."""
import asyncio
import sqlite3

import pytest

from kpy_components.apiserver.storage import sqlite as sqlite_module
from kpy_components.apiserver.storage.interface import Compacted, Unavailable
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path):
    storage = SqliteStorage(tmp_path / "db.sqlite", ttl_sweep_interval=0.05)
    yield storage
    await storage.close()


async def test_data_and_revisions_survive_a_restart(tmp_path):
    first = SqliteStorage(tmp_path / "db.sqlite")
    created = await first.create("/registry/pods/ns/a", {"metadata": {"name": "a"}})
    await first.delete("/registry/pods/ns/a")
    await first.create("/registry/pods/ns/b", {"metadata": {"name": "b"}})
    revision = await first.current_revision()
    await first.close()
    second = SqliteStorage(tmp_path / "db.sqlite")
    try:
        assert await second.current_revision() == revision
        assert [i["metadata"]["name"] for i in (await second.list("/registry/pods/")).items] == ["b"]
        assert (await second.list("/registry/pods/", revision=int(created["metadata"]["resourceVersion"]))).items \
            == [created]
        assert sqlite3.connect(tmp_path / "db.sqlite").execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await second.close()


async def test_a_key_with_a_ttl_is_deleted_when_it_expires_with_a_deleted_event(store):
    start = await store.current_revision()
    await store.create("/registry/events/ns/e", {"metadata": {"name": "e"}}, ttl=1)
    await store.create("/registry/events/ns/kept", {"metadata": {"name": "kept"}})
    stream = store.watch("/registry/events/", start)
    try:
        events = await asyncio.wait_for(_take(stream, 3), 5)
    finally:
        await stream.aclose()
    assert [(e.type, e.key) for e in events] == [("ADDED", "/registry/events/ns/e"),
                                                 ("ADDED", "/registry/events/ns/kept"),
                                                 ("DELETED", "/registry/events/ns/e")]
    assert [i["metadata"]["name"] for i in (await store.list("/registry/events/")).items] == ["kept"]


async def test_an_update_keeps_the_expiry_of_the_key(store):
    await store.create("/registry/events/ns/e", {"metadata": {"name": "e"}, "count": 1}, ttl=1)
    await store.guaranteed_update("/registry/events/ns/e", lambda o: {**o, "count": 2})
    deadline = asyncio.get_running_loop().time() + 5
    while (await store.list("/registry/events/")).items:
        assert asyncio.get_running_loop().time() < deadline, "the updated key never expired"
        await asyncio.sleep(0.05)


async def test_a_watch_that_falls_behind_catches_up_from_history(tmp_path):
    store = SqliteStorage(tmp_path / "db.sqlite", watch_backlog=2)
    try:
        start = await store.current_revision()
        stream = store.watch("/registry/pods/", start)
        first = asyncio.ensure_future(anext(stream))
        await store.create("/registry/pods/ns/p0", {"metadata": {"name": "p0"}})
        await asyncio.wait_for(first, 5)
        for index in range(1, 40):  # nobody reads: the live backlog overflows
            await store.create(f"/registry/pods/ns/p{index}", {"metadata": {"name": f"p{index}"}})
        rest = await asyncio.wait_for(_take(stream, 39), 5)
        await stream.aclose()
    finally:
        await store.close()
    assert [e.object["metadata"]["name"] for e in [first.result(), *rest]] == [f"p{i}" for i in range(40)]
    assert [e.revision for e in rest] == list(range(start + 2, start + 41))


async def test_compaction_removes_old_rows_but_keeps_the_state_at_the_revision(store, tmp_path):
    await store.create("/registry/pods/ns/a", {"metadata": {"name": "a"}, "n": 0})
    for n in range(1, 10):
        await store.guaranteed_update("/registry/pods/ns/a", lambda o, n=n: {**o, "n": n})
    await store.create("/registry/pods/ns/gone", {"metadata": {"name": "gone"}})
    await store.delete("/registry/pods/ns/gone")
    revision = await store.current_revision()
    await store.compact(revision)
    rows = sqlite3.connect(tmp_path / "db.sqlite").execute("SELECT key FROM revisions").fetchall()
    assert rows == [("/registry/pods/ns/a",), ("/registry/pods/ns/gone",)]  # the last update, the deletion at R
    assert (await store.list("/registry/pods/", revision=revision)).items[0]["n"] == 9
    await store.compact(revision - 5)  # older than the last compaction: nothing to do
    assert (await store.get("/registry/pods/ns/a"))["n"] == 9


async def test_compaction_in_small_batches_leaves_what_one_big_delete_would(tmp_path, monkeypatch):
    async def history(storage: SqliteStorage) -> int:
        for n in range(12):
            key = f"/registry/pods/ns/p{n % 4}"
            if n < 4:
                await storage.create(key, {"metadata": {"name": f"p{n}"}, "n": n})
            elif n % 3 == 0:
                await storage.delete(key)
                await storage.create(key, {"metadata": {"name": key[-2:]}, "n": n})
            else:
                await storage.guaranteed_update(key, lambda o, n=n: {**o, "n": n})
        await storage.delete("/registry/pods/ns/p1")  # a deletion before the compaction revision
        await storage.guaranteed_update("/registry/pods/ns/p3", lambda o: {**o, "n": 98})
        middle = await storage.current_revision()
        await storage.guaranteed_update("/registry/pods/ns/p2", lambda o: {**o, "n": 99})
        return middle

    seen_between_batches = []  # what a list at the compacted revision shows after each batch

    def pruning(self, low, high, revision):
        prune(self, low, high, revision)
        seen_between_batches.append(self._db_list("/registry/pods/", revision, "/registry/pods/", 0).items)

    prune = SqliteStorage._db_prune
    monkeypatch.setattr(SqliteStorage, "_db_prune", pruning)
    results = []
    for batch in (1_000_000, 2):
        monkeypatch.setattr(sqlite_module, "COMPACT_BATCH", batch)
        storage = SqliteStorage(tmp_path / f"{batch}.sqlite")
        try:
            middle = await history(storage)
            before = (await storage.list("/registry/pods/", revision=middle)).items
            seen_between_batches.clear()
            await storage.compact(middle)
            after = (await storage.list("/registry/pods/", revision=middle)).items
            assert after == before and "p1" not in [i["metadata"]["name"] for i in after]
            assert len(seen_between_batches) == 1 if batch > middle else len(seen_between_batches) > 3
            assert all(seen == before for seen in seen_between_batches)
            with pytest.raises(Compacted):
                await storage.list("/registry/pods/", revision=middle - 1)
            results.append(sqlite3.connect(tmp_path / f"{batch}.sqlite").execute(
                "SELECT revision, key FROM revisions ORDER BY revision").fetchall())
        finally:
            await storage.close()
    assert results[0] == results[1] and len(results[0]) < 20


async def test_a_database_that_cannot_be_opened_is_unavailable_naming_the_file(tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(Unavailable, match="dir.sqlite"):
        SqliteStorage(tmp_path / "dir.sqlite")


def test_an_unknown_synchronous_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="synchronous must be OFF, NORMAL, FULL or EXTRA, not 'sometimes'"):
        SqliteStorage(tmp_path / "db.sqlite", synchronous="sometimes")


async def test_a_closed_storage_refuses_work(tmp_path):
    store = SqliteStorage(tmp_path / "db.sqlite")
    await store.close()
    with pytest.raises(Unavailable, match="closed"):
        await store.get("/registry/pods/ns/a")


async def _take(stream, count):
    return [await anext(stream) for _ in range(count)]
