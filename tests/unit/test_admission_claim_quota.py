"""ResourceQuota charges PersistentVolumeClaims as upstream's evaluator does: persistentvolumeclaims,
requests.storage, and per class <class>.storageclass.storage.k8s.io/{requests.storage,persistentvolumeclaims};
refused with upstream's words, charged to status.used; and LimitRange PersistentVolumeClaim items bounding the
storage a claim requests — through the real registry."""
import pytest
from test_admission_chain import ALICE, api, create_through_registry  # noqa: F401

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.limit_ranger import LimitRanger
from kpy_components.apiserver.admission.quota_usage import usage
from kpy_components.apiserver.admission.resource_quota import ResourceQuotaAdmission

pytestmark = pytest.mark.anyio
FAST = "fast.storageclass.storage.k8s.io/"


def claim(name: str, size: str, cls: str | None = None) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "app"},
            "spec": spec}


async def create(api, obj: dict) -> dict:
    async def write(quota):
        return await api.update_status("", "resourcequotas", "app", quota)
    admit = AdmissionChain([], [ResourceQuotaAdmission(api, write)]).admit
    return await create_through_registry(api, admit, ALICE, obj, plural="persistentvolumeclaims")


def test_claim_usage_names():
    assert {k: str(v) for k, v in usage("", "persistentvolumeclaims", claim("a", "2Gi", "fast")).items()} == {
        "count/persistentvolumeclaims": "1", "persistentvolumeclaims": "1", "requests.storage": "2Gi",
        FAST + "requests.storage": "2Gi", FAST + "persistentvolumeclaims": "1"}
    assert set(usage("", "persistentvolumeclaims", claim("b", "1Gi"))) == {
        "count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"}


async def test_storage_quota_refuses_and_charges(api):
    await api.create("", "resourcequotas", "app", {"metadata": {"name": "disk"}, "spec": {"hard": {
        "requests.storage": "5Gi", FAST + "persistentvolumeclaims": "1"}}})
    await create(api, claim("a", "2Gi", "fast"))
    with pytest.raises(APIError) as caught:
        await create(api, claim("b", "1Gi", "fast"))
    assert caught.value.message == (f'persistentvolumeclaims "b" is forbidden: exceeded quota: disk, requested: '
                                    f"{FAST}persistentvolumeclaims=1, used: {FAST}persistentvolumeclaims=1, limited: "
                                    f"{FAST}persistentvolumeclaims=1")
    with pytest.raises(APIError) as caught:
        await create(api, claim("c", "4Gi"))
    assert caught.value.message == ('persistentvolumeclaims "c" is forbidden: exceeded quota: disk, requested: '
                                    "requests.storage=4Gi, used: requests.storage=2Gi, limited: requests.storage=5Gi")
    await create(api, claim("d", "3Gi"))
    used = (await api.get("", "resourcequotas", "app", "disk"))["status"]["used"]
    assert used == {"requests.storage": "5Gi", FAST + "persistentvolumeclaims": "1"}


async def test_limit_range_bounds_claim_storage(api):
    await api.create("", "limitranges", "app", {"metadata": {"name": "disk"}, "spec": {"limits": [
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}},
        {"type": "Container", "max": {"cpu": "1"}}]}})
    admit = AdmissionChain([], [LimitRanger(api)]).admit
    for size, message in (("500Mi", "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"),
                          ("20Gi", "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi")):
        with pytest.raises(APIError) as caught:
            await create_through_registry(api, admit, ALICE, claim("big", size), plural="persistentvolumeclaims")
        assert caught.value.message == f'persistentvolumeclaims "big" is forbidden: {message}'
    created = await create_through_registry(api, admit, ALICE, claim("ok", "5Gi"), plural="persistentvolumeclaims")
    assert created["spec"]["resources"]["requests"]["storage"] == "5Gi"
