"""PersistentVolumeClaims, PersistentVolumes and StorageClasses in the API: defaults, validation worded and placed
as upstream's, update rules, and the Table cells `kubectl get pvc/pv/sc` print; on the real registry over SQLite."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kpy_components.api import storage
from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.api.tables import to_table
from kpy_components.apiserver.registry.api import API
from kpy_components.apiserver.registry.context import WriteContext
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio
REGISTRY = default_registry()
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
async def api(tmp_path):
    backend = SqliteStorage(tmp_path / "db.sqlite")
    api = API(default_registry(), backend, backend, "10.96.0.0/29")
    await api.create("", "namespaces", "", {"metadata": {"name": "app"}})
    yield api
    await backend.close()


def claim(name: str = "data", **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                 "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def volume(name: str = "pv1", **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"},
                                                 "hostPath": {"path": "/data/pv1"}, **spec}}


async def create(api, group: str, plural: str, obj: dict, namespace: str = "app") -> dict:
    return await api.store(group, plural).create(WriteContext(), namespace, obj)


async def update(api, group: str, plural: str, obj: dict, namespace: str = "app", subresource: str = "") -> dict:
    stored, _ = await api.store(group, plural).update(WriteContext(), namespace, obj["metadata"]["name"], obj,
                                                      subresource)
    return stored


async def causes_of(call) -> list[tuple[str, str]]:
    with pytest.raises(APIError) as caught:
        await call
    assert caught.value.code == 422, caught.value.message
    return [(cause["field"], cause["message"]) for cause in caught.value.details["causes"]]


async def test_claim_defaults_and_status(api):
    created = await create(api, "", "persistentvolumeclaims", claim())
    assert created["spec"]["volumeMode"] == "Filesystem"
    assert created["status"] == {"phase": "Pending"}


async def test_claim_validation_names_fields_as_upstream(api):
    causes = await causes_of(create(api, "", "persistentvolumeclaims",
                                    {"metadata": {"name": "c"}, "spec": {"volumeMode": "Raw"}}))
    assert ("spec.accessModes", "Required value: at least 1 access mode is required") in causes
    assert ("spec.resources[storage]", "Required value") in causes
    assert ("spec.volumeMode", 'Unsupported value: "Raw": supported values: "Block", "Filesystem"') in causes
    causes = await causes_of(create(api, "", "persistentvolumeclaims", claim(
        accessModes=["ReadWriteOncePod", "ReadWriteOnce", "WriteSometimes"], resources={"requests": {"storage": "0"}},
        storageClassName="Fast_SSD")))
    assert ("spec.accessModes", 'Unsupported value: "WriteSometimes": supported values: "ReadOnlyMany", '
            '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"') in causes
    assert ("spec.accessModes", "Forbidden: may not use ReadWriteOncePod with other access modes") in causes
    assert ("spec.resources[storage]", 'Invalid value: "0": must be greater than zero') in causes
    assert any(field == "spec.storageClassName" and "RFC 1123 subdomain" in message for field, message in causes)


async def test_claim_spec_immutable_except_expansion_and_binding(api):
    created = await create(api, "", "persistentvolumeclaims", claim())
    changed = {**created, "spec": {**created["spec"], "accessModes": ["ReadWriteMany"]}}
    causes = await causes_of(update(api, "", "persistentvolumeclaims", changed))
    assert causes[0][0] == "spec"
    assert causes[0][1].startswith("Forbidden: spec is immutable after creation except resources.requests and "
                                   "volumeAttributesClassName for bound claims\n")
    bigger = {**created, "spec": {**created["spec"], "resources": {"requests": {"storage": "2Gi"}}}}
    assert (await causes_of(update(api, "", "persistentvolumeclaims", bigger)))[0][0] == "spec"  # not bound yet
    bound = await update(api, "", "persistentvolumeclaims", {**created, "status": {"phase": "Bound"}},
                         subresource="status")
    named = await update(api, "", "persistentvolumeclaims", {**bound, "spec": {
        **bound["spec"], "volumeName": "pv1", "storageClassName": "manual",
        "resources": {"requests": {"storage": "2Gi"}}}})
    assert (named["spec"]["volumeName"], named["spec"]["resources"]["requests"]["storage"]) == ("pv1", "2Gi")
    smaller = {**named, "spec": {**named["spec"], "resources": {"requests": {"storage": "1Gi"}}}}
    assert await causes_of(update(api, "", "persistentvolumeclaims", smaller)) == [
        ("spec.resources.requests.storage", "Forbidden: field can not be less than previous value")]
    renamed = {**named, "spec": {**named["spec"], "volumeName": "pv2"}}
    assert (await causes_of(update(api, "", "persistentvolumeclaims", renamed)))[0][0] == "spec"


async def test_volume_defaults_phase_and_transition_time(api):
    created = await create(api, "", "persistentvolumes", volume(), namespace="")
    assert (created["spec"]["persistentVolumeReclaimPolicy"], created["spec"]["volumeMode"]) == ("Retain",
                                                                                              "Filesystem")
    assert created["status"]["phase"] == "Pending" and created["status"]["lastPhaseTransitionTime"]
    old_time = "2000-01-01T00:00:00Z"  # kept while the phase stays, so the phase change below must replace it
    stale = await update(api, "", "persistentvolumes", {**created, "status": {
        "phase": "Pending", "lastPhaseTransitionTime": old_time}}, "", subresource="status")
    assert stale["status"]["lastPhaseTransitionTime"] == old_time
    changed = {**stale, "status": {**stale["status"], "phase": "Available"}}
    available = await update(api, "", "persistentvolumes", changed, "", subresource="status")
    assert available["status"]["phase"] == "Available" and available["status"]["lastPhaseTransitionTime"]
    assert available["status"]["lastPhaseTransitionTime"] != old_time


async def test_volume_validation(api):
    causes = await causes_of(create(api, "", "persistentvolumes", {"metadata": {"name": "v"}, "spec": {
        "persistentVolumeReclaimPolicy": "Keep"}}, namespace=""))
    assert ("spec.accessModes", "Required value") in causes
    assert ("spec.capacity", "Required value") in causes
    assert ("spec", "Required value: must specify a volume type") in causes
    assert ("spec.persistentVolumeReclaimPolicy", 'Unsupported value: "Keep": supported values: "Delete", '
            '"Recycle", "Retain"') in causes
    causes = await causes_of(create(api, "", "persistentvolumes", volume(
        capacity={"storage": "1Gi", "cpu": "1"}, nfs={"server": "x", "path": "/"}, hostPath={"path": "/a/../b"}),
        namespace=""))
    assert ("spec.nfs", "Forbidden: may not specify more than 1 volume type") in causes
    assert ("spec.hostPath.path", "Invalid value: \"/a/../b\": must not contain '..'") in causes
    assert any(field == "spec.capacity" and message.startswith("Unsupported value:") for field, message in causes)
    local = volume(local={"path": "/mnt/disk"})
    del local["spec"]["hostPath"]
    assert await causes_of(create(api, "", "persistentvolumes", local, namespace="")) == [
        ("spec.nodeAffinity", "Required value: Local volume requires node affinity")]
    local["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}
    assert (await create(api, "", "persistentvolumes", local, namespace=""))["spec"]["local"] == {"path": "/mnt/disk"}


async def test_volume_source_immutable(api):
    created = await create(api, "", "persistentvolumes", volume(), namespace="")
    moved = {**created, "spec": {**created["spec"], "hostPath": {"path": "/elsewhere"}}}
    causes = await causes_of(update(api, "", "persistentvolumes", moved, ""))
    assert causes[0][0] == "spec.persistentvolumesource"
    assert causes[0][1].startswith("Forbidden: spec.persistentvolumesource is immutable after creation\n")
    grown = await update(api, "", "persistentvolumes", {**created, "spec": {**created["spec"],
                                                                            "capacity": {"storage": "9Gi"}}}, "")
    assert grown["spec"]["capacity"] == {"storage": "9Gi"}


async def test_storage_class_defaults_validation_and_immutability(api):
    created = await create(api, "storage.k8s.io", "storageclasses", {"metadata": {"name": "fast"},
                                                                     "provisioner": "example.com/fast"}, "")
    assert (created["reclaimPolicy"], created["volumeBindingMode"]) == ("Delete", "Immediate")
    causes = await causes_of(create(api, "storage.k8s.io", "storageclasses", {
        "metadata": {"name": "bad"}, "reclaimPolicy": "Recycle", "volumeBindingMode": "Later"}, ""))
    assert ("provisioner", "Required value") in causes
    assert ("reclaimPolicy", 'Unsupported value: "Recycle": supported values: "Delete", "Retain"') in causes
    assert ("volumeBindingMode", 'Unsupported value: "Later": supported values: "Immediate", '
            '"WaitForFirstConsumer"') in causes
    changed = {**created, "provisioner": "example.com/slow", "volumeBindingMode": "WaitForFirstConsumer"}
    assert await causes_of(update(api, "storage.k8s.io", "storageclasses", changed, "")) == [
        ("provisioner", "Forbidden: updates to provisioner are forbidden."),
        ("volumeBindingMode", 'Invalid value: "WaitForFirstConsumer": field is immutable')]


# --- printing ----------------------------------------------------------------------------------------------------

def row(group: str, plural: str, obj: dict) -> tuple[list[str], list]:
    table = to_table(REGISTRY.get(group, "v1", plural), [obj], now=NOW)
    return [c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"]


def test_claim_cells_show_capacity_only_once_bound():
    obj = {"metadata": {"name": "data-db-0", "creationTimestamp": "2024-06-01T11:55:00Z"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                    "storageClassName": "manual", "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}
    names, cells = row("", "persistentvolumeclaims", obj)
    assert names == ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass",
                     "Age", "VolumeMode"]
    assert cells == ["data-db-0", "Pending", "", "", "", "manual", "<unset>", "5m", "Filesystem"]
    obj["spec"]["volumeName"] = "pv1"
    obj["status"] = {"phase": "Bound", "capacity": {"storage": "5120Mi"}, "accessModes": ["ReadWriteMany",
                                                                                         "ReadWriteOnce"]}
    assert row("", "persistentvolumeclaims", obj)[1][:5] == ["data-db-0", "Bound", "pv1", "5Gi", "RWO,RWX"]


def test_volume_and_class_cells():
    pv = {"metadata": {"name": "pv1", "creationTimestamp": "2024-06-01T10:00:00Z",
                       "annotations": {storage.BETA_CLASS_ANNOTATION: "old"}},
          "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "manual",
                   "claimRef": {"namespace": "app", "name": "data"}},
          "status": {"phase": "Bound"}}
    names, cells = row("", "persistentvolumes", pv)
    assert names == ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
                     "VolumeAttributesClass", "Reason", "Age", "VolumeMode"]
    assert cells == ["pv1", "10Gi", "RWO,ROX", "Retain", "Bound", "app/data", "old", "<unset>", "", "120m", "<unset>"]
    sc = {"metadata": {"name": "standard", "creationTimestamp": "2024-06-01T11:59:00Z",
                       "annotations": {storage.DEFAULT_CLASS_ANNOTATION: "true"}},
          "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"}
    names, cells = row("storage.k8s.io", "storageclasses", sc)
    assert names == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"]
    assert cells == ["standard (default)", "kubernetes.io/no-provisioner", "Delete", "WaitForFirstConsumer", False,
                     "60s"]


def test_default_class_is_the_newest_default():
    def sc(name, created, default="true"):
        return {"metadata": {"name": name, "creationTimestamp": created,
                             "annotations": {storage.DEFAULT_CLASS_ANNOTATION: default}}}
    assert storage.default_class([sc("a", "2024-01-01T00:00:00Z", "false")]) is None
    chosen = storage.default_class([sc("old", "2024-01-01T00:00:00Z"), sc("new", "2024-02-01T00:00:00Z"),
                                    sc("other", "2024-03-01T00:00:00Z", "false")])
    assert chosen["metadata"]["name"] == "new"
    tie = storage.default_class([sc("b", "2024-01-01T00:00:00Z"), sc("a", "2024-01-01T00:00:00Z")])
    assert tie["metadata"]["name"] == "a"


def test_claim_names_are_the_persistent_volume_claim_volumes_in_order():
    spec = {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "b", "emptyDir": {}},
                        {"name": "c", "persistentVolumeClaim": {"claimName": "logs"}}]}
    assert storage.claim_names(spec) == ["data", "logs"]
    assert storage.claim_names({}) == []


def test_requested_storage_of_a_claim():
    assert storage.requested_storage({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}) == \
        storage.storage_quantity({"storage": "2Gi"})
    assert storage.requested_storage({"spec": {"resources": {"requests": {"storage": "two"}}}}) is None
    assert storage.requested_storage({}) is None


def test_a_claim_has_no_class_without_a_class_name_or_the_beta_annotation():
    assert storage.has_no_class({"spec": {}}) and storage.has_no_class({"spec": {"storageClassName": None}})
    assert not storage.has_no_class({"spec": {"storageClassName": ""}})
    assert not storage.has_no_class({"metadata": {"annotations": {storage.BETA_CLASS_ANNOTATION: ""}}, "spec": {}})


async def test_statefulset_claim_templates_and_retention_policy(api):
    def statefulset(name, **spec):
        return {"metadata": {"name": name}, "spec": {
            "selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}], **spec}}
    created = await create(api, "apps", "statefulsets", statefulset(
        "db", persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete"}))
    template = created["spec"]["volumeClaimTemplates"][0]
    assert (template["apiVersion"], template["kind"], template["spec"]["volumeMode"], template["status"]) == (
        "v1", "PersistentVolumeClaim", "Filesystem", {"phase": "Pending"})
    assert created["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Delete"}
    causes = await causes_of(create(api, "apps", "statefulsets", statefulset(
        "bad", persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep"})))
    assert causes == [("spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
                       'Unsupported value: "Keep": supported values: "Retain", "Delete"')]
