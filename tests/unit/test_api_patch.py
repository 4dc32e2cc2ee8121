"""JSON patch, JSON merge patch and strategic merge patch as kube-apiserver applies them."""
import json

import pytest
from hypothesis import given, strategies as st

from kpy_components.api.errors import APIError
from kpy_components.api.patch import (apply_json_patch, apply_merge_patch, apply_strategic_merge_patch,
                                      create_merge_patch, decode_json_patch)


def deployment(containers=None, labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": containers or [
                                      {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                                       "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}}


def containers_of(obj):
    return obj["spec"]["template"]["spec"]["containers"]


# --- JSON patch -----------------------------------------------------------------------------------------------------

def test_json_patch_operations():
    doc = {"a": {"b": [1, 2, 3]}, "c": "x"}
    patched = apply_json_patch(doc, [
        {"op": "add", "path": "/a/b/-", "value": 4},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/a/b/1"},
        {"op": "replace", "path": "/c", "value": "y"},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e~1f"},
        {"op": "test", "path": "/e~1f", "value": "y"},
    ])
    assert patched == {"a": {"b": [0, 2, 3, 4]}, "c": "y", "e/f": "y"}
    assert doc == {"a": {"b": [1, 2, 3]}, "c": "x"}, "the input is never changed"


def test_kubectl_json_patch_on_labels():
    patched = apply_json_patch(deployment(), '[{"op":"replace","path":"/spec/replicas","value":3},'
                                             '{"op":"add","path":"/metadata/labels/tier","value":"fe"}]')
    assert patched["spec"]["replicas"] == 3 and patched["metadata"]["labels"] == {"app": "web", "tier": "fe"}


@pytest.mark.parametrize("ops,fragment", [
    ([{"op": "test", "path": "/a", "value": 2}], "testing value /a failed"),
    ([{"op": "remove", "path": "/missing"}], 'doc is missing path: "/missing"'),
    ([{"op": "replace", "path": "/missing/x", "value": 1}], "missing"),
    ([{"op": "add", "path": "/list/9", "value": 1}], "out of bounds"),
    ([{"op": "move", "from": "/list", "path": "/list/0"}], "child"),
])
def test_json_patch_that_does_not_apply_is_422(ops, fragment):
    with pytest.raises(APIError) as caught:
        apply_json_patch({"a": 1, "list": [1]}, ops)
    assert caught.value.code == 422 and caught.value.reason == "Invalid" and fragment in caught.value.message


@pytest.mark.parametrize("body", ['{"op": "add"}', "not json", '[{"path": "/a"}]', '[{"op":"jump","path":"/a"}]',
                                  '[{"op":"add","path":"/a"}]'])
def test_malformed_json_patch_is_400(body):
    with pytest.raises(APIError) as caught:
        apply_json_patch({"a": 1}, body)
    assert caught.value.code == 400


def test_decode_accepts_bytes():
    assert decode_json_patch(b'[{"op":"remove","path":"/a"}]') == [{"op": "remove", "path": "/a"}]


# --- merge patch ----------------------------------------------------------------------------------------------------

def test_merge_patch_rfc7386_examples():
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert apply_merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert apply_merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert apply_merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert apply_merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert apply_merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_kubectl_label_and_scale_merge_patches():
    patched = apply_merge_patch(deployment(), {"metadata": {"labels": {"tier": "fe", "app": None}}})
    assert patched["metadata"]["labels"] == {"tier": "fe"}
    assert apply_merge_patch({"spec": {"replicas": 1}}, {"spec": {"replicas": 3}}) == {"spec": {"replicas": 3}}


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                  max_size=3), max_leaves=12)
_objects = st.dictionaries(st.text(max_size=3), _json, max_size=4)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


@given(_objects, _objects)
def test_merge_patch_of_a_diff_gives_the_target(original, modified):
    # Merge patch cannot express null values inside objects: compare objects without them.
    original, modified = _without_nulls(original), _without_nulls(modified)
    assert apply_merge_patch(original, create_merge_patch(original, modified)) == modified


@given(_objects, _objects)
def test_merge_patch_is_idempotent(target, patch):
    once = apply_merge_patch(target, patch)
    assert apply_merge_patch(once, patch) == once


# --- strategic merge patch ------------------------------------------------------------------------------------------

def test_cordon_and_uncordon_as_kubectl_sends_them():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.0.0.0/24"}}
    cordoned = apply_strategic_merge_patch(node, '{"spec":{"unschedulable":true}}', "Node")
    assert cordoned["spec"] == {"podCIDR": "10.0.0.0/24", "unschedulable": True}
    uncordoned = apply_strategic_merge_patch(cordoned, {"spec": {"unschedulable": None}}, "Node")
    assert uncordoned == node


def test_set_image_with_set_element_order():
    obj = deployment(containers=[{"name": "web", "image": "nginx:1.25"}, {"name": "side", "image": "busybox"}])
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                                            "containers": [{"image": "busybox:1.36", "name": "side"}]}}}}
    assert containers_of(apply_strategic_merge_patch(obj, patch, "Deployment")) == [
        {"name": "web", "image": "nginx:1.25"}, {"name": "side", "image": "busybox:1.36"}]


def test_client_side_apply_three_way_patch():
    """The patch kubectl apply computes when the manifest changes the image, drops env B and the label tier."""
    live = deployment(labels={"app": "web", "tier": "fe"})
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
                          "labels": {"tier": None}},
             "spec": {"template": {"spec": {
                 "$setElementOrder/containers": [{"name": "web"}],
                 "containers": [{"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}],
                                 "image": "nginx:1.26", "name": "web"}]}}}}
    patched = apply_strategic_merge_patch(live, patch, "Deployment")
    assert patched["metadata"]["labels"] == {"app": "web"}
    assert patched["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}
    assert containers_of(patched) == [{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}],
                                       "env": [{"name": "A", "value": "1"}],
                                       "terminationMessagePath": "/dev/termination-log"}]


def test_merge_keys_per_list():
    obj = deployment()
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "ports": [{"containerPort": 443}], "env": [{"name": "A", "value": "9"}]},
        {"name": "new", "image": "redis"}]}}}}
    web, new = containers_of(apply_strategic_merge_patch(obj, patch, "Deployment"))
    # Upstream's mergeSortedSlice puts patch items the server does not know before server-only ones.
    assert web["ports"] == [{"containerPort": 443}, {"containerPort": 80}]
    assert web["env"] == [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}]
    assert new == {"name": "new", "image": "redis"}


def test_lists_without_merge_strategy_are_replaced():
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "c", "args": ["a", "b"]}],
                                   "tolerations": [{"key": "a", "operator": "Exists"}]}}
    patched = apply_strategic_merge_patch(pod, {"spec": {"containers": [{"name": "c", "args": ["z"]}],
                                                         "tolerations": [{"key": "b", "operator": "Exists"}]}}, "Pod")
    assert patched["spec"]["containers"][0]["args"] == ["z"]
    assert patched["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_taints_replace_as_kubectl_taint_expects():
    node = {"kind": "Node", "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    patch = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}]}}
    assert apply_strategic_merge_patch(node, patch, "Node")["spec"]["taints"] == patch["spec"]["taints"]


def test_finalizers_union_and_delete_from_primitive_list():
    obj = {"kind": "ConfigMap", "metadata": {"finalizers": ["a", "b"]}}
    merged = apply_strategic_merge_patch(obj, {"metadata": {"finalizers": ["c"]}}, "ConfigMap")
    assert merged["metadata"]["finalizers"] == ["c", "a", "b"]  # upstream order: new patch items first
    ordered = apply_strategic_merge_patch(obj, {"metadata": {"$setElementOrder/finalizers": ["a", "b", "c"],
                                                             "finalizers": ["c"]}}, "ConfigMap")
    assert ordered["metadata"]["finalizers"] == ["a", "b", "c"]
    removed = apply_strategic_merge_patch(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
                                          "ConfigMap")
    assert removed["metadata"]["finalizers"] == ["b"]


def test_patch_directives_on_maps_and_lists():
    obj = deployment(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    replaced = apply_strategic_merge_patch(obj, {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "z"}, {"$patch": "replace"}]}}}}, "Deployment")
    assert containers_of(replaced) == [{"name": "c", "image": "z"}]
    deleted = apply_strategic_merge_patch(obj, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"$patch": "delete", "name": "b"}]}}}}, "Deployment")
    assert containers_of(deleted) == [{"name": "a", "image": "x"}]
    labels_replaced = apply_strategic_merge_patch(obj, {"metadata": {"labels": {"$patch": "replace", "x": "1"}}},
                                                  "Deployment")
    assert labels_replaced["metadata"]["labels"] == {"x": "1"}
    labels_deleted = apply_strategic_merge_patch(obj, {"metadata": {"labels": {"$patch": "delete"}}}, "Deployment")
    assert labels_deleted["metadata"]["labels"] == {}


def test_retain_keys_clears_the_old_strategy():
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert apply_strategic_merge_patch(obj, patch, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(APIError) as caught:
        apply_strategic_merge_patch(obj, {"spec": {"strategy": {"$retainKeys": ["type"], "x": 1}}}, "Deployment")
    assert caught.value.code == 422


def test_set_element_order_keeps_server_only_items_in_place():
    obj = deployment(containers=[{"name": "a"}, {"name": "server-only"}, {"name": "b"}])
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                                            "containers": [{"name": "b", "image": "new"}]}}}}
    names = [c["name"] for c in containers_of(apply_strategic_merge_patch(obj, patch, "Deployment"))]
    # As upstream's normalizeElementOrder: the server-only item precedes "b", which preceded it on the server.
    assert names == ["server-only", "b", "a"]


def test_new_values_lose_their_directives_and_nulls():
    patched = apply_strategic_merge_patch({"kind": "Pod"}, {"spec": {"nodeSelector": {"a": None, "b": "1"},
                                                                     "containers": [{"name": "c", "x": None}]}},
                                          "Pod")
    assert patched == {"kind": "Pod", "spec": {"nodeSelector": {"b": "1"}, "containers": [{"name": "c"}]}}


def test_service_ports_merge_by_port():
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}}
    patched = apply_strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090},
                                                                   {"port": 443}]}}, "Service")
    assert patched["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 9090}, {"port": 443}]


def test_status_conditions_merge_by_type():
    dep = deployment()
    dep["status"] = {"conditions": [{"type": "Available", "status": "False"}, {"type": "Progressing",
                                                                             "status": "True"}]}
    patched = apply_strategic_merge_patch(dep, {"status": {"conditions": [{"type": "Available", "status": "True"}]}},
                                          "Deployment")
    assert patched["status"]["conditions"] == [{"type": "Available", "status": "True"},
                                               {"type": "Progressing", "status": "True"}]


@pytest.mark.parametrize("patch,code", [
    ("[1]", 400), ("nope", 400),
    ({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}, 400),
    ({"metadata": {"labels": {"$patch": "explode"}}}, 400),
    ({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}, 400),
])
def test_bad_strategic_patches(patch, code):
    with pytest.raises(APIError) as caught:
        apply_strategic_merge_patch(deployment(), patch, "Deployment")
    assert caught.value.code == code


def test_strategic_patch_of_unknown_structures_behaves_like_merge_patch():
    cm = {"kind": "ConfigMap", "data": {"a": "1", "b": "2"}}
    patch = {"data": {"a": None, "c": "3"}}
    assert apply_strategic_merge_patch(cm, json.dumps(patch), "ConfigMap") == apply_merge_patch(cm, patch)
