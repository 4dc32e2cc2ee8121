"""The operations the OpenAPI documents publish, as upstream publishes them: path parameters on the path, the query
parameters of each kind of request with the client's descriptions, request bodies (the kind, DeleteOptions, Patch in
its four content types), responses with schemas, x-kubernetes-action and the GVK; the same in Swagger 2."""
from __future__ import annotations

from kpy_components.api import catalog
from kpy_components.apiserver.http import openapi, openapi_v2
from openapi_references import references

REGISTRY = catalog.default_registry()
REF = "#/components/schemas/"


def _names(parameters):
    return [p["name"] for p in parameters]


def test_a_named_path_declares_its_name_namespace_and_pretty():
    paths = openapi.v3_document(REGISTRY, "apps", "v1")["paths"]
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    name, namespace, pretty = item["parameters"]
    assert name == {"name": "name", "in": "path", "description": "name of the Deployment", "required": True,
                    "schema": {"type": "string", "uniqueItems": True}}
    assert namespace["in"] == "path" and namespace["required"] is True
    assert namespace["description"] == "object name and auth scope, such as for teams and projects"
    assert pretty["in"] == "query" and "pretty printed" in pretty["description"]
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}


def test_list_create_and_deletecollection_of_a_collection():
    item = openapi.v3_document(REGISTRY, "", "v1")["paths"]["/api/v1/namespaces/{namespace}/configmaps"]
    listing = item["get"]
    assert listing["operationId"] == "listCoreV1NamespacedConfigMap" and listing["x-kubernetes-action"] == "list"
    assert _names(listing["parameters"]) == ["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector",
                                             "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents",
                                             "timeoutSeconds", "watch"]
    assert {p["name"]: p["schema"]["type"] for p in listing["parameters"]}["limit"] == "integer"
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": REF + "io.k8s.api.core.v1.ConfigMapList"}
    create = item["post"]
    assert create["x-kubernetes-action"] == "post" and create["requestBody"]["required"] is True
    assert create["requestBody"]["content"]["*/*"]["schema"] == {"$ref": REF + "io.k8s.api.core.v1.ConfigMap"}
    assert set(create["responses"]) == {"200", "201", "202", "401"}
    collection = item["delete"]
    assert collection["x-kubernetes-action"] == "deletecollection"
    assert collection["operationId"] == "deleteCollectionCoreV1NamespacedConfigMap"
    assert collection["requestBody"]["content"]["*/*"]["schema"]["$ref"].endswith("meta.v1.DeleteOptions")
    assert "propagationPolicy" in _names(collection["parameters"])
    everywhere = openapi.v3_document(REGISTRY, "", "v1")["paths"]["/api/v1/configmaps"]
    assert everywhere["get"]["operationId"] == "listCoreV1ConfigMapForAllNamespaces"
    assert _names(everywhere["parameters"]) == ["pretty"]


def test_patch_accepts_the_four_patch_types_and_replace_the_kind():
    paths = openapi.v3_document(REGISTRY, "apps", "v1")["paths"]
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    patch = item["patch"]
    assert sorted(patch["requestBody"]["content"]) == ["application/apply-patch+yaml", "application/json-patch+json",
                                                       "application/merge-patch+json",
                                                       "application/strategic-merge-patch+json"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeploymentScale"
    assert patch["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert _names(patch["parameters"]) == ["dryRun", "fieldManager", "fieldValidation", "force"]
    replace = item["put"]
    assert replace["requestBody"]["content"]["*/*"]["schema"] == {"$ref": REF + "io.k8s.api.autoscaling.v1.Scale"}
    assert replace["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("autoscaling.v1.Scale")
    document = openapi.v3_document(REGISTRY, "apps", "v1")
    assert "io.k8s.api.autoscaling.v1.Scale" in document["components"]["schemas"]


def test_delete_answers_a_status_or_a_terminating_pod():
    paths = openapi.v3_document(REGISTRY, "", "v1")["paths"]
    pod = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"]
    assert pod["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("core.v1.Pod")
    assert _names(pod["parameters"]) == ["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"]
    assert pod["requestBody"]["required"] is False
    config_map = paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]["delete"]
    assert config_map["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("meta.v1.Status")


def test_logs_and_connections():
    paths = openapi.v3_document(REGISTRY, "", "v1")["paths"]
    log = paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]
    assert log["operationId"] == "readCoreV1NamespacedPodLog"
    assert "tailLines" in _names(log["parameters"])
    assert log["responses"]["200"]["content"]["text/plain"]["schema"] == {"type": "string"}
    execute = paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]
    assert execute["post"]["operationId"] == "connectCoreV1PostNamespacedPodExec"
    assert execute["post"]["x-kubernetes-action"] == "connect"
    assert execute["get"]["x-kubernetes-group-version-kind"]["kind"] == "PodExecOptions"
    assert _names(execute["get"]["parameters"]) == ["command", "container", "stderr", "stdin", "stdout", "tty"]
    eviction = paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert eviction["requestBody"]["content"]["*/*"]["schema"]["$ref"].endswith("policy.v1.Eviction")


def test_swagger_2_paths_carry_bodies_responses_and_path_parameters():
    document = openapi_v2.json_document(REGISTRY)
    item = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert _names(item["parameters"]) == ["name", "namespace", "pretty"]
    assert item["parameters"][0]["in"] == "path" and item["parameters"][0]["required"] is True
    replace = item["put"]
    assert replace["parameters"][0] == {"name": "body", "in": "body", "required": True,
                                        "schema": {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}}
    assert replace["responses"]["201"]["schema"] == {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}
    assert replace["x-kubernetes-action"] == "put"
    assert "application/merge-patch+json" in item["patch"]["consumes"]
    for path_item in document["paths"].values():
        for method, operation in path_item.items():
            if method == "parameters":
                continue
            for parameter in operation.get("parameters", []):
                reference = parameter.get("schema", {}).get("$ref", "")
                assert not reference or reference.removeprefix("#/definitions/") in document["definitions"]


def test_a_custom_resource_document_resolves_its_scale_status_and_list():
    from kpy_components.apiserver.crds.definitions import served_resources

    crd = {"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                               "statusReplicasPath": ".status.replicas"}},
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]}}
    registry = catalog.default_registry()
    for info in served_resources(crd):
        registry.add(info)
    document = openapi.v3_document(registry, "example.com", "v1")
    paths = document["paths"]
    scale = paths["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/scale"]["put"]
    assert scale["requestBody"]["content"]["*/*"]["schema"] == {"$ref": REF + "io.k8s.api.autoscaling.v1.Scale"}
    status = paths["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status"]["get"]
    assert status["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": REF + "com.example.v1.Widget"}
    listing = paths["/apis/example.com/v1/namespaces/{namespace}/widgets"]["get"]
    assert listing["operationId"] == "listExampleComV1NamespacedWidget"
    found = references(document, REF)
    assert "com.example.v1.WidgetList" in found
    assert found <= set(document["components"]["schemas"])
    swagger = openapi_v2.json_document(registry)
    assert references(swagger, "#/definitions/") <= set(swagger["definitions"])
    assert swagger["definitions"]["com.example.v1.WidgetList"]["properties"]["items"]["items"] == {
        "$ref": "#/definitions/com.example.v1.Widget"}
