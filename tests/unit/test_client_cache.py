"""The indexed store: keys, indices kept right through updates and deletes, and the re-list diff."""
import pytest

from kpy_components.client.cache import Indexer, field_index, key_of, split_key


def pod(name, namespace="default", node=None, rv="1"):
    spec = {"nodeName": node} if node else {}
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}, "spec": spec}


def test_keys_of_namespaced_and_cluster_scoped_objects():
    assert key_of(pod("a", "kube-system")) == "kube-system/a"
    assert key_of({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("kube-system/a") == ("kube-system", "a") and split_key("node-1") == ("", "node-1")
    with pytest.raises(ValueError, match="no metadata.name"):
        key_of({"metadata": {}})


def test_indices_follow_updates_and_deletes():
    store = Indexer({"node": field_index("spec.nodeName")})
    store.upsert(pod("a", node="n1"))
    store.upsert(pod("b", node="n1"))
    store.upsert(pod("c"))  # unscheduled: not in the node index
    assert [p["metadata"]["name"] for p in store.by_index("node", "n1")] == ["a", "b"]
    store.upsert(pod("b", node="n2", rv="2"))  # moved
    assert store.index_keys("node", "n1") == ["default/a"] and store.index_keys("node", "n2") == ["default/b"]
    store.delete("default/a")
    assert store.index_values("node") == ["n2"]
    assert store.delete("default/a") is None
    assert sorted(store.keys()) == ["default/b", "default/c"] and "default/c" in store and len(store) == 2


def test_namespace_index_and_lookups():
    store = Indexer()
    for obj in (pod("a", "x"), pod("b", "y"), {"metadata": {"name": "n1"}}):
        store.upsert(obj)
    assert [p["metadata"]["name"] for p in store.list("x")] == ["a"]
    assert len(store.list()) == 3
    assert store.get_object("y", "b")["metadata"]["name"] == "b" and store.get_object(None, "n1") is not None
    with pytest.raises(KeyError, match="no index named 'node' \\(known: namespace\\)"):
        store.by_index("node", "n1")


def test_indexers_added_to_a_filled_store_index_what_is_there():
    store = Indexer()
    store.upsert(pod("a", node="n1"))
    store.add_indexers({"node": field_index("spec.nodeName")})
    assert store.index_keys("node", "n1") == ["default/a"]
    with pytest.raises(ValueError, match="indexer 'node' exists already"):
        store.add_indexers({"node": field_index("spec.nodeName")})


def test_replace_reports_what_a_relist_changed():
    store = Indexer({"node": field_index("spec.nodeName")})
    for obj in (pod("kept"), pod("changed", node="n1"), pod("gone", node="n1")):
        store.upsert(obj)
    added, updated, deleted = store.replace([pod("kept"), pod("changed", node="n2", rv="5"), pod("new")])
    assert [o["metadata"]["name"] for o in added] == ["new"]
    assert [(old["spec"], new["spec"]) for old, new in updated] == [({"nodeName": "n1"}, {"nodeName": "n2"})]
    assert [o["metadata"]["name"] for o in deleted] == ["gone"]
    assert store.index_keys("node", "n1") == [] and store.index_keys("node", "n2") == ["default/changed"]
