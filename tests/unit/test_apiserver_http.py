"""Request parsing, content negotiation, discovery documents and OpenAPI encodings of the HTTP layer."""
from __future__ import annotations

import json

import pytest
import yaml

from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.apiserver.http import discovery, negotiation, openapi, openapi_v2
from kpy_components.apiserver.http.routing import request_info


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "", "v1", "pods", "", "default", "")),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ("watch", "", "v1", "pods", "", "default", "")),
    ("GET", "/api/v1/pods", {}, ("list", "", "v1", "pods", "", "", "")),
    ("POST", "/apis/apps/v1/namespaces/ns/deployments", {}, ("create", "apps", "v1", "deployments", "", "ns", "")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale", {},
     ("patch", "apps", "v1", "deployments", "scale", "ns", "web")),
    ("DELETE", "/api/v1/namespaces/ns/configmaps", {}, ("deletecollection", "", "v1", "configmaps", "", "ns", "")),
    ("GET", "/api/v1/namespaces/foo", {}, ("get", "", "v1", "namespaces", "", "foo", "foo")),
    ("PUT", "/api/v1/namespaces/foo/finalize", {}, ("update", "", "v1", "namespaces", "finalize", "foo", "foo")),
    ("GET", "/api/v1/nodes/node1/status", {}, ("get", "", "v1", "nodes", "status", "", "node1")),
    ("POST", "/api/v1/namespaces/a/pods/p/eviction", {}, ("create", "", "v1", "pods", "eviction", "a", "p")),
])
def test_resource_requests_are_parsed_as_kubernetes_does(method, path, query, expected):
    info = request_info(method, path, query)
    assert info.is_resource_request and info.path == path
    assert (info.verb, info.api_group, info.api_version, info.resource, info.subresource, info.namespace,
            info.name) == expected


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version", "/readyz",
                                  "/openapi/v3/apis/apps/v1"])
def test_non_resource_requests(path):
    info = request_info("GET", path, {})
    assert not info.is_resource_request and info.verb == "get"


def test_table_and_aggregated_discovery_accept_headers():
    table = negotiation.parse_accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;"
                                     "v=v1beta1;g=meta.k8s.io,application/json")
    assert negotiation.wants_table(table) and negotiation.table_version(table) == "v1"
    assert not negotiation.wants_table(negotiation.parse_accept("application/json"))
    assert not negotiation.wants_table(negotiation.parse_accept(None))
    v2 = negotiation.parse_accept("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                                  "application/json")
    assert negotiation.aggregated_discovery(v2) == (
        "v2", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    beta = negotiation.parse_accept("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")
    assert negotiation.aggregated_discovery(beta)[0] == "v2beta1"
    assert negotiation.aggregated_discovery(negotiation.parse_accept("application/json")) is None


def test_bodies_decode_from_json_and_yaml_and_refuse_the_rest():
    assert negotiation.decode_body("application/json", b'{"a": 1}') == {"a": 1}
    assert negotiation.decode_body("application/apply-patch+yaml", b"a: 1\nb: [x]\n") == {"a": 1, "b": ["x"]}
    with pytest.raises(APIError) as bad:
        negotiation.decode_body("application/json", b"{nope")
    assert bad.value.code == 400 and "not valid JSON" in bad.value.message
    with pytest.raises(APIError) as unsupported:
        negotiation.decode_body("text/plain", b"x")
    assert unsupported.value.code == 415


def test_legacy_discovery_lists_subresources_with_their_group():
    registry = default_registry()
    core = discovery.api_resource_list(registry, "", "v1")
    names = {entry["name"]: entry for entry in core["resources"]}
    assert names["pods/eviction"] == {"name": "pods/eviction", "singularName": "", "namespaced": True,
                                      "kind": "Eviction", "verbs": ["create"], "group": "policy", "version": "v1"}
    assert names["pods"]["shortNames"] == ["po"] and names["pods"]["categories"] == ["all"]
    apps = discovery.api_resource_list(registry, "apps", "v1")
    scale = next(e for e in apps["resources"] if e["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    groups = discovery.api_group_list(registry)
    assert "apps" in {group["name"] for group in groups["groups"]}
    assert discovery.api_resource_list(registry, "nope", "v1") is None


def test_aggregated_discovery_has_one_core_item_and_every_named_group():
    registry = default_registry()
    core = discovery.aggregated(registry, "v2", core=True)
    assert core["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert [item["metadata"]["name"] for item in core["items"]] == [""]
    named = discovery.aggregated(registry, "v2beta1", core=False)
    apps = next(item for item in named["items"] if item["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced" and deployments["shortNames"] == ["deploy"]
    assert {"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"]} in deployments["subresources"]


def test_versions_of_a_group_are_listed_in_kubernetes_priority_the_first_preferred():
    registry = default_registry()
    group = discovery.api_group(registry, "authentication.k8s.io")
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1", "v1alpha1"]
    assert group["preferredVersion"] == {"groupVersion": "authentication.k8s.io/v1", "version": "v1"}
    named = discovery.aggregated(registry, "v2", core=False)
    authn = next(item for item in named["items"] if item["metadata"]["name"] == "authentication.k8s.io")
    assert [v["version"] for v in authn["versions"]] == ["v1", "v1beta1", "v1alpha1"]
    assert sorted(["v1alpha1", "v2", "v1beta2", "v1beta1", "v1", "other", "v10"], key=discovery.version_priority) == [
        "v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "other"]


def test_openapi_v3_declares_field_validation_on_writes():
    document = openapi.v3_document(default_registry(), "apps", "v1")
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert {p["name"] for p in patch["parameters"]} == {"dryRun", "fieldManager", "fieldValidation", "force"}
    post = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]
    assert "fieldValidation" in {p["name"] for p in post["parameters"]}
    schema = document["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]


def _fields(data: bytes) -> list[tuple[int, object]]:
    """A minimal protobuf reader for the test: (field number, bytes or int) in order."""
    out, position = [], 0

    def varint() -> int:
        nonlocal position
        value, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
    while position < len(data):
        key = varint()
        if key & 7 == 2:
            length = varint()
            out.append((key >> 3, data[position:position + length]))
            position += length
        else:
            out.append((key >> 3, varint()))
    return out


def test_openapi_v2_protobuf_is_a_gnostic_document_kubectl_can_read():
    document = _fields(openapi_v2.document(default_registry()))
    assert document[0] == (1, b"2.0")
    assert dict(_fields(document[1][1])) == {1: b"Kubernetes", 2: b"v1.31.0"}
    paths = {}
    for number, named in _fields(dict(document)[8]):
        assert number == 2
        entry = dict(_fields(named))
        paths[entry[1].decode()] = dict(_fields(entry[2]))
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = _fields(item[8])  # PathItem.patch
    parameters = [value for number, value in patch if number == 8]
    names = []
    for parameter in parameters:
        sub_schema = dict(_fields(dict(_fields(dict(_fields(dict(_fields(parameter))[1]))[2]))[3]))
        assert sub_schema[2] == b"query"
        names.append(sub_schema[4].decode())
    assert "fieldValidation" in names
    extension = dict(_fields(next(value for number, value in patch if number == 13)))
    assert extension[1] == b"x-kubernetes-group-version-kind"
    assert yaml.safe_load(dict(_fields(extension[2]))[2]) == {"group": "apps", "kind": "Deployment",
                                                              "version": "v1"}
    core = _fields(paths["/api/v1/namespaces/{namespace}/configmaps/{name}"][8])
    extensions = {dict(_fields(value))[1]: dict(_fields(value))[2] for number, value in core if number == 13}
    assert yaml.safe_load(dict(_fields(extensions[b"x-kubernetes-group-version-kind"]))[2]) == {
        "group": "", "kind": "ConfigMap", "version": "v1"}
    assert yaml.safe_load(dict(_fields(extensions[b"x-kubernetes-action"]))[2]) == "patch"


def test_openapi_index_points_at_each_group_version_by_hash():
    docs = openapi.OpenAPI(default_registry())
    index = json.loads(docs.serve(None, ["v3"]).body)
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    with pytest.raises(APIError):
        docs.serve(None, ["v3", "apis", "nope", "v1"])


def test_openapi_v2_as_json_for_clients_that_ask_for_json():
    document = openapi_v2.json_document(default_registry())
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert document["swagger"] == "2.0" and patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
