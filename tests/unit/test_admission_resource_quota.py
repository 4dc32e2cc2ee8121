"""ResourceQuota: counts and compute against hard limits with upstream's 403 wording, "must specify" for compute
quotas, scopes, usage counted from live objects, and quota status written back — through the real registry."""
import pytest
from test_admission_chain import ALICE, api, create_through_registry, pod, request  # noqa: F401

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.quota_usage import pod_usage
from kpy_components.apiserver.admission.resource_quota import ResourceQuotaAdmission

pytestmark = pytest.mark.anyio


async def _quota(api, name="q", scopes=None, **hard):
    spec = {"hard": {key.replace("_", "."): value for key, value in hard.items()}}
    if scopes:
        spec["scopes"] = scopes
    return await api.create("", "resourcequotas", "app", {"metadata": {"name": name}, "spec": spec})


def _chain(api):
    return AdmissionChain([], [ResourceQuotaAdmission(api, _writer(api))])


def _writer(api):
    async def write(quota):
        return await api.update_status("", "resourcequotas", "app", quota)
    return write


def _sized(name, cpu="100m", memory="64Mi"):
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}
    return pod(name, containers=[{"name": "app", "image": "nginx", "resources": resources}])


async def _create(api, obj, plural="pods"):
    return await create_through_registry(api, _chain(api).admit, ALICE, obj, plural=plural)


async def test_pod_count_limit_and_message(api):
    await _quota(api, pods="2")
    await _create(api, pod("a"))
    await _create(api, pod("b"))
    with pytest.raises(APIError) as caught:
        await _create(api, pod("c"))
    assert caught.value.code == 403 and caught.value.reason == "Forbidden"
    assert caught.value.message == ('pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, '
                                    "limited: pods=2")
    assert [p["metadata"]["name"] for p in await api.list("", "pods", "app")] == ["a", "b"]


async def test_quota_status_is_written_with_hard_and_used(api):
    await _quota(api, pods="5", requests_cpu="1", limits_memory="1Gi")
    await _create(api, _sized("a", cpu="250m", memory="128Mi"))
    await _create(api, _sized("b", cpu="250m", memory="128Mi"))
    status = (await api.get("", "resourcequotas", "app", "q"))["status"]
    assert status["hard"] == {"pods": "5", "requests.cpu": "1", "limits.memory": "1Gi"}
    assert status["used"] == {"pods": "2", "requests.cpu": "500m", "limits.memory": "256Mi"}


async def test_compute_quota_refuses_what_does_not_fit(api):
    await _quota(api, name="compute", requests_cpu="1", requests_memory="1Gi")
    await _create(api, _sized("a", cpu="800m", memory="512Mi"))
    with pytest.raises(APIError) as caught:
        await _create(api, _sized("b", cpu="300m", memory="256Mi"))
    assert caught.value.message == ('pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=300m, '
                                    "used: requests.cpu=800m, limited: requests.cpu=1")


async def test_compute_quota_requires_every_container_to_say_what_it_needs(api):
    await _quota(api, name="compute", requests_cpu="1", limits_memory="1Gi")
    obj = pod("p", containers=[{"name": "a", "image": "x"},
                               {"name": "b", "image": "x", "resources": {"requests": {"cpu": "100m"}}}])
    with pytest.raises(APIError) as caught:
        await _chain(api).admit("CREATE", request("create", "pods", "app"), obj, None, ALICE)
    assert caught.value.message == ('pods "p" is forbidden: failed quota: compute: must specify limits.memory for: '
                                    "a,b; requests.cpu for: a")


async def test_object_counts_for_other_kinds(api):
    await _quota(api, configmaps="1", **{"count/secrets": "0"})
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one", "namespace": "app"}}
    await _create(api, configmap, plural="configmaps")
    with pytest.raises(APIError) as caught:
        await _create(api, {**configmap, "metadata": {"name": "two", "namespace": "app"}}, plural="configmaps")
    assert caught.value.message == ('configmaps "two" is forbidden: exceeded quota: q, requested: configmaps=1, '
                                    "used: configmaps=1, limited: configmaps=1")
    with pytest.raises(APIError) as caught:
        await _create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "app"}},
                      plural="secrets")
    assert "requested: count/secrets=1, used: count/secrets=0, limited: count/secrets=0" in caught.value.message


async def test_usage_follows_live_objects_so_deleted_and_finished_pods_free_quota(api):
    await _quota(api, pods="1")
    await _create(api, pod("a"))
    done = await api.get("", "pods", "app", "a")
    done["status"] = {"phase": "Succeeded"}
    await api.update_status("", "pods", "app", done)
    await _create(api, pod("b"))  # a finished pod no longer counts
    await api.storage.delete("/registry/pods/app/b")
    await _create(api, pod("c"))
    assert (await api.get("", "resourcequotas", "app", "q"))["status"]["used"] == {"pods": "1"}


async def test_scoped_quota_only_counts_matching_pods(api):
    await _quota(api, name="best-effort", scopes=["BestEffort"], pods="1")
    await _create(api, pod("a"))
    await _create(api, _sized("sized-1"))
    await _create(api, _sized("sized-2"))
    with pytest.raises(APIError) as caught:
        await _create(api, pod("b"))
    assert "exceeded quota: best-effort" in caught.value.message


async def test_updates_subresources_and_unquoted_namespaces_pass(api):
    await _quota(api, pods="0")
    chain = _chain(api)
    await chain.admit("UPDATE", request("update", "pods", "app", "a"), pod("a"), pod("a"), ALICE)
    await chain.admit("CREATE", request("create", "pods", "app", "a", subresource="eviction"), {"metadata": {}},
                      None, ALICE)
    await chain.admit("CREATE", request("create", "pods", "default"), pod("a", namespace="default"), None, ALICE)


def test_pod_usage_takes_the_largest_init_container_when_it_exceeds_the_sum():
    obj = _sized("p", cpu="100m")
    obj["spec"]["initContainers"] = [{"name": "init", "image": "x", "resources": {"requests": {"cpu": "1"}}}]
    charges = pod_usage(obj)
    assert str(charges["requests.cpu"]) == "1" and str(charges["cpu"]) == "1"
    assert str(charges["limits.cpu"]) == "100m" and str(charges["count/pods"]) == "1"
