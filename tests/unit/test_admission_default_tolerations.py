"""DefaultTolerationSeconds admission: pods get 300 s NoExecute tolerations for not-ready and unreachable nodes
unless they tolerate those taints already; only pod creates are touched."""
import pytest
from test_admission_chain import ALICE, pod, request  # noqa: F401

from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.default_tolerations import DefaultTolerationSeconds

pytestmark = pytest.mark.anyio
NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 300}


async def _admit(obj, operation="CREATE", resource="pods"):
    chain = AdmissionChain([DefaultTolerationSeconds()], [])
    await chain.admit(operation, request("create", resource, "app"), obj, None, ALICE)
    return obj


async def test_a_pod_without_tolerations_gets_both_defaults():
    obj = await _admit(pod())
    assert obj["spec"]["tolerations"] == [NOT_READY, UNREACHABLE]


async def test_own_tolerations_are_kept_and_win():
    mine = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 5}
    other = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    obj = await _admit(pod(tolerations=[other, mine]))
    assert obj["spec"]["tolerations"] == [other, mine, NOT_READY]


@pytest.mark.parametrize("toleration", [{"operator": "Exists"}, {"key": "node.kubernetes.io/not-ready",
                                                                 "operator": "Exists"}],
                         ids=["tolerates-everything", "any-effect"])
async def test_broad_tolerations_count_as_tolerating(toleration):
    obj = await _admit(pod(tolerations=[toleration]))
    expected = [toleration] if "key" not in toleration else [toleration, UNREACHABLE]
    assert obj["spec"]["tolerations"] == expected


async def test_updates_and_other_resources_are_left_alone():
    assert "tolerations" not in (await _admit(pod(), operation="UPDATE"))["spec"]
    assert "tolerations" not in (await _admit(pod(), resource="replicasets"))["spec"]
