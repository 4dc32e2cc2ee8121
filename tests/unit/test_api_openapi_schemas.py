"""The published OpenAPI schemas of the built-in kinds: derived from the type description field validation reads
(same fields), with descriptions from the client's models and list semantics from the merge table, every $ref
resolvable inside its own document."""
from __future__ import annotations

import json

import pytest

from kpy_components.api import catalog, openapi_schemas, patch, types
from kpy_components.apiserver.http import openapi, openapi_v2
from openapi_references import references

REGISTRY = catalog.default_registry()
GROUP_VERSIONS = REGISTRY.group_versions()


@pytest.mark.parametrize(("group", "version"), GROUP_VERSIONS, ids=lambda v: v or "core")
def test_every_reference_resolves_inside_its_document(group, version):
    document = openapi.v3_document(REGISTRY, group, version)
    names = set(document["components"]["schemas"])
    found = references(document, "#/components/schemas/")
    assert found and found <= names


def test_fields_are_those_field_validation_knows():
    document = openapi.v3_document(REGISTRY, "apps", "v1")
    schemas = document["components"]["schemas"]
    for message in openapi.kind_messages(REGISTRY, "apps", "v1"):
        for reached in openapi_schemas.reachable([message]):
            schema = schemas[openapi_schemas.schema_name(reached)]
            if reached in openapi_schemas._OWN_JSON:
                continue
            published, known = set(schema["properties"]), set(types.json_fields(reached))
            assert known <= published and published - known <= {"apiVersion", "kind"}, reached


def test_deployment_is_described_and_typed_as_upstream():
    schemas = openapi.v3_document(REGISTRY, "apps", "v1")["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "version": "v1",
                                                              "kind": "Deployment"}]
    assert deployment["description"] == "Deployment enables declarative updates for Pods and ReplicaSets."
    rolling = schemas["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"]
    assert rolling["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]
    assert rolling["description"].startswith("The maximum number of pods that can be scheduled above")
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["properties"]["replicas"]["type"] == "integer" and spec["properties"]["replicas"]["format"] == "int32"
    assert set(spec["required"]) == {"selector", "template"}
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"


def test_list_semantics_are_the_merge_tables():
    pod_spec = openapi.v3_document(REGISTRY, "", "v1")["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]
    for name, field in patch.SCHEMA["PodSpec"].items():
        if not isinstance(field, patch.ListField):
            continue
        published = pod_spec["properties"][name]
        assert published.get("x-kubernetes-list-map-keys", []) == list(field.keys)
        if field.strategy == "merge":
            assert published["x-kubernetes-patch-merge-key"] == field.patch_merge_key
    ports = openapi.v3_document(REGISTRY, "", "v1")["components"]["schemas"]["io.k8s.api.core.v1.Container"]
    assert ports["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert ports["properties"]["ports"]["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]


def test_swagger_2_definitions_use_definitions_references():
    document = openapi_v2.json_document(REGISTRY)
    strategy = document["definitions"]["io.k8s.api.apps.v1.DeploymentStrategy"]
    assert strategy["properties"]["rollingUpdate"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.RollingUpdateDeployment"
    json.dumps(document)  # serialisable as is
