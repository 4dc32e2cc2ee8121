"""Priority admission and the PriorityClass strategy: pods get their class's priority and preemption policy (or
the global default's, or 0), unknown classes and disagreeing values are refused with upstream's words, at most one
class is the global default, the system classes cannot be deleted, and class validation (system- prefix, the
user-definable maximum, immutable value and preemptionPolicy)."""
import pytest
from test_admission_chain import ALICE, api, create_through_registry, pod, request  # noqa: F401

from kpy_components.api import scheduling
from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.priority import PriorityAdmission
from kpy_components.apiserver.registry.strategies.priorityclasses import PriorityClassStrategy

pytestmark = pytest.mark.anyio
GROUP = scheduling.GROUP


def priority_class(name: str, value: int, **fields) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **fields}


@pytest.fixture
async def classes(api):
    for obj in scheduling.system_priority_classes():
        await api.create(GROUP, "priorityclasses", "", obj)
    await api.create(GROUP, "priorityclasses", "", priority_class("high", 1000))
    await api.create(GROUP, "priorityclasses", "", priority_class("gentle", 50, preemptionPolicy="Never"))
    return api


def chain(api) -> AdmissionChain:
    plugin = PriorityAdmission(api)
    return AdmissionChain([plugin], [plugin])


async def _create_pod(api, **spec) -> dict:
    return await create_through_registry(api, chain(api).admit, ALICE, pod(**spec))


async def test_a_pod_gets_its_class_priority_and_policy(classes):
    stored = await _create_pod(classes, priorityClassName="gentle")
    assert (stored["spec"]["priority"], stored["spec"]["preemptionPolicy"]) == (50, "Never")
    critical = await create_through_registry(classes, chain(classes).admit, ALICE,
                                             pod("dns", priorityClassName="system-cluster-critical"))
    assert critical["spec"]["priority"] == 2000000000


async def test_without_a_class_a_pod_gets_zero_or_the_global_default(classes):
    stored = await _create_pod(classes)
    assert (stored["spec"]["priority"], stored["spec"]["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert "priorityClassName" not in stored["spec"]
    await classes.create(GROUP, "priorityclasses", "", priority_class("everyone", 7, globalDefault=True))
    later = await create_through_registry(classes, chain(classes).admit, ALICE, pod("later"))
    assert (later["spec"]["priority"], later["spec"]["priorityClassName"]) == (7, "everyone")


async def test_an_unknown_class_is_refused_with_upstreams_words(classes):
    with pytest.raises(APIError) as refused:
        await _create_pod(classes, priorityClassName="foo")
    assert (refused.value.code, refused.value.message) == (
        403, 'pods "web" is forbidden: no PriorityClass with name foo was found')


@pytest.mark.parametrize(("spec", "message"), [
    ({"priority": 3}, "the integer value of priority (3) must not be provided in pod spec; priority admission "
                      "controller computed 1000 from the given PriorityClass name"),
    ({"preemptionPolicy": "Never"}, "the string value of PreemptionPolicy (Never) must not be provided in pod spec; "
                                    "priority admission controller computed PreemptLowerPriority from the given "
                                    "PriorityClass name"),
], ids=["priority", "preemption-policy"])
async def test_values_disagreeing_with_the_class_are_refused(classes, spec, message):
    with pytest.raises(APIError) as refused:
        await _create_pod(classes, priorityClassName="high", **spec)
    assert refused.value.message == f'pods "web" is forbidden: {message}'
    agreeing = await _create_pod(classes, priorityClassName="high", priority=1000)
    assert agreeing["spec"]["priority"] == 1000


async def test_an_update_keeps_the_priority_it_would_drop(classes):
    old = {"spec": {"priority": 1000}}
    new = pod()
    await chain(classes).admit("UPDATE", request("update", "pods", "app", "web"), new, old, ALICE)
    assert new["spec"]["priority"] == 1000


async def test_only_one_class_may_be_the_global_default(classes):
    admit = chain(classes).admit
    first = await create_through_registry(classes, admit, ALICE, _cluster(priority_class("a", 1, globalDefault=True)),
                                          "priorityclasses", GROUP)
    assert first["globalDefault"] is True
    with pytest.raises(APIError) as refused:
        await create_through_registry(classes, admit, ALICE, _cluster(priority_class("b", 2, globalDefault=True)),
                                      "priorityclasses", GROUP)
    assert refused.value.message == ('priorityclasses.scheduling.k8s.io "b" is forbidden: PriorityClass a is already '
                                     "marked as default. Only one default can exist")
    await admit("UPDATE", request("update", "priorityclasses", "", "a", group=GROUP), first, first, ALICE)


async def test_system_classes_cannot_be_deleted_others_can(classes):
    admit = chain(classes).admit
    current = await classes.get(GROUP, "priorityclasses", "", "system-node-critical")
    with pytest.raises(APIError) as refused:
        await admit("DELETE", request("delete", "priorityclasses", "", "system-node-critical", group=GROUP), None,
                    current, ALICE)
    assert (refused.value.code, refused.value.message) == (
        403, 'priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a system priority '
             "class and cannot be deleted")
    await admit("DELETE", request("delete", "priorityclasses", "", "high", group=GROUP), None,
                await classes.get(GROUP, "priorityclasses", "", "high"), ALICE)


def _cluster(obj: dict) -> dict:
    """create_through_registry reads metadata.namespace; cluster-scoped objects have ''."""
    obj["metadata"]["namespace"] = ""
    return obj


# --- the strategy ---------------------------------------------------------------------------------------------

@pytest.fixture
def strategy() -> PriorityClassStrategy:
    return PriorityClassStrategy(default_registry().get(GROUP, "v1", "priorityclasses"))


def _messages(causes) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


@pytest.mark.parametrize(("obj", "expected"), [
    (priority_class("ok", 1000000000), []),
    (priority_class("big", 1000000001), ["value: Forbidden: maximum allowed value of a user defined priority is "
                                         "1000000000"]),
    (priority_class("system-foo", 5), ["metadata.name: Forbidden: priority class names with 'system-' prefix are "
                                       "reserved for system use only. error: system-foo is not a known system "
                                       "priority class"]),
    (priority_class("system-node-critical", 5), ["metadata.name: Forbidden: priority class names with 'system-' "
                                                 "prefix are reserved for system use only. error: value of "
                                                 "system-node-critical PriorityClass must be 2000001000"]),
    (priority_class("system-cluster-critical", 2000000000), []),
    (priority_class("odd", 1, preemptionPolicy="Sometimes"), [
        'preemptionPolicy: Unsupported value: "Sometimes": supported values: "PreemptLowerPriority", "Never"']),
    (priority_class("text", "high"), ['value: Invalid value: "high": must be a 32-bit integer']),
], ids=["max", "over-max", "system-prefix", "system-wrong-value", "system-ok", "bad-policy", "not-a-number"])
def test_validation(strategy, obj, expected):
    strategy.default(obj)
    assert _messages(strategy.validate(obj)) == expected


def test_value_and_policy_are_immutable(strategy):
    old = priority_class("x", 1)
    strategy.default(old)
    new = priority_class("x", 2, preemptionPolicy="Never", description="changed")
    assert _messages(strategy.validate_immutable(new, old)) == [
        "value: Forbidden: may not be changed in an update.",
        'preemptionPolicy: Invalid value: "Never": field is immutable']
    assert strategy.validate_immutable({**old, "description": "changed"}, old) == []
