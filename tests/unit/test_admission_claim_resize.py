"""PersistentVolumeClaimResize admission inside real registry updates: a bound claim grows only when its class
allows volume expansion; shrinking stays validation's refusal, an unbound claim's growth validation's too."""
import pytest
from test_admission_chain import ALICE, api, request  # noqa: F401

from kpy_components.api import storage
from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.claim_resize import PersistentVolumeClaimResize
from kpy_components.apiserver.registry.context import WriteContext

pytestmark = pytest.mark.anyio


async def bound_claim(api, name: str, cls: str) -> dict:
    created = await api.create("", "persistentvolumeclaims", "app", {"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": cls, "resources": {"requests": {"storage": "1Gi"}}}})
    created["status"] = {"phase": "Bound"}
    return await api.update_status("", "persistentvolumeclaims", "app", created)


async def grow(api, claim: dict, size: str) -> dict:
    body = {**claim, "spec": {**claim["spec"], "resources": {"requests": {"storage": size}}}}
    admit = AdmissionChain([], [PersistentVolumeClaimResize(api)]).admit
    ctx = WriteContext(user=ALICE, info=request("update", "persistentvolumeclaims", "app", claim["metadata"]["name"]),
                       admit=admit)
    stored, _ = await api.store("", "persistentvolumeclaims").update(ctx, "app", claim["metadata"]["name"], body)
    return stored


async def test_only_classes_allowing_expansion_let_bound_claims_grow(api):
    for name, allow in (("elastic", True), ("fixed", None)):
        await api.create(storage.STORAGE_GROUP, "storageclasses", "", {
            "metadata": {"name": name}, "provisioner": "example.com/x",
            **({"allowVolumeExpansion": allow} if allow is not None else {})})
    grown = await grow(api, await bound_claim(api, "a", "elastic"), "2Gi")
    assert grown["spec"]["resources"]["requests"]["storage"] == "2Gi"
    for claim in (await bound_claim(api, "b", "fixed"), await bound_claim(api, "c", "missing")):
        with pytest.raises(APIError) as caught:
            await grow(api, claim, "2Gi")
        name = claim["metadata"]["name"]
        assert (caught.value.code, caught.value.message) == (403, f'persistentvolumeclaims "{name}" is forbidden: '
                                                             "only dynamically provisioned pvc can be resized and "
                                                             "the storageclass that provisions the pvc must support "
                                                             "resize")
    with pytest.raises(APIError) as caught:
        await grow(api, await bound_claim(api, "d", "elastic"), "500Mi")
    assert caught.value.code == 422  # shrinking: validation's "field can not be less than previous value"
