"""The ControllerRevision decisions DaemonSets and StatefulSets share (history.py): the patch a revision stores, its
hash and name, which revision a template gets (kept, renumbered on a rollback, or new) and which old ones go."""
from __future__ import annotations

from kpy_components.controller_manager.controllers import history


def owner(image: str = "web:1", name: str = "web", **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "ns", "uid": "uid-1", "annotations": {"note": "kept"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def revision(image: str, number: int, name: str | None = None) -> dict:
    made = history.new_revision(owner(image), number)
    if name:
        made["metadata"]["name"] = name
    return made


def test_data_is_the_patch_that_restores_the_template():
    data = history.revision_data(owner("web:2"))
    assert data == {"spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                          "spec": {"containers": [{"name": "c", "image": "web:2"}]},
                                          "$patch": "replace"}}}


def test_hash_follows_the_template_and_the_collision_count():
    first = history.revision_hash(owner("web:1"))
    assert first == history.revision_hash(owner("web:1")) and first.isalnum()
    assert first != history.revision_hash(owner("web:2"))
    assert first != history.revision_hash(owner("web:1"), 1) != history.revision_hash(owner("web:1"), 2)
    assert first == history.revision_hash(owner("web:1", replicas=3))  # only the template counts
    go_client = owner("web:1")
    go_client["spec"]["template"]["metadata"]["creationTimestamp"] = None  # what Go clients send
    assert history.revision_hash(go_client) == first


def test_a_revision_is_named_labelled_and_owned_as_upstream():
    made = history.new_revision(owner("web:1"), 4, collision_count=2)
    hash_value = history.revision_hash(owner("web:1"), 2)
    assert made["metadata"]["name"] == f"web-{hash_value}"
    assert made["metadata"]["labels"] == {"app": "web", "controller-revision-hash": hash_value}
    assert made["metadata"]["annotations"] == {"note": "kept"}
    assert made["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web",
                                                    "uid": "uid-1", "controller": True,
                                                    "blockOwnerDeletion": True}]
    assert made["revision"] == 4 and made["data"] == history.revision_data(owner("web:1"))
    long_name = history.new_revision(owner(name="x" * 250), 1)["metadata"]["name"]
    assert long_name.startswith("x" * 223 + "-") and len(long_name) <= 253


def test_a_new_template_gets_the_next_number():
    assert history.choose(owner("web:1"), []) == ("create", None, 1)
    foreign = [{"metadata": {"name": "x"}, "data": {"spec": "not an object"}, "revision": 4},
               {"metadata": {"name": "y"}, "data": "text", "revision": "five"}]  # adopted, written by someone else
    assert history.choose(owner("web:1"), foreign) == ("create", None, 5)
    action, found, number = history.choose(owner("web:3"), [revision("web:1", 1), revision("web:2", 2)])
    assert (action, found, number) == ("create", None, 3)


def test_the_newest_revision_is_kept_when_it_holds_the_template():
    old, newest = revision("web:1", 1), revision("web:2", 2)
    assert history.choose(owner("web:2"), [newest, old]) == ("keep", newest, 2)


def test_a_rollback_renumbers_the_old_revision_as_the_newest():
    old, newest = revision("web:1", 1), revision("web:2", 2)
    assert history.choose(owner("web:1"), [old, newest]) == ("renumber", old, 3)
    # of two revisions holding the template (a collision left one behind), the higher-numbered one is reused
    twin = revision("web:1", 2, name="web-twin")
    assert history.choose(owner("web:1"), [old, twin, revision("web:3", 5)])[:2] == ("renumber", twin)


def test_a_number_shared_with_another_revision_is_renumbered():
    # the second of two quick template changes was numbered from a cache without the first one's revision
    first, second, third = revision("web:1", 1), revision("web:2", 2), revision("web:3", 2)
    for order in ([first, second, third], [first, third, second]):
        assert history.choose(owner("web:3"), order) == ("renumber", third, 3)
    assert history.choose(owner("web:3"), [first, second, revision("web:3", 3)])[0] == "keep"


def test_the_history_is_trimmed_oldest_first_never_a_live_revision():
    revisions = [revision(f"web:{n}", n) for n in range(1, 6)]
    names = [r["metadata"]["name"] for r in revisions]
    update = revisions[-1]
    assert history.expired(revisions, update, set(), 10) == []
    assert [r["metadata"]["name"] for r in history.expired(revisions, update, set(), 2)] == names[:2]
    live = {names[0]}  # pods still run revision 1
    assert [r["metadata"]["name"] for r in history.expired(revisions, update, live, 2)] == names[1:3]
    assert [r["metadata"]["name"] for r in history.expired(revisions, update, set(), 0)] == names[:4]
    assert history.expired(revisions, update, set(names), 0) == []  # nothing live goes, whatever the limit


def test_history_limit_defaults_to_ten():
    assert history.history_limit(owner()) == 10
    assert history.history_limit(owner(revisionHistoryLimit=0)) == 0
    assert history.history_limit(owner(revisionHistoryLimit=3)) == 3
