"""LimitRanger: defaults from LimitRange objects (with LimitRange defaulting), the annotation recording them, and
min/max/ratio per Container and per Pod refused with upstream's 403 wording; quantities as Kubernetes prints them."""
import pytest
from test_admission_chain import ALICE, api, create_through_registry, pod, request  # noqa: F401

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.limit_ranger import LimitRanger
from kpy_components.api.quantity import Quantity, QuantityError

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("text, canonical", [
    ("100m", "100m"), ("2000m", "2"), ("0.5", "500m"), ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1.5Gi", "1536Mi"),
    ("100M", "100M"), ("1500000", "1500k"), ("129e6", "129e6"), ("0", "0"), ("1n", "1n"), ("0.0000000001", "1n"),
    (2, "2"), (0.25, "250m"),
])
def test_quantities_print_as_kubernetes_does(text, canonical):
    assert str(Quantity.parse(text)) == canonical


def test_quantities_compare_across_units_and_refuse_garbage():
    assert Quantity.parse("1") == Quantity.parse("1000m")
    assert Quantity.parse("1Gi") > Quantity.parse("1G")
    assert Quantity.parse("500m") + Quantity.parse("0.5") == Quantity.parse("1")
    for bad in ("1.2.3", "ten", "1Xi", "", True):
        with pytest.raises(QuantityError):
            Quantity.parse(bad)


async def _limit_range(api, *items):
    await api.create("", "limitranges", "app", {"metadata": {"name": "limits"}, "spec": {"limits": list(items)}})


async def _admit(api, obj):
    ranger = LimitRanger(api)
    await AdmissionChain([ranger], [ranger]).admit("CREATE", request("create", "pods", "app"), obj, None, ALICE)
    return obj


def _with_resources(**resources):
    return pod(containers=[{"name": "app", "image": "nginx", "resources": resources}])


async def test_container_defaults_are_applied_and_recorded(api):
    await _limit_range(api, {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                             "defaultRequest": {"cpu": "100m"}})
    obj = await _admit(api, pod(initContainers=[{"name": "init", "image": "busybox",
                                                 "resources": {"limits": {"cpu": "200m"}}}]))
    assert obj["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"},
                                                         "requests": {"cpu": "100m", "memory": "256Mi"}}
    assert obj["spec"]["initContainers"][0]["resources"]["limits"] == {"cpu": "200m", "memory": "256Mi"}
    assert obj["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app; "
        "cpu, memory request for init container init; memory limit for init container init")


async def test_max_becomes_the_default_limit_and_min_the_default_request(api):
    await _limit_range(api, {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}})
    obj = await _admit(api, pod())
    assert obj["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"},
                                                         "requests": {"cpu": "1", "memory": "64Mi"}}


async def test_values_inside_the_range_pass_through_the_registry(api):
    await _limit_range(api, {"type": "Container", "min": {"cpu": "50m"}, "max": {"cpu": "1"}})
    ranger = LimitRanger(api)
    chain = AdmissionChain([ranger], [ranger])
    stored = await create_through_registry(api, chain.admit, ALICE,
                                           _with_resources(requests={"cpu": "100m"}, limits={"cpu": "500m"}))
    assert stored["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}}


@pytest.mark.parametrize("item, resources, message", [
    ({"type": "Container", "max": {"cpu": "1"}}, {"limits": {"cpu": "2"}, "requests": {"cpu": "100m"}},
     'pods "web" is forbidden: maximum cpu usage per Container is 1, but limit is 2'),
    ({"type": "Container", "max": {"cpu": "1"}}, {"limits": {"cpu": "1"}, "requests": {"cpu": "1500m"}},
     'pods "web" is forbidden: maximum cpu usage per Container is 1, but request is 1500m'),
    ({"type": "Container", "min": {"memory": "100Mi"}}, {"requests": {"memory": "50Mi"}},
     'pods "web" is forbidden: minimum memory usage per Container is 100Mi, but request is 50Mi'),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
     {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}},
     'pods "web" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000'),
    ({"type": "Pod", "max": {"memory": "1Gi"}}, {"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}},
     # Pod totals are summed as plain decimal quantities upstream, so they print without a binary suffix
     'pods "web" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 2147483648'),
])
async def test_violations_are_refused_with_upstreams_words(api, item, resources, message):
    await _limit_range(api, item)
    with pytest.raises(APIError) as caught:
        await _admit(api, _with_resources(**resources))
    assert caught.value.code == 403 and caught.value.message == message


async def test_several_violations_are_listed_in_brackets(api):
    await _limit_range(api, {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}})
    with pytest.raises(APIError) as caught:
        await _admit(api, _with_resources(limits={"cpu": "2", "memory": "2Gi"}))
    assert caught.value.message == ('pods "web" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, '
                                    "maximum memory usage per Container is 1Gi, but limit is 2Gi]")


async def test_pod_totals_add_the_containers(api):
    await _limit_range(api, {"type": "Pod", "max": {"cpu": "1"}})
    two = pod(containers=[{"name": c, "image": "x", "resources": {"limits": {"cpu": "600m"}}} for c in "ab"])
    with pytest.raises(APIError) as caught:
        await _admit(api, two)
    assert caught.value.message == 'pods "web" is forbidden: maximum cpu usage per Pod is 1, but limit is 1200m'


async def test_no_limit_range_changes_nothing(api):
    obj = await _admit(api, pod())
    assert obj == pod()
