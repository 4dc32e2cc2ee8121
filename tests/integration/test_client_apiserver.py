"""The client machinery against a REAL `kpy-apiserver --dev DIR --secure-port PORT` (the process fixture of
tests/integration/apiserver/conftest.py, reused): the REST client's verbs and errors, an informer following
creates/updates/deletes and surviving a server restart, two leader electors handing over a Lease, and the event
recorder aggregating repeats."""
from __future__ import annotations

import asyncio
import itertools
import subprocess

import pytest

from apiserver.conftest import APIServerProcess, _wait_ready, apiserver  # noqa: F401 - the process fixture
from kpy_components.api.errors import APIError
from kpy_components.client.backoff import Backoff
from kpy_components.client.errors import is_conflict, is_invalid, is_not_found
from kpy_components.client.events import EventRecorder
from kpy_components.client.informer import Informer
from kpy_components.client.kubeconfig import load_kubeconfig
from kpy_components.client.leaderelection import LeaderElectionConfig, LeaderElector
from kpy_components.client.rest import RESTClient
from processes import stop_process

pytestmark = pytest.mark.anyio
_names = itertools.count()
DEADLINE = 10.0  # seconds for anything the server should do "soon"


@pytest.fixture(scope="module")
def server(apiserver):  # noqa: F811 - the imported fixture
    """The API server process; a test may restart it, and the restarted process is stopped here."""
    original = apiserver.process
    yield apiserver
    if apiserver.process is not original:
        stop_process(apiserver.process, timeout=15)


def restart(server: APIServerProcess) -> None:
    """Stop the server (SIGTERM, as systemd does) and start it again on the same directory and port."""
    server.process.terminate()
    server.process.wait(timeout=15)
    with server.log.open("ab") as output:
        server.process = subprocess.Popen(server.process.args, stdout=output, stderr=subprocess.STDOUT)
    _wait_ready(server)


@pytest.fixture
async def client(server):
    async with RESTClient(load_kubeconfig(server.admin_kubeconfig), user_agent="kpy-client-tests") as client:
        yield client


@pytest.fixture
async def namespace(client):
    name = f"client-{next(_names)}"
    await client.create(client.resource("namespaces"), {"metadata": {"name": name}})
    return name


async def eventually(predicate, timeout: float = DEADLINE):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {timeout}s: {predicate.__doc__ or predicate}")
        await asyncio.sleep(0.02)


def configmap(name: str, **data) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


# --- REST ----------------------------------------------------------------------------------------------------------

async def test_verbs_patch_types_and_errors(client, namespace):
    cms = client.resource("configmaps")
    created = await client.create(cms, configmap("app", a="1"), namespace)
    assert created["metadata"]["namespace"] == namespace and created["metadata"]["uid"]
    stale = await client.get(cms, "app", namespace)
    await client.patch(cms, "app", {"data": {"b": "2"}}, namespace)
    await client.patch(cms, "app", {"data": {"c": "3"}}, namespace, patch_type="strategic")
    await client.patch(cms, "app", [{"op": "add", "path": "/data/d", "value": "4"}], namespace, patch_type="json")
    applied = await client.apply(cms, configmap("app", e="5"), namespace, field_manager="kpy-client-tests")
    assert applied["data"] == {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
    with pytest.raises(APIError) as raised:
        await client.update(cms, stale, namespace)
    assert is_conflict(raised.value) and raised.value.message.startswith(
        'Operation cannot be fulfilled on configmaps "app"')
    with pytest.raises(APIError) as raised:
        await client.create(cms, configmap("Not_Valid"), namespace)
    assert is_invalid(raised.value) and "metadata.name" in raised.value.message
    page = await client.list(cms, namespace, limit=1)
    assert len(page["items"]) == 1 and page["metadata"]["resourceVersion"]
    await client.delete(cms, "app", namespace)
    with pytest.raises(APIError) as raised:
        await client.get(cms, "app", namespace)
    assert is_not_found(raised.value) and raised.value.message == 'configmaps "app" not found'


async def test_delete_exactly_deletes_that_object_and_never_its_successor(client, namespace):
    cms = client.resource("configmaps")
    first = await client.create(cms, configmap("once"), namespace)
    await client.delete(cms, "once", namespace)
    successor = await client.create(cms, configmap("once", new="yes"), namespace)
    assert await client.delete_exactly(cms, first) is False  # same name, another uid: left alone
    assert (await client.get(cms, "once", namespace))["metadata"]["uid"] == successor["metadata"]["uid"]
    assert await client.delete_exactly(cms, successor) is True
    assert await client.delete_exactly(cms, successor) is False  # already gone
    with pytest.raises(APIError) as raised:
        await client.get(cms, "once", namespace)
    assert is_not_found(raised.value)


# --- informers -----------------------------------------------------------------------------------------------------

def recording_informer(client, namespace) -> tuple[Informer, list]:
    seen = []
    informer = Informer(client, client.resource("configmaps"), namespace, backoff=Backoff(base=0.1, cap=0.5))
    informer.add_handler(on_add=lambda o: seen.append(("add", o["metadata"]["name"], o.get("data"))),
                         on_update=lambda old, new: seen.append(("update", new["metadata"]["name"], new.get("data"))),
                         on_delete=lambda o: seen.append(("delete", o["metadata"]["name"], None)))
    return informer, seen


async def test_an_informer_sees_creates_updates_and_deletes(client, namespace):
    cms = client.resource("configmaps")
    await client.create(cms, configmap("before", v="0"), namespace)
    informer, seen = recording_informer(client, namespace)
    informer.start()
    try:
        assert await informer.wait_for_sync(DEADLINE)
        assert seen == [("add", "before", {"v": "0"})]
        await client.create(cms, configmap("web", v="1"), namespace)
        await client.patch(cms, "web", {"data": {"v": "2"}}, namespace)
        await client.delete(cms, "web", namespace)
        await eventually(lambda: len(seen) == 4)
        assert seen[1:] == [("add", "web", {"v": "1"}), ("update", "web", {"v": "2"}), ("delete", "web", None)]
        assert informer.store.keys() == [f"{namespace}/before"]
    finally:
        await informer.stop()


async def test_an_informer_resumes_after_the_server_restarts(client, namespace, server):
    cms = client.resource("configmaps")
    informer, seen = recording_informer(client, namespace)
    informer.start()
    try:
        assert await informer.wait_for_sync(DEADLINE)
        await client.create(cms, configmap("first"), namespace)
        await eventually(lambda: len(seen) == 1)
        await asyncio.to_thread(restart, server)
        await client.create(cms, configmap("second"), namespace)
        await client.delete(cms, "first", namespace)
        await eventually(lambda: len(seen) == 3)
        assert seen[1:] == [("add", "second", {}), ("delete", "first", None)]
        assert informer.store.keys() == [f"{namespace}/second"]
    finally:
        await informer.stop()


# --- leader election -----------------------------------------------------------------------------------------------

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 2.0, 1.5, 0.3


class Replica:
    """One replica of a component: an elector whose work waits until cancelled."""

    def __init__(self, client, namespace: str, identity: str, release: bool = True):
        self.leading = asyncio.Event()
        config = LeaderElectionConfig("kpy-component", identity, namespace, LEASE_DURATION, RENEW_DEADLINE,
                                      RETRY_PERIOD, release_on_cancel=release)
        self.elector = LeaderElector(client, config, on_started_leading=self.work)
        self.task = asyncio.create_task(self.elector.run())

    async def work(self):
        self.leading.set()
        await asyncio.Event().wait()

    async def stop(self):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful-stop", "crash"])
async def test_leader_election_hands_over_when_the_leader_stops(client, namespace, graceful):
    leases = client.resource("leases", "coordination.k8s.io")
    first = Replica(client, namespace, "replica-a", release=graceful)
    await asyncio.wait_for(first.leading.wait(), DEADLINE)
    second = Replica(client, namespace, "replica-b")
    try:
        await asyncio.sleep(LEASE_DURATION)  # longer than a lease: the leader keeps renewing, the standby waits
        assert not second.leading.is_set()
        lease = await client.get(leases, "kpy-component", namespace)
        assert lease["spec"]["holderIdentity"] == "replica-a" and lease["spec"]["leaseDurationSeconds"] == 2
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        await first.stop()
        await asyncio.wait_for(second.leading.wait(), DEADLINE)
        took = loop.time() - stopped
        # released: within a lease duration; crashed: the lease must first expire (plus the standby's retries)
        assert took < (LEASE_DURATION if graceful else LEASE_DURATION + 2 * RETRY_PERIOD * 2.2 + 0.5)
        if not graceful:
            assert took >= LEASE_DURATION - 2 * RETRY_PERIOD * 2.2
        lease = await client.get(leases, "kpy-component", namespace)
        spec = lease["spec"]
        assert spec["holderIdentity"] == "replica-b" and spec["leaseTransitions"] == 1
        assert spec["acquireTime"] and spec["renewTime"] >= spec["acquireTime"]
    finally:
        await second.stop()


# --- events --------------------------------------------------------------------------------------------------------

async def test_the_event_recorder_aggregates_repeats_on_the_real_server(client, namespace):
    cm = await client.create(client.resource("configmaps"), configmap("subject"), namespace)
    recorder = EventRecorder(client, "kpy-client-tests", "host-1")
    recorder.start()
    try:
        for _ in range(3):
            recorder.event(cm, "Warning", "Flapping", "it happened again")
        recorder.event(cm, "Normal", "Calm", "all good")
        await recorder.flush()
    finally:
        await recorder.stop()
    listed = await client.list(client.resource("events"), namespace)
    by_reason = {event["reason"]: event for event in listed["items"]}
    assert set(by_reason) == {"Flapping", "Calm"}
    assert by_reason["Flapping"]["count"] == 3 and by_reason["Calm"]["count"] == 1
    assert by_reason["Flapping"]["involvedObject"]["uid"] == cm["metadata"]["uid"]
    assert by_reason["Flapping"]["source"] == {"component": "kpy-client-tests", "host": "host-1"}
