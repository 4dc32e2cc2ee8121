"""Object helpers: keys, timestamps, uids, DNS-1123 validation worded as Kubernetes words it."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from kpy_components.api import meta
from kpy_components.api.catalog import default_registry

REGISTRY = default_registry()


def test_keys_namespaced_and_cluster_scoped():
    pods, nodes = REGISTRY.get("", "v1", "pods"), REGISTRY.get("", "v1", "nodes")
    deployments = REGISTRY.get("apps", "v1", "deployments")
    assert meta.object_key(pods, "default", "x") == "/registry/pods/default/x"
    assert meta.object_key(deployments, "ns1", "web") == "/registry/deployments.apps/ns1/web"
    assert meta.object_key(nodes, None, "n1") == "/registry/nodes/n1"
    assert meta.key_prefix(pods) == "/registry/pods/"
    assert meta.key_prefix(pods, "a") == "/registry/pods/a/"
    assert not meta.object_key(pods, "ab", "x").startswith(meta.key_prefix(pods, "a"))
    assert meta.key_prefix(nodes, "ignored") == "/registry/nodes/"
    with pytest.raises(ValueError, match="namespaced"):
        meta.object_key(pods, "", "x")


def test_core_and_events_group_events_never_share_keys():
    core, grouped = REGISTRY.get("", "v1", "events"), REGISTRY.get("events.k8s.io", "v1", "events")
    assert meta.key_prefix(core) != meta.key_prefix(grouped)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(timezone.utc)))
def test_rfc3339_round_trip(moment):
    assert meta.parse_rfc3339(meta.format_rfc3339(moment)) == moment.replace(microsecond=0)


def test_parse_rfc3339_offsets_and_fractions():
    assert meta.parse_rfc3339("2024-05-01T10:00:00.5+02:00") == datetime(2024, 5, 1, 8, 0, 0, 500000,
                                                                          tzinfo=timezone.utc)
    assert meta.parse_rfc3339("2024-05-01T10:00:00Z").tzinfo is not None
    for bad in ("2024-05-01", "yesterday", "", None, "2024-05-01T10:00:00"):
        with pytest.raises(ValueError, match="RFC 3339"):
            meta.parse_rfc3339(bad)


def test_now_is_utc_seconds():
    now = meta.now_rfc3339()
    assert now.endswith("Z") and len(now) == 20
    assert abs(meta.parse_rfc3339(now) - datetime.now(timezone.utc)) < timedelta(seconds=2)
    assert meta.parse_rfc3339(meta.now_rfc3339_micro()).microsecond >= 0


def test_uids_are_unique_uuids():
    uids = {meta.new_uid() for _ in range(100)}
    assert len(uids) == 100 and all(len(u) == 36 for u in uids)


def test_metadata_getters_tolerate_missing_parts():
    assert meta.name_of({}) == "" and meta.namespace_of({"metadata": None}) == ""
    assert meta.labels_of({"metadata": {"labels": {"a": "b"}}}) == {"a": "b"}
    obj = {}
    meta.metadata(obj)["name"] = "x"
    assert obj == {"metadata": {"name": "x"}}


def test_deep_copy_is_independent():
    original = {"a": [{"b": 1}], "c": {"d": [1, 2]}}
    copied = meta.deep_copy(original)
    copied["a"][0]["b"] = 2
    copied["c"]["d"].append(3)
    assert original == {"a": [{"b": 1}], "c": {"d": [1, 2]}}


@pytest.mark.parametrize("name", ["a", "web-1", "0abc", "a" * 63])
def test_valid_labels(name):
    assert meta.validate_dns1123_label(name) == [] and meta.is_dns1123_label(name)


@pytest.mark.parametrize("name", ["Foo", "-a", "a-", "a.b", "a_b", "", "a" * 64])
def test_invalid_labels_name_the_field_and_value(name):
    causes = meta.validate_dns1123_label(name, "metadata.name")
    assert causes and all(c.field == "metadata.name" and c.reason == "FieldValueInvalid" for c in causes)
    assert all(c.message.startswith(f'Invalid value: "{name}": ') for c in causes)
    expected = "must be no more than 63 characters" if len(name) > 63 else "a lowercase RFC 1123 label"
    assert expected in causes[0].message


def test_subdomains():
    assert meta.validate_dns1123_subdomain("example.com") == []
    too_long = ".".join(["a" * 63] * 4) + "a"
    messages = [c.message for c in meta.validate_dns1123_subdomain(too_long)]
    assert any("must be no more than 253 characters" in m for m in messages)
    assert "RFC 1123 subdomain" in meta.validate_dns1123_subdomain("Web")[0].message


def test_field_error_bodies_match_kubernetes():
    assert meta.field_invalid("spec.replicas", -1, "must be greater than or equal to 0").message == \
        "Invalid value: -1: must be greater than or equal to 0"
    assert meta.field_required("spec.containers").message == "Required value"
    assert meta.field_not_supported("spec.restartPolicy", "Sometimes", ["Always", "Never"]).message == \
        'Unsupported value: "Sometimes": supported values: "Always", "Never"'


def test_invalid_error_aggregates_causes_as_kubernetes_does():
    from kpy_components.api.errors import invalid
    one = invalid("Deployment", "web", [meta.field_invalid("spec.replicas", -1, "must be greater than or equal to 0")],
                  "apps")
    assert one.message == ('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater '
                           "than or equal to 0")
    two = invalid("Pod", "p", [meta.field_required("spec.containers"), meta.field_required("metadata.name")])
    assert two.message == 'Pod "p" is invalid: [spec.containers: Required value, metadata.name: Required value]'
    assert [c["field"] for c in two.details["causes"]] == ["spec.containers", "metadata.name"]
    assert invalid("PatchOptions", "", [meta.field_required("fieldManager")], "meta.k8s.io").message == \
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value'  # an unnamed object: "" as in Go
