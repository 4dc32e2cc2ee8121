"""StorageObjectInUseProtection admission (new claims and volumes get their protection finalizer, once) and the
protection controllers' notion of use."""
import pytest
from test_admission_chain import ALICE, request

from kpy_components.api.storage import PV_PROTECTION, PVC_PROTECTION
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.storage_protection import StorageObjectInUseProtection
from kpy_components.controller_manager.controllers.storageprotection import uses_claim

pytestmark = pytest.mark.anyio


async def admitted(resource: str, obj: dict, operation: str = "CREATE", group: str = "") -> dict:
    chain = AdmissionChain([StorageObjectInUseProtection()], [])
    await chain.admit(operation, request(operation.lower(), resource, "app", group=group), obj, None, ALICE)
    return obj


async def test_new_claims_and_volumes_get_their_finalizer_once():
    claim = await admitted("persistentvolumeclaims", {"metadata": {"name": "c", "finalizers": ["example.com/x"]}})
    assert claim["metadata"]["finalizers"] == ["example.com/x", PVC_PROTECTION]
    volume = await admitted("persistentvolumes", {"metadata": {"name": "v", "finalizers": [PV_PROTECTION]}})
    assert volume["metadata"]["finalizers"] == [PV_PROTECTION]
    updated = await admitted("persistentvolumeclaims", {"metadata": {"name": "c"}}, operation="UPDATE")
    assert "finalizers" not in updated["metadata"]
    other = await admitted("configmaps", {"metadata": {"name": "c"}})
    assert "finalizers" not in other["metadata"]


def test_a_claim_is_used_by_scheduled_unfinished_pods_only():
    def pod(node: str = "n1", phase: str = "Running", claim: str = "data") -> dict:
        return {"spec": {"nodeName": node, "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}},
                                                       {"name": "e", "emptyDir": {}}]}, "status": {"phase": phase}}
    assert uses_claim(pod(), "data")
    assert not uses_claim(pod(claim="other"), "data")
    assert not uses_claim(pod(node=""), "data")
    assert not uses_claim(pod(phase="Succeeded"), "data") and not uses_claim(pod(phase="Failed"), "data")
