"""The generic store's Kubernetes semantics, over the real SQLite storage behind the real watch cache."""
from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.apiserver.registry.api import API
from kpy_components.apiserver.registry.context import WriteContext
from kpy_components.apiserver.storage.cache import WatchCache
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio
CTX = WriteContext


@pytest.fixture
async def api(tmp_path):
    storage = SqliteStorage(tmp_path / "db.sqlite")
    cache = WatchCache(storage)
    api = API(default_registry(), storage, cache, "10.96.0.0/12")
    for name in ("default", "app"):
        await api.create("", "namespaces", "", {"metadata": {"name": name}})
    yield api
    await cache.close()


def config_map(name: str = "cm", labels: dict | None = None, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data}


def deployment(name: str = "web", replicas: int = 1, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def pod(name: str = "p", node: str = "") -> dict:
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def raises(code: int, awaitable) -> APIError:
    with pytest.raises(APIError) as caught:
        await awaitable
    assert caught.value.code == code, caught.value.message
    return caught.value


# --- create --------------------------------------------------------------------------------------------------------

async def test_create_fills_identity_and_generates_names(api):
    deployments = api.store("apps", "deployments")
    created = await deployments.create(CTX(), "app", deployment())
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert meta["namespace"] == "app" and int(meta["resourceVersion"]) > 0
    generated = await api.store("", "configmaps").create(CTX(), "app", {"metadata": {"generateName": "cfg-"}})
    assert generated["metadata"]["name"].startswith("cfg-") and len(generated["metadata"]["name"]) == 9
    assert generated["apiVersion"] == "v1" and generated["kind"] == "ConfigMap"


async def test_create_needs_an_existing_live_namespace(api):
    error = await raises(404, api.store("", "configmaps").create(CTX(), "nowhere", config_map()))
    assert error.message == 'namespaces "nowhere" not found'
    namespaces = api.store("", "namespaces")
    await api.store("", "configmaps").create(CTX(), "app", config_map("keep"))
    _, deleted_now = await namespaces.delete(CTX(), "", "app")
    assert not deleted_now  # spec.finalizers ["kubernetes"] hold it: Terminating
    assert (await namespaces.get("", "app"))["status"]["phase"] == "Terminating"
    error = await raises(403, api.store("", "configmaps").create(CTX(), "app", config_map("late")))
    assert error.message == ('configmaps "late" is forbidden: unable to create new content in namespace app '
                             'because it is being terminated')


async def test_duplicates_and_invalid_objects(api):
    store = api.store("apps", "deployments")
    await store.create(CTX(), "app", deployment())
    error = await raises(409, store.create(CTX(), "app", deployment()))
    assert error.reason == "AlreadyExists" and error.message == 'deployments.apps "web" already exists'
    broken = deployment("Bad_Name", replicas=-1)
    error = await raises(422, store.create(CTX(), "app", broken))
    fields = [cause["field"] for cause in error.details["causes"]]
    assert fields == ["metadata.name", "spec.replicas"]
    assert error.message.startswith('Deployment.apps "Bad_Name" is invalid: ')
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in error.message


async def test_field_validation_strict_warn_ignore(api):
    store = api.store("", "configmaps")
    unknown = {**config_map("a"), "colour": "blue"}
    error = await raises(400, store.create(CTX(field_validation="Strict"), "app", unknown))
    assert error.message == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
                             'unknown field "colour"')
    warned = CTX(field_validation="Warn")
    await store.create(warned, "app", unknown)
    assert warned.warnings == ['unknown field "colour"']
    ignored = CTX(field_validation="Ignore")
    await store.create(ignored, "app", {**unknown, "metadata": {"name": "b"}})
    assert ignored.warnings == []
    nested = deployment()
    nested["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    error = await raises(400, api.store("apps", "deployments").create(CTX(field_validation="Strict"), "app", nested))
    assert error.message.endswith('unknown field "spec.template.spec.containers[0].imagee"')


async def test_dry_run_persists_nothing(api):
    store = api.store("", "configmaps")
    dry = CTX(dry_run=True)
    await store.create(dry, "app", config_map("ghost"))
    await raises(404, store.get("app", "ghost"))
    real = await store.create(CTX(), "app", config_map("real", a="1"))
    await store.patch(dry, "app", "real", "application/merge-patch+json", {"data": {"a": "2"}})
    await store.delete(dry, "app", "real")
    stored = await store.get("app", "real")
    assert stored["data"] == {"a": "1"}
    assert stored["metadata"]["resourceVersion"] == real["metadata"]["resourceVersion"]


# --- update and patch ----------------------------------------------------------------------------------------------

async def test_stale_update_conflicts_with_kubernetes_wording(api):
    store = api.store("", "configmaps")
    first = await store.create(CTX(), "app", config_map(a="1"))
    await store.update(CTX(), "app", "cm", {**first, "data": {"a": "2"}})
    error = await raises(409, store.update(CTX(), "app", "cm", {**first, "data": {"a": "3"}}))
    assert error.message == ('Operation cannot be fulfilled on configmaps "cm": the object has been modified; '
                             'please apply your changes to the latest version and try again')
    unconditional = {**first, "metadata": {"name": "cm"}, "data": {"a": "4"}}  # no resourceVersion: last write wins
    stored, created = await store.update(CTX(), "app", "cm", unconditional)
    assert stored["data"] == {"a": "4"} and not created


async def test_status_and_spec_are_written_separately(api):
    store = api.store("apps", "deployments")
    created = await store.create(CTX(), "app", {**deployment(), "status": {"replicas": 9}})
    assert "status" not in created  # clients cannot set status on create
    sneaky = {**created, "spec": {**created["spec"], "replicas": 3}, "status": {"replicas": 5}}
    updated, _ = await store.update(CTX(), "app", "web", sneaky)
    assert updated["spec"]["replicas"] == 3 and "status" not in updated
    assert updated["metadata"]["generation"] == 2
    status = {**updated, "spec": {**updated["spec"], "replicas": 7}, "status": {"replicas": 5}}
    after_status, _ = await store.update(CTX(), "app", "web", status, subresource="status")
    assert after_status["status"] == {"replicas": 5} and after_status["spec"]["replicas"] == 3
    assert after_status["metadata"]["generation"] == 2  # status writes never bump generation
    labelled, _ = await store.patch(CTX(), "app", "web", "application/merge-patch+json",
                                    {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 2  # nor do metadata-only changes


async def test_patch_types_and_apply_creating_missing_objects(api):
    store = api.store("apps", "deployments")
    await store.create(CTX(field_manager="test"), "app", deployment())
    patched, _ = await store.patch(CTX(), "app", "web", "application/strategic-merge-patch+json",
                                   {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "n:2"}]}}}})
    assert patched["spec"]["template"]["spec"]["containers"][0]["image"] == "n:2"
    patched, _ = await store.patch(CTX(), "app", "web", "application/json-patch+json",
                                   [{"op": "replace", "path": "/spec/replicas", "value": 4}])
    assert patched["spec"]["replicas"] == 4
    await raises(404, store.patch(CTX(), "app", "other", "application/merge-patch+json", {"spec": {}}))
    applied, created = await store.patch(CTX(field_manager="ssa"), "app", "other", "application/apply-patch+yaml",
                                         deployment("other"))
    assert created and applied["metadata"]["managedFields"][0]["manager"] == "ssa"
    error = await raises(422, store.patch(CTX(), "app", "other", "application/apply-patch+yaml", deployment("other")))
    assert "fieldManager: Required value" in error.message


# --- delete --------------------------------------------------------------------------------------------------------

async def test_finalizers_hold_objects_until_removed(api):
    store = api.store("", "configmaps")
    await store.create(CTX(), "app", {**config_map(), "metadata": {"name": "cm", "finalizers": ["example.com/x"]}})
    held, deleted_now = await store.delete(CTX(), "app", "cm")
    assert not deleted_now and held["metadata"]["deletionTimestamp"]
    await store.patch(CTX(), "app", "cm", "application/merge-patch+json", {"metadata": {"finalizers": None}})
    await raises(404, store.get("app", "cm"))


async def test_propagation_policies_become_garbage_collector_finalizers(api):
    store = api.store("apps", "deployments")
    await store.create(CTX(), "app", deployment())
    held, _ = await store.delete(CTX(), "app", "web", {"propagationPolicy": "Foreground"})
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    await store.create(CTX(), "app", deployment("orphaned"))
    held, _ = await store.delete(CTX(), "app", "orphaned", {"propagationPolicy": "Orphan"})
    assert held["metadata"]["finalizers"] == ["orphan"]
    await store.create(CTX(), "app", deployment("gone"))
    _, deleted_now = await store.delete(CTX(), "app", "gone", {"propagationPolicy": "Background"})
    assert deleted_now


async def test_scheduled_pods_delete_gracefully(api):
    pods = api.store("", "pods")
    await pods.create(CTX(), "app", pod("pending"))
    _, deleted_now = await pods.delete(CTX(), "app", "pending")
    assert deleted_now  # no kubelet has it: gone at once
    await pods.create(CTX(), "app", pod("running", node="node1"))
    marked, deleted_now = await pods.delete(CTX(), "app", "running")
    assert not deleted_now
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30 and marked["metadata"]["deletionTimestamp"]
    _, deleted_now = await pods.delete(CTX(), "app", "running", {"gracePeriodSeconds": 0})  # the kubelet's delete
    assert deleted_now
    await raises(404, pods.get("app", "running"))


async def test_delete_preconditions(api):
    store = api.store("", "configmaps")
    await store.create(CTX(), "app", config_map())
    error = await raises(409, store.delete(CTX(), "app", "cm", {"preconditions": {"uid": "other"}}))
    assert "Precondition failed: UID in precondition: other" in error.message


async def test_delete_collection_with_a_selector(api):
    store = api.store("", "configmaps")
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        await store.create(CTX(), "app", config_map(name, {"tier": tier}))
    deleted = await store.delete_collection(CTX(), "app", label_selector="tier=web")
    assert [item["metadata"]["name"] for item in deleted["items"]] == ["a", "b"]
    left = await store.list("app")
    assert [item["metadata"]["name"] for item in left["items"]] == ["c"]


# --- list and watch ------------------------------------------------------------------------------------------------

async def test_list_pages_through_selected_objects(api):
    store = api.store("", "configmaps")
    for index in range(7):
        await store.create(CTX(), "app", config_map(f"cm{index}", {"even": str(index % 2 == 0).lower()}))
    await store.create(CTX(), "default", config_map("elsewhere", {"even": "true"}))
    names, token, revisions = [], "", set()
    while True:
        page = await store.list("app", label_selector="even=true", limit=2, continue_token=token)
        names.append([item["metadata"]["name"] for item in page["items"]])
        revisions.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [["cm0", "cm2"], ["cm4", "cm6"]] or names == [["cm0", "cm2"], ["cm4", "cm6"], []]
    assert len(revisions) == 1  # every page is consistent at the first page's revision
    everywhere = await store.list("", field_selector="metadata.namespace=default")
    assert [item["metadata"]["name"] for item in everywhere["items"]] == ["elsewhere"]
    from_cache = await store.list("app", resource_version="0", limit=1)
    assert len(from_cache["items"]) == 7  # limit is ignored for resourceVersion=0, as in Kubernetes
    unpaged = await store.list("app", limit=3)
    assert unpaged["metadata"]["remainingItemCount"] == 4
    await raises(400, store.list("app", field_selector="spec.bogus=1"))


async def _events(iterator, count: int) -> list[tuple[str, str]]:
    seen = []
    async with aclosing(iterator) as events:
        async with asyncio.timeout(5):
            async for event in events:
                seen.append((event.type, event.object["metadata"]["name"]))
                if len(seen) == count:
                    return seen
    return seen


async def test_watch_sends_current_state_then_changes_filtered_by_selector(api):
    store = api.store("", "configmaps")
    await store.create(CTX(), "app", config_map("existing", {"watched": "yes"}))
    await store.create(CTX(), "app", config_map("ignored"))
    watcher = asyncio.create_task(_events(store.watch("app", label_selector="watched=yes"), 4))
    await asyncio.sleep(0.2)
    await store.create(CTX(), "app", config_map("new", {"watched": "yes"}))
    await store.patch(CTX(), "app", "ignored", "application/merge-patch+json",
                      {"metadata": {"labels": {"watched": "yes"}}})  # enters the selection
    await store.patch(CTX(), "app", "existing", "application/merge-patch+json",
                      {"metadata": {"labels": {"watched": None}}})  # leaves it
    assert await watcher == [("ADDED", "existing"), ("ADDED", "new"), ("ADDED", "ignored"), ("DELETED", "existing")]


async def test_watch_from_a_resource_version_and_from_a_compacted_one(api):
    store = api.store("", "configmaps")
    first = await store.create(CTX(), "app", config_map("one"))
    await store.create(CTX(), "app", config_map("two"))
    await store.delete(CTX(), "app", "one")
    watched = await _events(store.watch("app", resource_version=first["metadata"]["resourceVersion"]), 2)
    assert watched == [("ADDED", "two"), ("DELETED", "one")]
    await api.storage.compact(int((await store.list("app"))["metadata"]["resourceVersion"]))
    error = await raises(410, _events(store.watch("app", resource_version="1"), 1))
    assert error.reason == "Expired" and error.message.startswith("too old resource version: 1 (")
