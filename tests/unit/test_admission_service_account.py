"""ServiceAccount admission: default account, the kube-api-access projected volume and mounts as upstream, opt-outs,
image pull secrets, refusal of a missing account, and a real create through the registry."""
import pytest
from test_admission_chain import ALICE, api, create_through_registry, pod, request  # noqa: F401

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.service_account import MOUNT_PATH, ServiceAccountAdmission, token_volume

pytestmark = pytest.mark.anyio


async def _admit(api, obj, operation="CREATE", subresource=""):
    chain = AdmissionChain([ServiceAccountAdmission(api)], [])
    await chain.admit(operation, request("create", "pods", "app", subresource=subresource), obj, None, ALICE)
    return obj


async def test_default_account_and_token_volume_mounted_everywhere(api):
    obj = pod(initContainers=[{"name": "init", "image": "busybox"}])
    await _admit(api, obj)
    spec = obj["spec"]
    assert spec["serviceAccountName"] == "default"
    [volume] = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == len("kube-api-access-") + 5
    assert volume == token_volume(volume["name"])
    assert volume["projected"]["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    mount = {"name": volume["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["initContainers"][0]["volumeMounts"] == [mount]


async def test_a_container_with_its_own_mount_at_the_path_is_left_alone(api):
    own = {"name": "mine", "mountPath": MOUNT_PATH}
    obj = pod(containers=[{"name": "a", "image": "x", "volumeMounts": [own]}, {"name": "b", "image": "x"}])
    await _admit(api, obj)
    assert obj["spec"]["containers"][0]["volumeMounts"] == [own]
    assert obj["spec"]["containers"][1]["volumeMounts"][0]["mountPath"] == MOUNT_PATH
    only_own = pod(containers=[{"name": "a", "image": "x", "volumeMounts": [own]}])
    await _admit(api, only_own)
    assert "volumes" not in only_own["spec"]


@pytest.mark.parametrize("pod_setting, account_setting, mounted", [
    (None, None, True), (False, None, False), (None, False, False), (True, False, True), (False, True, False),
])
async def test_automount_pod_setting_wins_over_the_accounts(api, pod_setting, account_setting, mounted):
    account = {"metadata": {"name": "robot"}}
    if account_setting is not None:
        account["automountServiceAccountToken"] = account_setting
    await api.create("", "serviceaccounts", "app", account)
    obj = pod(serviceAccountName="robot")
    if pod_setting is not None:
        obj["spec"]["automountServiceAccountToken"] = pod_setting
    await _admit(api, obj)
    assert ("volumes" in obj["spec"]) is mounted


async def test_image_pull_secrets_come_from_the_account_when_the_pod_names_none(api):
    await api.create("", "serviceaccounts", "app", {"metadata": {"name": "puller"},
                                                    "imagePullSecrets": [{"name": "registry"}]})
    obj = await _admit(api, pod(serviceAccountName="puller"))
    assert obj["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    own = await _admit(api, pod(serviceAccountName="puller", imagePullSecrets=[{"name": "mine"}]))
    assert own["spec"]["imagePullSecrets"] == [{"name": "mine"}]


async def test_missing_account_is_refused_with_upstreams_words(api):
    with pytest.raises(APIError) as caught:
        await _admit(api, pod(serviceAccountName="ghost"))
    assert caught.value.code == 403
    assert caught.value.message == ('pods "web" is forbidden: error looking up service account app/ghost: '
                                    'serviceaccount "ghost" not found')


async def test_mirror_pods_updates_and_subresources_are_not_touched(api):
    mirror = pod()
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    await _admit(api, mirror)
    assert "serviceAccountName" not in mirror["spec"]
    updated = await _admit(api, pod(), operation="UPDATE")
    assert "serviceAccountName" not in updated["spec"]
    binding = {"metadata": {"name": "web"}, "target": {"kind": "Node", "name": "n1"}}
    assert await _admit(api, binding, subresource="binding") == {"metadata": {"name": "web"},
                                                                 "target": {"kind": "Node", "name": "n1"}}


async def test_a_pod_created_through_the_registry_is_stored_with_the_mount(api):
    chain = AdmissionChain([ServiceAccountAdmission(api)], [])
    stored = await create_through_registry(api, chain.admit, ALICE, pod())
    assert stored["spec"]["serviceAccountName"] == "default"
    assert stored["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == MOUNT_PATH
    assert (await api.get("", "pods", "app", "web"))["spec"]["volumes"] == stored["spec"]["volumes"]
