"""What only the watch cache does, over a real SQLite storage: memory reads, the ring buffer's limits, slow
watchers, bookmarks, readiness (the shared behaviour is in the integration contract suite)."""
import asyncio

import pytest

from kpy_components.apiserver.storage.cache import CacheSettings, WatchCache, resource_prefix
from kpy_components.apiserver.storage.interface import Compacted, KeyNotFound, Unavailable
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio
PODS = "/registry/pods/"


@pytest.fixture
async def cache(tmp_path):
    opened = WatchCache(SqliteStorage(tmp_path / "db.sqlite"))
    yield opened
    await opened.close()


async def settings_cache(tmp_path, **settings) -> WatchCache:
    return WatchCache(SqliteStorage(tmp_path / "custom.sqlite"), CacheSettings(**settings))


def pod(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns"}}


async def caught_up(cache: WatchCache, prefix: str = PODS) -> None:
    """Wait until the cache has applied every write of the storage."""
    target = await cache.current_revision()
    async with asyncio.timeout(5):
        while cache.stats()[prefix]["revision"] < target:
            await asyncio.sleep(0.01)


async def take(stream, count: int) -> list:
    async with asyncio.timeout(5):
        return [await anext(stream) for _ in range(count)]


@pytest.mark.parametrize("key, prefix", [("/registry/pods/ns/a", PODS), (PODS, PODS),
                                         ("/registry/pods", None), ("/registry/", None), ("pods/x/y", None)])
def test_the_resource_prefix_of_a_key(key, prefix):
    assert resource_prefix(key) == prefix


async def test_revision_zero_reads_come_from_memory(cache):
    await cache.prime([PODS])
    for name in "cab":
        await cache.create(f"{PODS}ns/{name}", pod(name))
    await caught_up(cache)
    await cache.storage.close()  # from here on only memory can answer
    listed = await cache.list(PODS, revision=0)
    assert [item["metadata"]["name"] for item in listed.items] == ["a", "b", "c"]
    assert listed.keys == [f"{PODS}ns/a", f"{PODS}ns/b", f"{PODS}ns/c"]
    assert (await cache.get(f"{PODS}ns/a", 0))["metadata"]["name"] == "a"
    with pytest.raises(KeyNotFound):
        await cache.get(f"{PODS}ns/missing", 0)
    listed.items[0]["metadata"]["name"] = "changed by the caller"
    assert (await cache.list(PODS, revision=0)).items[0]["metadata"]["name"] == "a"  # callers get copies
    with pytest.raises(Unavailable):
        await cache.list(PODS)  # a consistent read goes to the (closed) storage


async def test_a_memory_page_continues_from_the_storage_at_the_same_revision(cache):
    for name in "abcde":
        await cache.create(f"{PODS}ns/{name}", pod(name))
    await caught_up(cache)
    first = await cache.list(PODS, revision=0, limit=2)
    assert first.remaining == 3
    await cache.create(f"{PODS}ns/bb", pod("bb"))
    rest = await cache.list(PODS, limit=10, continue_token=first.continue_token)
    assert [i["metadata"]["name"] for i in first.items + rest.items] == list("abcde")
    assert rest.revision == first.revision


async def test_readiness_follows_priming(cache):
    assert not cache.ready.is_set()
    await cache.prime([PODS, "/registry/nodes/"])
    assert cache.ready.is_set()
    assert set(cache.stats()) == {PODS, "/registry/nodes/"}


async def test_events_older_than_the_buffer_are_compacted(tmp_path):
    cache = await settings_cache(tmp_path, capacity=3, min_age=0.001)
    try:
        start = await cache.current_revision()
        await cache.prime([PODS])
        for index in range(8):
            await cache.create(f"{PODS}ns/p{index}", pod(f"p{index}"))
        await caught_up(cache)
        await asyncio.sleep(0.01)
        await cache.create(f"{PODS}ns/last", pod("last"))  # evicts what is older than min_age beyond capacity
        await caught_up(cache)
        assert cache.stats()[PODS]["events"] == 3
        with pytest.raises(Compacted, match="is compacted"):
            await anext(cache.watch(PODS, start))
        latest = await cache.current_revision()
        stream = cache.watch(PODS, latest - 3)
        assert [e.object["metadata"]["name"] for e in await take(stream, 3)] == ["p6", "p7", "last"]
        await stream.aclose()
    finally:
        await cache.close()


async def test_young_events_stay_beyond_the_capacity(tmp_path):
    cache = await settings_cache(tmp_path, capacity=3, min_age=60)
    try:
        await cache.prime([PODS])
        start = await cache.current_revision()
        for index in range(10):
            await cache.create(f"{PODS}ns/p{index}", pod(f"p{index}"))
        stream = cache.watch(PODS, start)
        assert [e.object["metadata"]["name"] for e in await take(stream, 10)] == [f"p{i}" for i in range(10)]
        await stream.aclose()
    finally:
        await cache.close()


async def test_a_slow_watcher_is_ended_without_holding_back_the_others(tmp_path):
    cache = await settings_cache(tmp_path, watcher_backlog=5)
    try:
        await cache.prime([PODS])
        start = await cache.current_revision()
        slow, fast = cache.watch(PODS, start), cache.watch(PODS, start)
        first_slow = asyncio.ensure_future(anext(slow))  # then nobody reads it while the writes go on
        reading = asyncio.ensure_future(take(fast, 20))
        await asyncio.sleep(0)  # both are registered
        for index in range(20):
            await cache.create(f"{PODS}ns/p{index}", pod(f"p{index}"))
        fast_events = await reading
        assert [e.object["metadata"]["name"] for e in fast_events] == [f"p{i}" for i in range(20)]
        slow_events = [await first_slow]
        async with asyncio.timeout(5):
            slow_events += [event async for event in slow]  # ends by itself
        assert len(slow_events) < 20
        assert [e.revision for e in slow_events] == sorted(e.revision for e in slow_events)
        # It resumes from the last revision it saw, from the buffer.
        resumed = cache.watch(PODS, slow_events[-1].revision)
        assert len(await take(resumed, 20 - len(slow_events))) == 20 - len(slow_events)
        await resumed.aclose()
        await fast.aclose()
    finally:
        await cache.close()


async def test_one_write_reaches_a_hundred_watchers(cache):
    await cache.prime([PODS])
    start = await cache.current_revision()
    streams = [cache.watch(f"{PODS}ns/", start) for _ in range(100)]
    pending = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await asyncio.sleep(0)
    created = await cache.create(f"{PODS}ns/a", pod("a"))
    async with asyncio.timeout(5):
        events = await asyncio.gather(*pending)
    assert {event.revision for event in events} == {int(created["metadata"]["resourceVersion"])}
    assert cache.stats()[PODS]["watchers"] == 100
    for stream in streams:
        await stream.aclose()
    assert cache.stats()[PODS]["watchers"] == 0


async def test_watchers_that_ask_get_bookmarks_when_quiet(tmp_path):
    cache = await settings_cache(tmp_path, bookmark_interval=0.05)
    try:
        await cache.create(f"{PODS}ns/a", pod("a"))
        await cache.create("/registry/pods/other/b", pod("b"))
        revision = await cache.current_revision()
        with_bookmarks = cache.watch(f"{PODS}ns/", revision - 2, bookmarks=True)
        added, bookmark = await take(with_bookmarks, 2)
        assert added.type == "ADDED"
        assert (bookmark.type, bookmark.revision, bookmark.object) == (
            "BOOKMARK", revision, {"metadata": {"resourceVersion": str(revision)}})
        await with_bookmarks.aclose()
        without = cache.watch(f"{PODS}ns/", revision)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await anext(without)
        await without.aclose()
    finally:
        await cache.close()


async def test_keys_outside_a_resource_prefix_bypass_the_cache(cache):
    await cache.create("/registry/x", {"metadata": {"name": "x"}})
    assert (await cache.get("/registry/x", 0))["metadata"]["name"] == "x"
    assert [i["metadata"]["name"] for i in (await cache.list("/registry/", revision=0)).items] == ["x"]
    assert cache.stats() == {}


def test_settings_are_checked():
    with pytest.raises(ValueError, match="watcher_backlog must be at least 1, not 0"):
        CacheSettings(watcher_backlog=0)
    with pytest.raises(ValueError, match="min_age must be positive"):
        CacheSettings(min_age=0)
