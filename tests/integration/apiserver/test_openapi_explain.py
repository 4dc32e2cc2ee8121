"""`kubectl explain` with the real kubectl 1.27 and 1.33 against kpy-apiserver's published OpenAPI: built-in kinds
print their fields, types and descriptions down nested types; the documents carry upstream's list extensions."""
from __future__ import annotations

import json


def test_explain_a_nested_field_of_a_deployment(kubectl):
    explained = kubectl("explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert "KIND:       Deployment" in explained and "VERSION:    v1" in explained
    assert "FIELD: rollingUpdate <RollingUpdateDeployment>" in explained
    assert "maxSurge\t<IntOrString>" in explained and "maxUnavailable\t<IntOrString>" in explained
    assert "The maximum number of pods that can be scheduled above the desired number of" in explained


def test_explain_marks_required_fields_and_lists(kubectl):
    spec = kubectl("explain", "deployment.spec").stdout
    assert "selector\t<LabelSelector> -required-" in spec and "template\t<PodTemplateSpec> -required-" in spec
    ports = kubectl("explain", "pod.spec.containers.ports").stdout
    assert "FIELD: ports <[]ContainerPort>" in ports
    assert "containerPort\t<integer> -required-" in ports
    kind = kubectl("explain", "pods").stdout
    assert "Pod is a collection of containers that can run on a host." in kind


def test_explain_of_a_missing_field_is_refused(kubectl):
    result = kubectl("explain", "deployment.spec.nonsense", check=False)
    assert result.returncode == 1 and 'field "nonsense" does not exist' in result.stderr


def test_published_v3_document_has_the_merge_extensions(apiserver):
    status, body = apiserver.get("/openapi/v3")
    assert status == 200
    url = json.loads(body)["paths"]["api/v1"]["serverRelativeURL"]
    status, body = apiserver.get(url)
    containers = json.loads(body)["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
