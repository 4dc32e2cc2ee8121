"""The one storage contract suite: every backend (SQLite, real etcd over mutual TLS) and the watch cache in front of
each must behave the same. Each test works under a resource prefix of its own, so one etcd serves the session."""
from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpy_components.apiserver.encryption import EncryptionTransformer, parse_config
from kpy_components.apiserver.storage.cache import WatchCache
from kpy_components.apiserver.storage.etcd import EtcdStorage
from kpy_components.apiserver.storage.interface import (
    Compacted,
    Conflict,
    Event,
    FutureRevision,
    InvalidContinueToken,
    KeyExists,
    KeyNotFound,
    Preconditions,
    Storage,
)
from kpy_components.apiserver.storage.sqlite import SqliteStorage
from kpy_components.etcd import AsyncEtcdClient

BACKENDS = ["sqlite", "etcd", "cache+sqlite", "cache+etcd"]
EVENT_TIMEOUT = 5.0  # seconds to wait for an expected watch event
_unique = itertools.count()


# Secrets encrypted at rest with AES-GCM, as an EncryptionConfiguration file would say. One fixed key for the
# session: the cache in front of etcd lists every secret stored in the shared etcd.
ENCRYPTION = EncryptionTransformer(parse_config({
    "apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
    "resources": [{"resources": ["secrets"], "providers": [
        {"aesgcm": {"keys": [{"name": "key1", "secret": base64.b64encode(b"k" * 32).decode()}]}},
        {"identity": {}}]}]}))


@dataclass
class Backend:
    storage: Storage
    raw: Callable[[str], bytes]  # the bytes at rest of a key's latest value, read past the storage


@asynccontextmanager
async def open_backend(kind: str, etcd_cluster, directory: Path, transformer=None) -> AsyncIterator[Backend]:
    if kind.endswith("sqlite"):
        path = directory / f"db{next(_unique)}.sqlite"
        storage = SqliteStorage(path, transformer)

        def raw(key: str) -> bytes:
            with sqlite3.connect(path) as db:
                return db.execute("SELECT value FROM revisions WHERE key = ? ORDER BY revision DESC LIMIT 1",
                                  (key,)).fetchone()[0]
    else:
        storage = EtcdStorage(AsyncEtcdClient(etcd_cluster.endpoints, etcd_cluster.tls), transformer)

        def raw(key: str) -> bytes:
            with etcd_cluster.client() as client:
                return client.get(key).value
    if kind.startswith("cache+"):
        storage = WatchCache(storage)
    try:
        yield Backend(storage, raw)
    finally:
        await storage.close()


@pytest.fixture(params=BACKENDS)
def backend_kind(request) -> str:
    return request.param


@pytest.fixture
def etcd_cluster(request, backend_kind):
    """The session's 1-member TLS etcd, started only when an etcd-backed variant runs."""
    return request.getfixturevalue("etcd1") if "etcd" in backend_kind else None


@pytest.fixture
async def backend(backend_kind, etcd_cluster, tmp_path) -> AsyncIterator[Backend]:
    async with open_backend(backend_kind, etcd_cluster, tmp_path) as opened:
        yield opened


@pytest.fixture
async def store(backend) -> Storage:
    return backend.storage


class Keys:
    """Keys under a resource prefix unique to one test: /registry/<resource>/<namespace>/<name>."""

    def __init__(self) -> None:
        self.resource = f"/registry/things{next(_unique)}x{id(self)}/"

    def __call__(self, name: str, namespace: str = "ns1") -> str:
        return f"{self.resource}{namespace}/{name}"

    def ns(self, namespace: str) -> str:
        return f"{self.resource}{namespace}/"


@pytest.fixture
def keys() -> Keys:
    return Keys()


def obj(name: str, **fields) -> dict:
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, **fields}


def rv(stored: dict) -> int:
    return int(stored["metadata"]["resourceVersion"])


async def next_events(stream: AsyncIterator[Event], count: int) -> list[Event]:
    async def take() -> list[Event]:
        return [await anext(stream) for _ in range(count)]

    return await asyncio.wait_for(take(), EVENT_TIMEOUT)


pytestmark = pytest.mark.anyio


async def test_create_returns_the_object_with_a_new_resource_version(store, keys):
    before = await store.current_revision()
    created = await store.create(keys("a"), obj("a", data={"x": "1"}))
    assert rv(created) > before
    assert created == {**obj("a", data={"x": "1"}), "metadata": {**obj("a")["metadata"],
                                                                  "resourceVersion": str(rv(created))}}
    assert await store.get(keys("a")) == created
    assert await store.current_revision() == rv(created)


async def test_resource_version_sent_by_the_caller_is_ignored(store, keys):
    created = await store.create(keys("a"), {"metadata": {"name": "a", "resourceVersion": "999999"}})
    assert rv(created) == await store.current_revision()


async def test_create_on_a_taken_key_raises_key_exists(store, keys):
    await store.create(keys("a"), obj("a"))
    with pytest.raises(KeyExists):
        await store.create(keys("a"), obj("a", spec=2))
    assert "spec" not in await store.get(keys("a"))


async def test_get_of_a_missing_key_raises_key_not_found(store, keys):
    with pytest.raises(KeyNotFound):
        await store.get(keys("missing"))


async def test_list_returns_keys_in_order_under_the_prefix_only(store, keys):
    for name in ("c", "a", "b"):
        await store.create(keys(name), obj(name))
    await store.create(keys("a", namespace="ns2"), obj("a"))
    await store.create(keys("a", namespace="ns1x"), obj("a"))  # shares the string prefix "ns1", not "ns1/"
    listed = await store.list(keys.ns("ns1"))
    assert [item["metadata"]["name"] for item in listed.items] == ["a", "b", "c"]
    assert listed.revision == await store.current_revision()
    assert listed.continue_token is None
    everything = await store.list(keys.resource)
    assert len(everything.items) == 5


async def test_pages_stay_at_the_first_page_revision(store, keys):
    names = ["a", "b", "c", "d", "e"]
    for name in names:
        await store.create(keys(name), obj(name))
    first = await store.list(keys.ns("ns1"), limit=2)
    assert [i["metadata"]["name"] for i in first.items] == ["a", "b"]
    assert first.remaining == 3 and first.continue_token
    # Writes between pages: a new key sorting into the next page, a change and a deletion of later keys.
    await store.create(keys("bb"), obj("bb"))
    await store.guaranteed_update(keys("c"), lambda o: {**o, "spec": "changed"})
    await store.delete(keys("d"))
    second = await store.list(keys.ns("ns1"), limit=2, continue_token=first.continue_token)
    third = await store.list(keys.ns("ns1"), limit=2, continue_token=second.continue_token)
    assert [i["metadata"]["name"] for i in second.items + third.items] == ["c", "d", "e"]
    assert "spec" not in second.items[0]
    assert second.revision == third.revision == first.revision
    assert second.remaining == 1 and third.continue_token is None
    latest = await store.list(keys.ns("ns1"))
    assert [i["metadata"]["name"] for i in latest.items] == ["a", "b", "bb", "c", "e"]


async def test_list_at_an_older_revision_shows_the_state_then(store, keys):
    first = await store.create(keys("a"), obj("a", spec=1))
    await store.guaranteed_update(keys("a"), lambda o: {**o, "spec": 2})
    await store.create(keys("b"), obj("b"))
    then = await store.list(keys.ns("ns1"), revision=rv(first))
    assert then.items == [first] and then.revision == rv(first)


async def test_list_at_a_future_revision_raises_saying_how_far_the_store_is(store, keys):
    current = await store.current_revision()
    with pytest.raises(FutureRevision) as raised:
        await store.list(keys.ns("ns1"), revision=current + 1000)
    assert (raised.value.requested, raised.value.current) == (current + 1000, current)


async def test_a_forged_continue_token_is_refused(store, keys):
    with pytest.raises(InvalidContinueToken):
        await store.list(keys.ns("ns1"), limit=1, continue_token="not-a-token")


async def test_guaranteed_update_loses_no_update_under_concurrent_writers(store, keys):
    await store.create(keys("counter"), obj("counter", count=0))

    def increment(current: dict) -> dict:
        return {**current, "count": current["count"] + 1}

    async def writer() -> list[int]:
        return [rv(await store.guaranteed_update(keys("counter"), increment)) for _ in range(5)]

    revisions = await asyncio.gather(*(writer() for _ in range(6)))
    final = await store.get(keys("counter"))
    assert final["count"] == 30
    assert len(set(itertools.chain(*revisions))) == 30  # every increment was its own write


async def test_async_update_functions_are_awaited(store, keys):
    await store.create(keys("a"), obj("a", count=1))

    async def double(current: dict) -> dict:
        await asyncio.sleep(0)
        return {**current, "count": current["count"] * 2}

    assert (await store.guaranteed_update(keys("a"), double))["count"] == 2


async def test_preconditions_guard_updates(store, keys):
    created = await store.create(keys("a"), obj("a", spec=1))
    for stale in (Preconditions(uid="other-uid"), Preconditions(resource_version=str(rv(created) - 1))):
        with pytest.raises(Conflict, match="Precondition failed"):
            await store.guaranteed_update(keys("a"), lambda o: {**o, "spec": 2}, preconditions=stale)
    assert (await store.get(keys("a")))["spec"] == 1
    updated = await store.guaranteed_update(keys("a"), lambda o: {**o, "spec": 2}, preconditions=Preconditions(
        uid="uid-a", resource_version=str(rv(created))))
    assert updated["spec"] == 2 and rv(updated) > rv(created)


async def test_an_update_that_changes_nothing_writes_nothing(store, keys):
    created = await store.create(keys("a"), obj("a", spec=1))
    unchanged = await store.guaranteed_update(keys("a"), lambda o: o)
    assert unchanged == created
    assert await store.current_revision() == rv(created)


async def test_an_update_function_error_aborts_the_update(store, keys):
    await store.create(keys("a"), obj("a", spec=1))

    def refuse(current: dict) -> dict:
        raise ValueError("spec.replicas: must be >= 0")

    with pytest.raises(ValueError, match="spec.replicas"):
        await store.guaranteed_update(keys("a"), refuse)
    assert (await store.get(keys("a")))["spec"] == 1


async def test_update_of_a_missing_key(store, keys):
    with pytest.raises(KeyNotFound):
        await store.guaranteed_update(keys("a"), lambda o: o)
    created = await store.guaranteed_update(keys("a"), lambda o: {**o, **obj("a")}, ignore_not_found=True)
    assert await store.get(keys("a")) == created


async def test_a_stale_suggestion_costs_a_retry_never_a_wrong_result(store, keys):
    created = await store.create(keys("a"), obj("a", count=1))

    def stale() -> dict:  # the caller's copy (a watch cache's, say) from before the next write
        return copy.deepcopy(created)

    await store.guaranteed_update(keys("a"), lambda o: {**o, "count": 2})
    updated = await store.guaranteed_update(keys("a"), lambda o: {**o, "count": o["count"] + 10},
                                            suggestion=stale())
    assert updated["count"] == 12

    def needs_twelve(current: dict) -> dict:
        if current["count"] != 12:
            raise ValueError(f"count is {current['count']}")
        return {**current, "checked": True}

    checked = await store.guaranteed_update(keys("a"), needs_twelve, suggestion=stale(),
                                            preconditions=Preconditions(resource_version=str(rv(updated))))
    assert checked["checked"] and rv(checked) > rv(updated)
    back_to_one = await store.guaranteed_update(keys("a"), lambda o: {**o, "count": 1}, suggestion=stale())
    assert back_to_one["count"] == 1 and (await store.get(keys("a")))["count"] == 1  # no no-op on the stale copy


async def test_an_update_from_a_suggestion_keeps_the_keys_expiry(store, keys):
    created = await store.create(keys("event"), obj("event", count=1), ttl=1)
    await store.create(keys("kept"), obj("kept"))
    await store.guaranteed_update(keys("event"), lambda o: {**o, "count": 2}, suggestion=created)
    async with asyncio.timeout(EVENT_TIMEOUT):
        while [i["metadata"]["name"] for i in (await store.list(keys.ns("ns1"))).items] != ["kept"]:
            await asyncio.sleep(0.1)


async def test_delete_returns_the_last_state_and_honours_preconditions(store, keys):
    created = await store.create(keys("a"), obj("a", spec=1))
    with pytest.raises(Conflict):
        await store.delete(keys("a"), preconditions=Preconditions(uid="other-uid"))
    with pytest.raises(Conflict):
        await store.delete(keys("a"), preconditions=Preconditions(resource_version="1"))
    assert await store.delete(keys("a"), preconditions=Preconditions(uid="uid-a")) == created
    with pytest.raises(KeyNotFound):
        await store.get(keys("a"))
    with pytest.raises(KeyNotFound):
        await store.delete(keys("a"))
    assert await store.current_revision() > rv(created)


async def test_a_key_created_with_a_ttl_expires_and_updates_keep_it(store, keys):
    await store.create(keys("event"), obj("event", count=1), ttl=1)
    await store.create(keys("kept"), obj("kept"))
    await store.guaranteed_update(keys("event"), lambda o: {**o, "count": 2})
    assert (await store.get(keys("event")))["count"] == 2
    async with asyncio.timeout(EVENT_TIMEOUT):
        while [i["metadata"]["name"] for i in (await store.list(keys.ns("ns1"))).items] != ["kept"]:
            await asyncio.sleep(0.1)


async def test_an_update_with_a_ttl_gives_the_key_a_new_expiry(store, keys):
    await store.create(keys("kept"), obj("kept"))
    await store.create(keys("lease"), obj("lease", renewed=0))
    await store.guaranteed_update(keys("lease"), lambda o: {**o, "renewed": 1}, ttl=1)
    await store.guaranteed_update(keys("new"), lambda o: obj("new"), ignore_not_found=True, ttl=1)
    async with asyncio.timeout(EVENT_TIMEOUT):
        while [i["metadata"]["name"] for i in (await store.list(keys.ns("ns1"))).items] != ["kept"]:
            await asyncio.sleep(0.1)


async def test_watch_from_a_revision_replays_then_follows_in_order(store, keys):
    await store.create(keys("before"), obj("before"))
    start = await store.current_revision()
    added = await store.create(keys("a"), obj("a", spec=1))
    await store.create(keys("a", namespace="ns2"), obj("a"))  # another namespace: not watched
    modified = await store.guaranteed_update(keys("a"), lambda o: {**o, "spec": 2})
    await store.delete(keys("a"))
    stream = store.watch(keys.ns("ns1"), start)
    try:
        replayed = await next_events(stream, 3)
        live_created = await store.create(keys("b"), obj("b"))
        (live,) = await next_events(stream, 1)
    finally:
        await stream.aclose()
    assert [(e.type, e.object["metadata"]["name"]) for e in replayed] == [("ADDED", "a"), ("MODIFIED", "a"),
                                                                        ("DELETED", "a")]
    assert [e.revision for e in replayed] == sorted(e.revision for e in replayed)
    assert replayed[0].object == added and replayed[0].previous is None
    assert replayed[1].object == modified and replayed[1].previous == added
    deleted = replayed[2]
    assert deleted.previous == modified and deleted.object["spec"] == 2 and rv(deleted.object) == deleted.revision
    assert (live.type, live.object, live.revision) == ("ADDED", live_created, rv(live_created))


async def test_watch_from_a_compacted_revision_raises_compacted(store, keys):
    start = await store.current_revision()
    await store.create(keys("a"), obj("a", spec=1))
    for spec in (2, 3):
        await store.guaranteed_update(keys("a"), lambda o, spec=spec: {**o, "spec": spec})
    latest = await store.current_revision()
    # Every backend has delivered the writes before the compaction: a watch cache that still lagged behind would
    # be compacted under its own storage watch, re-list and (as documented) end its watchers.
    caught_up = store.watch(keys.ns("ns1"), start)
    try:
        assert [event.type for event in await next_events(caught_up, 3)] == ["ADDED", "MODIFIED", "MODIFIED"]
    finally:
        await caught_up.aclose()
    await store.compact(latest)
    with pytest.raises(Compacted):
        await anext(store.watch(keys.ns("ns1"), start - 1))
    with pytest.raises(Compacted):
        await store.list(keys.ns("ns1"), revision=start)
    assert (await store.list(keys.ns("ns1"), revision=latest)).items[0]["spec"] == 3
    stream = store.watch(keys.ns("ns1"), latest)  # the newest revision is still watchable
    try:
        await store.delete(keys("a"))
        (event,) = await next_events(stream, 1)
        assert event.type == "DELETED"
    finally:
        await stream.aclose()


async def test_secrets_are_encrypted_at_rest(backend_kind, etcd_cluster, tmp_path):
    async with open_backend(backend_kind, etcd_cluster, tmp_path, ENCRYPTION) as backend:
        key = f"/registry/secrets/ns{next(_unique)}x{id(backend)}/s"
        secret = obj("s", data={"password": "hunter2-plaintext"})
        created = await backend.storage.create(key, secret)
        at_rest = backend.raw(key)
        assert at_rest.startswith(b"k8s:enc:aesgcm:v1:key1:") and b"hunter2-plaintext" not in at_rest
        assert await backend.storage.get(key) == created
        assert (await backend.storage.list(key.rsplit("/", 1)[0] + "/")).items == [created]


# --- property: revisions only increase, and a read sees the last write ----------------------------------------

operations = st.lists(st.tuples(st.sampled_from(["create", "update", "delete"]), st.sampled_from("abc")),
                      min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_revisions_increase_and_reads_see_the_last_write(backend_kind, etcd_cluster, ops):
    # Each example runs on a fresh storage in its own loop and directory, so sharing the fixtures is safe.
    async def scenario() -> None:
        keys, model, last = Keys(), {}, 0
        with tempfile.TemporaryDirectory() as directory:
            async with open_backend(backend_kind, etcd_cluster, Path(directory)) as backend:
                store = backend.storage
                for step, (op, name) in enumerate(ops):
                    try:
                        if op == "create":
                            stored = await store.create(keys(name), obj(name, step=step))
                        elif op == "update":
                            stored = await store.guaranteed_update(keys(name), lambda o: {**o, "step": step})
                        else:
                            await store.delete(keys(name))
                            stored = None
                    except (KeyExists, KeyNotFound) as error:
                        assert isinstance(error, KeyExists) == (name in model), (op, name, model)
                        continue
                    assert (name in model) == (op != "create")
                    revision = await store.current_revision()
                    assert revision > last
                    last = revision
                    if stored is None:
                        del model[name]
                        with pytest.raises(KeyNotFound):
                            await store.get(keys(name))
                    else:
                        assert rv(stored) == revision
                        model[name] = stored
                        assert await store.get(keys(name)) == stored
                listed = await store.list(keys.ns("ns1"))
                assert listed.items == [model[name] for name in sorted(model)]

    asyncio.run(scenario())
