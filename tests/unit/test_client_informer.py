"""Informers against the in-process fake API: list then watch from the list's resourceVersion, resume after
disconnects (bookmarks included), re-list on 410 (as an ERROR event or an HTTP answer) with a reconcile that reports
what the gap hid, paging, handler isolation, and the shared factory."""
from __future__ import annotations

import asyncio

import pytest

from kpy_components.client.backoff import Backoff
from kpy_components.client.cache import field_index
from kpy_components.client.informer import Informer, SharedInformerFactory
from test_client_fake_api import Fault, configmap, eventually, fake_api  # noqa: F401

pytestmark = pytest.mark.anyio


class Recorder:
    """Handlers that write down what they were told."""

    def __init__(self):
        self.seen: list[tuple] = []

    def handlers(self) -> dict:
        return {"on_add": lambda obj: self.seen.append(("add", _name(obj), _data(obj))),
                "on_update": lambda old, new: self.seen.append(("update", _name(new), _data(old), _data(new))),
                "on_delete": lambda obj: self.seen.append(("delete", _name(obj)))}


def _name(obj):
    return obj["metadata"]["name"]


def _data(obj):
    return obj.get("data") or {}


@pytest.fixture
async def client(fake_api):
    async with fake_api.client() as client:
        yield client


def informer_for(client, **options) -> Informer:
    options.setdefault("backoff", Backoff(base=0.01, cap=0.05))
    return Informer(client, client.resource("configmaps"), "default", **options)


@pytest.fixture
async def running(client):
    """Start informers made with `informer_for`, stop them at the end."""
    started = []

    def start(informer: Informer) -> Informer:
        informer.start()
        started.append(informer)
        return informer
    yield start
    for informer in started:
        await informer.stop()


@pytest.fixture
def watching(fake_api, client, running):
    """An informer with a Recorder, started, synced and watching."""
    async def make(**options) -> tuple[Informer, Recorder]:
        recorder, informer = Recorder(), informer_for(client, **options)
        informer.add_handler(**recorder.handlers())
        watches = len(fake_api.watch_requests())
        running(informer)
        assert await informer.wait_for_sync(timeout=5)
        await eventually(lambda: len(fake_api.watch_requests()) > watches)
        return informer, recorder
    return make


async def test_lists_then_watches_from_the_lists_resource_version(fake_api, client, running):
    fake_api.put(configmap("a", v="1"))
    recorder = Recorder()
    informer = informer_for(client)
    informer.add_handler(**recorder.handlers())
    assert not informer.has_synced
    running(informer)
    assert await informer.wait_for_sync(timeout=5)
    assert recorder.seen == [("add", "a", {"v": "1"})]
    assert informer.store.get("default/a")["kind"] == "ConfigMap"  # lists omit kind; the cache has it
    watch = (await eventually(fake_api.watch_requests))[0]
    assert watch["resourceVersion"] == informer.resource_version == str(fake_api.revision)  # the list's
    assert watch["allowWatchBookmarks"] == "true" and 300 <= int(watch["timeoutSeconds"]) <= 600


async def test_watch_events_reach_the_handlers_and_the_store(fake_api, watching):
    informer, recorder = await watching(indexers={"owner": field_index("data.owner")})
    fake_api.put(configmap("a", owner="x"))
    fake_api.put(configmap("a", owner="y"))
    fake_api.remove("a", "default")
    await eventually(lambda: len(recorder.seen) == 3)
    assert recorder.seen == [("add", "a", {"owner": "x"}), ("update", "a", {"owner": "x"}, {"owner": "y"}),
                             ("delete", "a")]
    assert len(informer.store) == 0 and informer.store.index_values("owner") == []
    assert informer.resource_version == str(fake_api.revision)


async def test_resumes_after_a_disconnect_from_the_last_resource_version(fake_api, watching):
    informer, recorder = await watching()
    last = fake_api.put(configmap("a"))["metadata"]["resourceVersion"]
    await eventually(lambda: informer.resource_version == last)
    fake_api.drop_watches()
    fake_api.put(configmap("b"))  # while disconnected: replayed on the new watch
    await eventually(lambda: len(recorder.seen) == 2)
    assert [w["resourceVersion"] for w in fake_api.watch_requests()][-1] == last
    assert informer.lists == 1 and [s[:2] for s in recorder.seen] == [("add", "a"), ("add", "b")]


async def test_bookmarks_advance_the_resume_point(fake_api, watching):
    informer, _ = await watching()
    fake_api.put(configmap("other", namespace="elsewhere"))  # not ours: only a bookmark tells us time moved on
    fake_api.bookmark()
    await eventually(lambda: informer.resource_version == str(fake_api.revision))
    fake_api.drop_watches()
    await eventually(lambda: len(fake_api.watch_requests()) == 2)
    assert fake_api.watch_requests()[1]["resourceVersion"] == str(fake_api.revision)


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
async def test_relists_on_410_and_reports_what_the_gap_hid(fake_api, watching, as_http):
    for name in ("kept", "changed", "deleted"):
        fake_api.put(configmap(name, v="1"))
    informer, recorder = await watching()
    fake_api.gone_as_http = as_http
    fake_api.drop_watches()
    # the gap: changes the informer cannot see, and then the history is compacted away
    fake_api.put(configmap("changed", v="2"))
    fake_api.remove("deleted", "default")
    fake_api.put(configmap("added", v="1"))
    fake_api.compact()
    await eventually(lambda: informer.lists == 2)
    assert sorted(recorder.seen[3:]) == [("add", "added", {"v": "1"}), ("delete", "deleted"),
                                         ("update", "changed", {"v": "1"}, {"v": "2"})]
    assert sorted(informer.store.keys()) == ["default/added", "default/changed", "default/kept"]
    await eventually(lambda: fake_api.watch_requests()[-1]["resourceVersion"] == str(fake_api.revision))


async def test_a_server_that_keeps_answering_410_gets_backoff_not_a_tight_loop(fake_api, client, running):
    fake_api.compacted = 10 ** 9  # every watch is "too old"
    loop = asyncio.get_running_loop()
    started = loop.time()
    informer = running(informer_for(client, backoff=Backoff(base=0.05, cap=0.1)))
    await eventually(lambda: informer.lists >= 5)
    # lists 1 and 2 at once (the first 410 re-lists immediately), then 0.05, 0.1 and 0.1 s apart at least;
    # without the backoff five lists take a few milliseconds
    assert loop.time() - started >= 0.25


async def test_pages_through_large_lists_and_falls_back_when_the_continue_token_expires(fake_api, client, running):
    for index in range(5):
        fake_api.put(configmap(f"cm{index}"))
    informer = running(informer_for(client, page_size=2))
    await informer.wait_for_sync(timeout=5)
    assert len(informer.store) == 5
    assert [q.get("limit") for q in fake_api.list_requests()] == ["2", "2", "2"]
    assert [bool(q.get("continue")) for q in fake_api.list_requests()] == [False, True, True]

    fake_api.requests.clear()
    fake_api.expire_continue = True
    second = running(informer_for(client, page_size=2))
    await second.wait_for_sync(timeout=5)
    assert len(second.store) == 5
    assert [q.get("limit") for q in fake_api.list_requests()] == ["2", "2", None]


async def test_server_errors_on_watch_retry_the_watch_without_relisting(fake_api, client, running):
    fake_api.faults.append(Fault("GET", "/configmaps", 503, times=2))  # the first list: retried by the client
    informer = running(informer_for(client))
    await informer.wait_for_sync(timeout=5)
    await eventually(fake_api.watch_requests)
    fake_api.faults.append(Fault("GET", "/configmaps", 500, times=5))  # > the client's retries: the informer's
    fake_api.drop_watches()
    fake_api.put(configmap("late"))
    await eventually(lambda: "default/late" in informer.store)
    assert informer.lists == 1


async def test_forbidden_list_is_retried_until_allowed(fake_api, client, running):
    fake_api.faults.append(Fault("GET", "/configmaps", 403, times=2, reason="Forbidden"))
    informer = running(informer_for(client))
    assert not await informer.wait_for_sync(timeout=0.001)
    assert await informer.wait_for_sync(timeout=5)
    assert len(fake_api.list_requests()) == 3


async def test_handlers_share_the_stores_objects_and_a_failing_handler_harms_no_one(fake_api, client, running):
    fake_api.put(configmap("a", v="1"))
    recorder = Recorder()
    informer = informer_for(client)
    received = []

    def failing(obj):
        received.append(obj)
        raise RuntimeError("handler bug")
    informer.add_handler(on_add=failing)
    informer.add_handler(**recorder.handlers())
    running(informer)
    await informer.wait_for_sync(timeout=5)
    assert recorder.seen == [("add", "a", {"v": "1"})]
    assert received[0] is informer.store.get("default/a")  # no copy per event: read-only for handlers
    await eventually(fake_api.watch_requests)
    fake_api.put(configmap("b"))
    await eventually(lambda: len(recorder.seen) == 2)


async def test_a_late_handler_first_hears_of_every_cached_object(fake_api, client, running):
    fake_api.put(configmap("a"))
    fake_api.put(configmap("b"))
    informer = running(informer_for(client))
    await informer.wait_for_sync(timeout=5)
    recorder = Recorder()
    registration = informer.add_handler(**recorder.handlers())
    assert sorted(s[:2] for s in recorder.seen) == [("add", "a"), ("add", "b")]
    informer.remove_handler(registration)
    await eventually(fake_api.watch_requests)
    fake_api.put(configmap("c"))
    await eventually(lambda: "default/c" in informer.store)
    assert len(recorder.seen) == 2


async def test_the_factory_shares_one_informer_and_one_watch(fake_api, client):
    fake_api.put(configmap("a"))
    factory = SharedInformerFactory(client, namespace="default", backoff=Backoff(base=0.01, cap=0.05))
    cms = client.resource("configmaps")
    first, second = factory.informer(cms), factory.informer(cms)
    assert first is second and factory.informer(cms, label_selector="x=y") is not first
    assert factory.informer(client.resource("nodes")).namespace is None  # cluster-scoped
    assert len(factory.informers()) == 3
    consumers = [Recorder(), Recorder()]
    for consumer in consumers:
        first.add_handler(**consumer.handlers())
    factory.start()
    try:
        assert await factory.wait_for_sync(timeout=5)
        await eventually(lambda: len(fake_api.watch_requests()) == 3)
        watched = [w.get("labelSelector") for w in fake_api.watch_requests()]
        assert sorted(watched, key=str) == sorted([None, None, "x=y"], key=str)  # configmaps, nodes, selected
        assert consumers[0].seen == consumers[1].seen == [("add", "a", {})]
    finally:
        await factory.stop()
