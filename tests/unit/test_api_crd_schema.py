"""Structural schemas of CRDs (pruning, defaulting, validation wording), the JSONPath subset of printer columns and
scale paths, CEL rules, and the CRD validator."""
from __future__ import annotations

import pytest

from kpy_components.apiserver.crds import definitions, jsonpath, rules, structural

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object", "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 5, "minLength": 2},
                "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2,
                         "x-kubernetes-list-type": "set"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "nested": {"type": "object", "default": {}, "properties": {"deep": {"type": "boolean",
                                                                                    "default": True}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "maybe": {"type": "string", "nullable": True},
                "embedded": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "properties": {"spec": {"type": "object"}}},
            },
        },
    },
}


def test_prune_drops_undeclared_fields_and_reports_their_paths():
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "bogus": 1},
           "spec": {"name": "ab", "extra": 1, "free": {"any": {"thing": 1}}, "labels": {"k": "v"},
                    "embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "other": 1},
                    "size": None, "maybe": None},
           "top": True}
    unknown = structural.prune(obj, SCHEMA)
    assert unknown == ["metadata.bogus", "spec.extra", "spec.embedded.other", "top"]
    assert obj["spec"] == {"name": "ab", "free": {"any": {"thing": 1}}, "labels": {"k": "v"},
                           "embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "maybe": None}
    assert obj["metadata"] == {"name": "a"}


def test_default_fills_absent_fields_at_every_present_level():
    obj = {"spec": {"name": "ab"}}
    structural.default(obj, SCHEMA)
    assert obj["spec"] == {"name": "ab", "size": 2, "mode": "a", "nested": {"deep": True}}
    given = {"spec": {"name": "ab", "size": 5, "nested": {"deep": False}}}
    structural.default(given, SCHEMA)
    assert given["spec"]["size"] == 5 and given["spec"]["nested"] == {"deep": False}


def _messages(obj) -> list[str]:
    return [f"{c.field}: {c.message}" for c in structural.validate(obj, SCHEMA)]


def test_validation_is_worded_as_upstream():
    found = _messages({"spec": {"name": "abcdefg", "size": 11, "ratio": 1, "mode": "c", "port": 1.5,
                                "tags": ["x", "x", "y"], "labels": {"k": 1}}})
    assert found == [
        "spec.name: Too long: may not be more than 5 bytes",
        "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1",
        'spec.mode: Unsupported value: "c": supported values: "a", "b"',
        'spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number"',
        "spec.tags: Too many: 3: must have at most 2 items",
        'spec.tags[1]: Duplicate value: "x"',
        'spec.labels.k: Invalid value: "integer": spec.labels.k in body must be of type string: "integer"',
    ]
    assert _messages({"spec": {}}) == ["spec.name: Required value"]
    assert _messages({"spec": {"name": "a", "size": 0}}) == [
        'spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long',
        "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"]
    assert _messages({"spec": "text"}) == ['spec: Invalid value: "string": spec in body must be of type object: '
                                           '"string"']
    assert _messages({"spec": {"name": "ab", "port": "http", "maybe": None}}) == []


def test_structural_problems_of_a_schema():
    problems = structural.structural_problems({"type": "object", "properties": {
        "a": {"properties": {}}, "b": {"type": "array"}, "c": {"type": "string", "pattern": "("}}}, "schema")
    fields = [c.field for c in problems]
    assert fields == ["schema.properties[a].type", "schema.properties[b].items", "schema.properties[c].pattern"]


@pytest.mark.parametrize(("path", "expected"), [
    (".spec.replicas", 3),
    ("{.spec.replicas}", 3),
    (".status.conditions[0].type", "Ready"),
    (".status.conditions[-1].type", "Synced"),
    ('.status.conditions[?(@.type=="Synced")].status', "False"),
    (".status.conditions[*].type", "Ready"),
    (".metadata.labels['app.kubernetes.io/name']", "web"),
    (".spec.missing", None),
])
def test_jsonpath_subset(path, expected):
    obj = {"metadata": {"labels": {"app.kubernetes.io/name": "web"}}, "spec": {"replicas": 3},
           "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}}
    assert jsonpath.first(obj, path) == expected


def test_jsonpath_refuses_what_it_cannot_read():
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.parse("spec..replicas[")


def test_cel_rules_run_where_they_sit_with_old_self_on_update():
    schema = {"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "min must not exceed max"},
                                     {"rule": "self.max == oldSelf.max", "message": "max is immutable"}],
        "properties": {"min": {"type": "integer"}, "max": {"type": "integer"},
                       "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('x')"}]}}}}}
    compiled = rules.compile_schema(schema)
    assert compiled.check({"spec": {"min": 1, "max": 2, "name": "xy"}}, None) == []
    found = [f"{c.field}: {c.message}" for c in compiled.check({"spec": {"min": 3, "max": 2, "name": "y"}}, None)]
    assert found == ['spec: Invalid value: "object": min must not exceed max',
                     "spec.name: Invalid value: \"string\": failed rule: self.startsWith('x')"]
    changed = compiled.check({"spec": {"min": 1, "max": 3}}, {"spec": {"min": 1, "max": 2}})
    assert [c.message for c in changed] == ['Invalid value: "object": max is immutable']
    missing = compiled.check({"spec": {"max": 1}}, None)
    assert "evaluation error" in missing[0].message


def test_cel_rules_that_do_not_compile_are_refused_with_their_place():
    problems = rules.compile_problems({"type": "object", "x-kubernetes-validations": [{"rule": "self.x =="}]}, "s")
    assert problems[0].field == "s.x-kubernetes-validations[0].rule"
    assert problems[0].message.startswith('Invalid value: "self.x ==": compilation failed')


def test_crd_validation_reports_every_problem_at_once():
    crd = {"metadata": {"name": "wrong"}, "spec": {"group": "nodot", "scope": "Both",
                                                    "names": {"plural": "Things", "kind": "thing!"},
                                                    "versions": [{"name": "v1", "served": False, "storage": False}]}}
    found = [f"{c.field}: {c.message}" for c in definitions.validate_definition(crd)]
    assert 'metadata.name: Invalid value: "wrong": must be spec.names.plural+"."+spec.group' in found
    assert 'spec.group: Invalid value: "nodot": should be a domain with at least one dot' in found
    assert 'spec.scope: Unsupported value: "Both": supported values: "Cluster", "Namespaced"' in found
    assert any(f.startswith("spec.names.plural: Invalid value") for f in found)
    assert 'spec.names.kind: Invalid value: "thing!": may have mixed case, but should otherwise match: ' \
           '[a-z]([-a-z0-9]*[a-z0-9])?' in found
    assert "spec.names.listKind: Required value" in found
    assert "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required" in found
    assert any("must have exactly one version marked as storage version" in f for f in found)


def test_served_resources_follow_the_established_condition():
    crd = {"metadata": {"name": "things.example.com"},
           "spec": {"group": "example.com", "scope": "Cluster",
                    "names": {"plural": "things", "kind": "Thing", "shortNames": ["th"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}},
                                  "schema": {"openAPIV3Schema": {"type": "object"}}},
                                 {"name": "v1beta1", "served": False, "storage": False}]},
           "status": {"conditions": [{"type": "Established", "status": "False"}]}}
    assert definitions.served_resources(crd) == []
    crd["status"]["conditions"][0]["status"] = "True"
    (info,) = definitions.served_resources(crd)
    assert (info.group, info.version, info.plural, info.singular, info.namespaced) == \
        ("example.com", "v1", "things", "thing", False)
    assert info.short_names == ("th",) and info.subresource("status").kind == "Thing"
    assert [c.name for c in info.columns] == ["Name", "Age"]


def test_server_side_apply_merges_list_maps_and_sets_of_a_crd_schema():
    from kpy_components.api import apply, patch

    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                             "port": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}}}}}}
    patch.register_custom("Gear", *structural.merge_types("Gear", schema))
    try:
        def body(**spec):
            return {"apiVersion": "x.io/v1", "kind": "Gear", "metadata": {"name": "g"}, "spec": spec}
        first = apply.apply(None, body(ports=[{"name": "http", "port": 80}], tags=["a"], args=["x"]), "alice")
        second = apply.apply(first, body(ports=[{"name": "https", "port": 443}], tags=["b"]), "bob")
        assert second["spec"]["ports"] == [{"name": "http", "port": 80}, {"name": "https", "port": 443}]
        assert second["spec"]["tags"] == ["a", "b"] and second["spec"]["args"] == ["x"]
        with pytest.raises(Exception) as conflict:  # an atomic list owned by alice
            apply.apply(second, body(args=["y"]), "bob")
        assert 'conflict with "alice"' in str(conflict.value)
    finally:
        patch.register_custom("Gear", {}, None)
    assert "Gear" not in patch.CUSTOM_ROOTS


def test_embedded_resources_name_their_kind():
    found = _messages({"spec": {"name": "ab", "embedded": {"metadata": {"name": "Bad_Name"}}}})
    assert found[:2] == ["spec.embedded.apiVersion: Required value: must not be empty",
                         "spec.embedded.kind: Required value: must not be empty"]
    assert found[2].startswith('spec.embedded.metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123')
    assert _messages({"spec": {"name": "ab", "embedded": {"apiVersion": "v1", "kind": "Pod"}}}) == []
