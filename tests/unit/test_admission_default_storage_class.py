"""DefaultStorageClass admission inside a real registry create: a claim without a class gets the default class
(the newest of several defaults), an explicit class or "" or the beta annotation is left alone, no default leaves
the claim classless."""
import pytest
from test_admission_chain import ALICE, api, create_through_registry  # noqa: F401

from kpy_components.api import storage
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.default_storage_class import DefaultStorageClass

pytestmark = pytest.mark.anyio


def claim(name: str, annotations: dict | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "app", "annotations": annotations or {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


async def add_class(api, name: str, default: str | None = None) -> None:
    annotations = {storage.DEFAULT_CLASS_ANNOTATION: default} if default is not None else {}
    await api.create(storage.STORAGE_GROUP, "storageclasses", "", {
        "metadata": {"name": name, "annotations": annotations}, "provisioner": "example.com/x"})


async def create(api, obj: dict) -> dict:
    admit = AdmissionChain([DefaultStorageClass(api)], []).admit
    return await create_through_registry(api, admit, ALICE, obj, plural="persistentvolumeclaims")


async def test_no_default_class_leaves_the_claim_classless(api):
    await add_class(api, "plain", default="false")
    assert "storageClassName" not in (await create(api, claim("a")))["spec"]


async def test_the_default_class_is_filled_in_unless_a_class_was_chosen(api):
    await add_class(api, "standard", default="true")
    await add_class(api, "fast")
    assert (await create(api, claim("a")))["spec"]["storageClassName"] == "standard"
    assert (await create(api, claim("b", storageClassName="fast")))["spec"]["storageClassName"] == "fast"
    assert (await create(api, claim("c", storageClassName="")))["spec"]["storageClassName"] == ""
    beta = await create(api, claim("d", annotations={storage.BETA_CLASS_ANNOTATION: "fast"}))
    assert "storageClassName" not in beta["spec"]


async def test_several_defaults_the_newest_wins(api):
    """'newer' is created second (a later or the same second; within one second the first name wins)."""
    await add_class(api, "older", default="true")
    await api.create(storage.STORAGE_GROUP, "storageclasses", "", {
        "metadata": {"name": "newer", "annotations": {storage.BETA_DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": "example.com/x"})
    assert (await create(api, claim("a")))["spec"]["storageClassName"] == "newer"
