"""The admission chain (mutating before validating, in order) and NamespaceLifecycle, against the real registry on
SQLite. The fixtures here serve the other test_admission_* modules too."""
import pytest

from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain, Attributes, forbidden
from kpy_components.apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from kpy_components.apiserver.http.context import RequestInfo, User
from kpy_components.apiserver.registry.api import API
from kpy_components.apiserver.registry.context import WriteContext
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio
ALICE = User("alice", ("system:authenticated",))


@pytest.fixture
async def api(tmp_path):
    storage = SqliteStorage(tmp_path / "db.sqlite")
    api = API(default_registry(), storage, storage, "10.32.0.0/16")
    for namespace in ("default", "kube-system", "kube-public", "app"):
        await api.create("", "namespaces", "", {"metadata": {"name": namespace}})
    await api.create("", "serviceaccounts", "app", {"metadata": {"name": "default"}})
    yield api
    await storage.close()


def request(verb: str, resource: str, namespace: str = "", name: str = "", group: str = "",
            subresource: str = "") -> RequestInfo:
    return RequestInfo(verb=verb, path="/x", is_resource_request=True, api_group=group, api_version="v1",
                       resource=resource, subresource=subresource, namespace=namespace, name=name)


def pod(name: str = "web", namespace: str = "app", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec}}


async def create_through_registry(api: API, admit, user: User, obj: dict, plural: str = "pods",
                                  group: str = "") -> dict:
    """A create as the HTTP layer runs it: defaulting, admission, validation, storage."""
    namespace = obj["metadata"]["namespace"]
    ctx = WriteContext(user=user, info=request("create", plural, namespace, group=group), admit=admit)
    return await api.store(group, plural).create(ctx, namespace, obj)


# --- the chain -------------------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self, name, log):
        self.name, self.log = name, log

    async def admit(self, attributes):
        self.log.append(f"admit {self.name}")
        attributes.obj.setdefault("metadata", {}).setdefault("labels", {})[self.name] = "seen"

    async def validate(self, attributes):
        self.log.append(f"validate {self.name}:{sorted(attributes.obj['metadata']['labels'])}")


async def test_mutating_plugins_run_before_validating_ones_in_order():
    log = []
    chain = AdmissionChain([Recorder("a", log), Recorder("b", log)], [Recorder("c", log)])
    await chain.admit("CREATE", request("create", "pods", "app"), pod(), None, ALICE)
    assert log == ["admit a", "admit b", "validate c:['a', 'b']"]


def test_forbidden_names_the_object_as_upstream():
    create = Attributes("CREATE", request("create", "pods", "app"), pod("web"), None, ALICE)
    assert forbidden(create, "no").message == 'pods "web" is forbidden: no'
    generated = Attributes("CREATE", request("create", "pods", "app"),
                           {"metadata": {"generateName": "web-"}}, None, ALICE)
    assert forbidden(generated, "no").message == 'pods "web-" is forbidden: no'
    grouped = Attributes("DELETE", request("delete", "deployments", "app", "d", group="apps"), None, None, ALICE)
    error = forbidden(grouped, "no")
    assert error.message == 'deployments.apps "d" is forbidden: no'
    assert error.status()["details"] == {"name": "d", "kind": "deployments", "group": "apps"}


# --- NamespaceLifecycle --------------------------------------------------------------------------------------------

async def test_create_in_a_missing_namespace_is_404(api):
    chain = AdmissionChain([NamespaceLifecycle(api)], [])
    with pytest.raises(APIError) as caught:
        await chain.admit("CREATE", request("create", "pods", "nowhere"), pod(namespace="nowhere"), None, ALICE)
    assert caught.value.code == 404 and caught.value.message == 'namespaces "nowhere" not found'


async def test_create_in_a_terminating_namespace_is_403_with_its_cause(api):
    namespace = await api.get("", "namespaces", "", "app")
    namespace["status"] = {"phase": "Terminating"}
    await api.update_status("", "namespaces", "", namespace)
    chain = AdmissionChain([NamespaceLifecycle(api)], [])
    with pytest.raises(APIError) as caught:
        await chain.admit("CREATE", request("create", "configmaps", "app"),
                          {"metadata": {"name": "c", "namespace": "app"}}, None, ALICE)
    assert caught.value.code == 403
    assert caught.value.message == ('configmaps "c" is forbidden: unable to create new content in namespace app '
                                    "because it is being terminated")
    assert caught.value.details["causes"] == [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                               "message": "namespace app is being terminated"}]
    # updates and deletes still work, and access reviews are never refused
    await chain.admit("UPDATE", request("update", "configmaps", "app", "c"), {"metadata": {"name": "c"}},
                      {"metadata": {"name": "c"}}, ALICE)
    await chain.admit("CREATE", request("create", "localsubjectaccessreviews", "gone",
                                        group="authorization.k8s.io"), {"spec": {}}, None, ALICE)


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_system_namespaces_cannot_be_deleted(api, name):
    chain = AdmissionChain([NamespaceLifecycle(api)], [])
    with pytest.raises(APIError) as caught:
        await chain.admit("DELETE", request("delete", "namespaces", name=name), None,
                          await api.get("", "namespaces", "", name), ALICE)
    assert caught.value.code == 403
    assert caught.value.message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'


async def test_other_namespaces_and_cluster_scoped_objects_pass(api):
    chain = AdmissionChain([NamespaceLifecycle(api)], [])
    await chain.admit("DELETE", request("delete", "namespaces", name="app"), None, None, ALICE)
    await chain.admit("CREATE", request("create", "nodes"), {"metadata": {"name": "n1"}}, None, ALICE)
    await chain.admit("CREATE", request("create", "pods", "app"), pod(), None, ALICE)


async def test_lifecycle_runs_inside_a_real_registry_create(api):
    chain = AdmissionChain([NamespaceLifecycle(api)], [])
    stored = await create_through_registry(api, chain.admit, ALICE, {"apiVersion": "v1", "kind": "ConfigMap",
                                                                     "metadata": {"name": "c", "namespace": "app"}},
                                           plural="configmaps")
    assert stored["metadata"]["resourceVersion"]
