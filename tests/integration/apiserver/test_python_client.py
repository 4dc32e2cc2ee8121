"""The official `kubernetes` Python client against kpy-apiserver: CRUD, selectors and pagination, watch resumed
from a resourceVersion, patches."""
from __future__ import annotations

import itertools

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

_names = itertools.count()


@pytest.fixture(scope="module")
def api_client(apiserver):
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(apiserver.admin_kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core) -> str:
    name = f"py-{next(_names)}"
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.status.phase == "Active"
    return name


def _config_map(name: str, labels: dict | None = None, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def test_crud_of_config_maps_and_deployments(core, api_client, namespace):
    created = core.create_namespaced_config_map(namespace, _config_map("app", color="blue"))
    assert created.metadata.uid and created.metadata.resource_version
    read = core.read_namespaced_config_map("app", namespace)
    assert read.data == {"color": "blue"}
    read.data["color"] = "green"
    replaced = core.replace_namespaced_config_map("app", namespace, read)
    assert replaced.data == {"color": "green"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    core.delete_namespaced_config_map("app", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("app", namespace)
    assert missing.value.status == 404

    apps = client.AppsV1Api(api_client)
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": "web"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.25")]))
    deployment = apps.create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(selector=client.V1LabelSelector(match_labels={"app": "web"}),
                                     template=template)))
    assert deployment.spec.replicas == 1 and deployment.metadata.generation == 1
    assert deployment.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"


def test_conflicting_replace_raises_409(core, namespace):
    first = core.create_namespaced_config_map(namespace, _config_map("shared", a="1"))
    core.patch_namespaced_config_map("shared", namespace, {"data": {"a": "2"}})
    first.data["a"] = "3"
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("shared", namespace, first)
    assert conflict.value.status == 409 and conflict.value.reason == "Conflict"


def test_list_with_selectors_and_pagination(core, namespace):
    for index in range(5):
        core.create_namespaced_config_map(namespace, _config_map(f"cm-{index}", {"parity": "even" if index % 2 == 0
                                                                                 else "odd"}))
    even = core.list_namespaced_config_map(namespace, label_selector="parity=even")
    assert [item.metadata.name for item in even.items] == ["cm-0", "cm-2", "cm-4"]
    named = core.list_namespaced_config_map(namespace, field_selector="metadata.name=cm-3")
    assert [item.metadata.name for item in named.items] == ["cm-3"]

    pages, token = [], None
    while True:
        page = core.list_namespaced_config_map(namespace, limit=2, _continue=token, label_selector="parity")
        pages.append([item.metadata.name for item in page.items])
        token = page.metadata._continue
        if not token:
            break
    assert pages == [["cm-0", "cm-1"], ["cm-2", "cm-3"], ["cm-4"]]


def test_watch_resumes_from_a_resource_version(core, namespace):
    core.create_namespaced_config_map(namespace, _config_map("before"))
    listed = core.list_namespaced_config_map(namespace)
    core.create_namespaced_config_map(namespace, _config_map("after"))
    core.patch_namespaced_config_map("after", namespace, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("before", namespace)

    events = []
    stream = watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                  resource_version=listed.metadata.resource_version, timeout_seconds=5)
    for event in stream:
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 3:
            break
    assert events == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "before")]


def test_patch_types(core, namespace):
    core.create_namespaced_config_map(namespace, _config_map("patched", a="1"))
    merged = core.patch_namespaced_config_map("patched", namespace, {"data": {"b": "2"}})
    assert merged.data == {"a": "1", "b": "2"}
    json_patched = core.patch_namespaced_config_map("patched", namespace,
                                                    [{"op": "remove", "path": "/data/a"}])
    assert json_patched.data == {"b": "2"}
    applied = core.patch_namespaced_config_map(
        "patched", namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "patched"},
                               "data": {"c": "3"}}, field_manager="py-test", _content_type="application/apply-patch+yaml")
    assert applied.data == {"b": "2", "c": "3"}
    assert "py-test" in {entry.manager for entry in applied.metadata.managed_fields}
