"""Server-side apply: merging, managedFields bookkeeping, conflicts worded as Kubernetes words them, force."""
import json

import pytest
from hypothesis import given, strategies as st

from kpy_components.api.apply import apply, from_fields_v1, path_string, record_update, to_fields_v1
from kpy_components.api.errors import APIError

T0, T1 = "2024-01-01T00:00:00Z", "2024-01-01T00:05:00Z"


def manifest(replicas=2, image="nginx:1.25", labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                         {"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}}}}


def entries(obj):
    return {(e["manager"], e["operation"]): from_fields_v1(e["fieldsV1"]) for e in obj["metadata"]["managedFields"]}


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_create_by_apply_records_the_applier():
    created = apply(None, manifest(), "kubectl", now=T0)
    entry, = created["metadata"]["managedFields"]
    assert {k: entry[k] for k in ("manager", "operation", "apiVersion", "time", "fieldsType")} == {
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0, "fieldsType": "FieldsV1"}
    fields = entry["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert fields["f:spec"]["f:selector"] == {}, "LabelSelector is atomic"
    web = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert list(web)[0] == "." and web["f:image"] == {}
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in web["f:ports"]
    assert {k: v for k, v in created.items() if k != "metadata"} == {k: v for k, v in manifest().items()
                                                                       if k != "metadata"}
    assert apply({}, manifest(), "kubectl", now=T0) == created


def test_reapply_is_stable_and_inputs_are_untouched():
    live = apply(None, manifest(), "kubectl", now=T0)
    snapshot, applied = json.dumps(live), manifest()
    again = apply(live, applied, "kubectl", now=T0)
    assert again == live and json.dumps(live) == snapshot and applied == manifest()


def test_conflict_with_a_client_side_applier_then_force():
    live = record_update(None, manifest(), "kubectl-client-side-apply", now=T0)
    with pytest.raises(APIError) as caught:
        apply(live, manifest(replicas=3), "kubectl")
    error = caught.value
    assert (error.code, error.reason) == (409, "Conflict")
    assert error.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
                             ".spec.replicas")
    assert error.details["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                        "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]
    forced = apply(live, manifest(replicas=3), "kubectl", force=True, now=T1)
    assert forced["spec"]["replicas"] == 3
    owners = entries(forced)
    assert ("f:spec", "f:replicas") in owners[("kubectl", "Apply")]
    assert ("f:spec", "f:replicas") not in owners[("kubectl-client-side-apply", "Update")]
    assert ("f:spec", "f:selector") in owners[("kubectl-client-side-apply", "Update")], "same values are shared"


def test_several_conflicts_are_listed_per_manager():
    live = record_update(None, manifest(), "kubectl-client-side-apply", now=T0)
    with pytest.raises(APIError) as caught:
        apply(live, manifest(replicas=5, image="nginx:2"), "kubectl")
    assert caught.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="web"].image')


def test_same_values_are_shared_without_conflict():
    live = apply(None, manifest(), "alice", now=T0)
    both = apply(live, manifest(), "bob", now=T1)
    owners = entries(both)
    assert ("f:spec", "f:replicas") in owners[("alice", "Apply")] & owners[("bob", "Apply")]
    with pytest.raises(APIError, match='conflict with "alice": .spec.replicas'):
        apply(both, manifest(replicas=4), "bob")


def test_fields_no_longer_applied_are_removed_unless_someone_else_owns_them():
    live = apply(None, manifest(labels={"app": "web", "tier": "fe", "team": "a"}), "kubectl", now=T0)
    live = apply(live, manifest(labels={"app": "web", "team": "a"}), "other", now=T0)  # other co-owns team
    result = apply(live, manifest(labels={"app": "web"}), "kubectl", now=T1)
    assert result["metadata"]["labels"] == {"app": "web", "team": "a"}


def test_associative_lists_merge_by_key():
    live = apply(None, manifest(), "kubectl", now=T0)
    sidecar = json.loads(json.dumps(live))
    containers(sidecar).append({"name": "side", "image": "busybox"})
    record_update(live, sidecar, "injector", now=T0)
    result = apply(sidecar, manifest(image="nginx:1.26"), "kubectl", now=T1)
    assert [(c["name"], c["image"]) for c in containers(result)] == [("web", "nginx:1.26"), ("side", "busybox")]
    # Dropping a container this applier applied removes it.
    two = manifest()
    containers(two).append({"name": "extra", "image": "redis"})
    live = apply(None, two, "kubectl", now=T0)
    assert [c["name"] for c in containers(apply(live, manifest(), "kubectl", now=T1))] == ["web"]


def test_atomic_lists_are_replaced_and_sets_union():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a"]},
           "spec": {"tolerations": [{"key": "x", "operator": "Exists"}], "containers": [{"name": "c", "args": ["1"]}]}}
    live = record_update(None, json.loads(json.dumps(pod)), "creator", now=T0)
    applied = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["b"]},
               "spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}}
    result = apply(live, applied, "kubectl", force=True, now=T1)
    assert result["spec"]["tolerations"] == [{"key": "y", "operator": "Exists"}]
    assert result["metadata"]["finalizers"] == ["a", "b"]
    assert ("f:metadata", "f:finalizers", 'v:"b"') in entries(result)[("kubectl", "Apply")]


def test_updates_take_over_what_they_change_and_drop_what_they_remove():
    live = apply(None, manifest(labels={"app": "web", "tier": "fe"}), "kubectl", now=T0)
    edited = json.loads(json.dumps(live))
    edited["spec"]["replicas"] = 5
    del edited["metadata"]["labels"]["tier"]
    record_update(live, edited, "kubectl-edit", now=T1)
    owners = entries(edited)
    assert owners[("kubectl-edit", "Update")] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in owners[("kubectl", "Apply")]
    assert ("f:metadata", "f:labels", "f:tier") not in owners[("kubectl", "Apply")]
    edit_entry = next(e for e in edited["metadata"]["managedFields"] if e["manager"] == "kubectl-edit")
    assert (edit_entry["apiVersion"], edit_entry["time"]) == ("apps/v1", T1)
    with pytest.raises(APIError, match='conflict with "kubectl-edit" using apps/v1: .spec.replicas'):
        apply(edited, manifest(labels={"app": "web", "tier": "fe"}), "kubectl")


def test_entries_sorted_apply_first_and_empty_ones_dropped():
    live = record_update(None, manifest(), "creator", now=T0)
    live = apply(live, manifest(), "kubectl", now=T1)
    assert [e["operation"] for e in live["metadata"]["managedFields"]] == ["Apply", "Update"]
    taken = apply(live, manifest(replicas=7), "kubectl", force=True, now=T1)
    replaced = json.loads(json.dumps(taken))
    replaced["metadata"]["labels"] = {"other": "x"}
    record_update(taken, replaced, "creator", now=T1)
    assert all(e["fieldsV1"] for e in replaced["metadata"]["managedFields"])


def test_status_subresource_writers_are_separate_managers():
    live = apply(None, manifest(), "kubectl", now=T0)
    with_status = json.loads(json.dumps(live))
    with_status["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    record_update(live, with_status, "kube-controller-manager", subresource="status", now=T1)
    entry = next(e for e in with_status["metadata"]["managedFields"] if e["manager"] == "kube-controller-manager")
    assert entry["subresource"] == "status"
    assert 'k:{"type":"Available"}' in entry["fieldsV1"]["f:status"]["f:conditions"]


def test_objects_without_managed_fields_get_before_first_apply():
    legacy = manifest()
    with pytest.raises(APIError, match='conflict with "before-first-apply" using apps/v1: .spec.replicas'):
        apply(legacy, manifest(replicas=9), "kubectl")
    assert ("before-first-apply", "Update") in entries(apply(legacy, manifest(), "kubectl", now=T0))


def test_path_strings():
    assert path_string(("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")) == \
        '.spec.template.spec.containers[name="web"].image'
    assert path_string(("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}')) == \
        '.spec.ports[port=80,protocol="TCP"]'
    assert path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


_tokens = st.sampled_from(["f:a", "f:b", "f:spec", 'k:{"name":"x"}', 'v:"y"'])


@given(st.sets(st.lists(_tokens, min_size=1, max_size=4).map(tuple), max_size=12))
def test_fields_v1_round_trip(paths):
    assert from_fields_v1(to_fields_v1(paths)) == paths
