"""The resource catalog: every resource of issue 3 with Kubernetes' names, verbs, subresources and columns."""
import pytest

from kpy_components.api.catalog import default_registry

REGISTRY = default_registry()


def info(group, plural):
    found = REGISTRY.get(group, "v1", plural)
    assert found is not None, f"{plural}.{group} missing"
    return found


@pytest.mark.parametrize("group,plural,short", [
    ("", "pods", "po"), ("", "services", "svc"), ("", "namespaces", "ns"), ("", "nodes", "no"),
    ("", "configmaps", "cm"), ("", "endpoints", "ep"), ("", "serviceaccounts", "sa"), ("", "events", "ev"),
    ("", "resourcequotas", "quota"), ("", "limitranges", "limits"), ("apps", "deployments", "deploy"),
    ("apps", "replicasets", "rs"), ("apps", "daemonsets", "ds"), ("apps", "statefulsets", "sts"),
    ("batch", "cronjobs", "cj"), ("policy", "poddisruptionbudgets", "pdb"),
])
def test_short_names(group, plural, short):
    assert short in info(group, plural).short_names


def test_category_all_is_what_get_all_shows():
    in_all = {r.qualified for r in REGISTRY if "all" in r.categories}
    assert in_all == {"pods", "services", "replicationcontrollers", "deployments.apps", "replicasets.apps",
                      "daemonsets.apps", "statefulsets.apps", "jobs.batch", "cronjobs.batch",
                      "horizontalpodautoscalers.autoscaling"}


def test_reviews_are_create_only_and_never_stored():
    reviews = [r for r in REGISTRY if r.kind.endswith("Review")]
    assert {r.plural for r in reviews} >= {"selfsubjectaccessreviews", "subjectaccessreviews",
                                           "selfsubjectrulesreviews", "tokenreviews", "selfsubjectreviews"}
    assert all(r.verbs == ("create",) and not r.storage for r in reviews)


def test_subresources_speak_other_groups_where_kubernetes_does():
    eviction = info("", "pods").subresource("eviction")
    assert (eviction.group, eviction.version, eviction.kind, eviction.verbs) == ("policy", "v1", "Eviction",
                                                                                ("create",))
    for plural in ("deployments", "replicasets", "statefulsets"):
        scale = info("apps", plural).subresource("scale")
        assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    token = info("", "serviceaccounts").subresource("token")
    assert (token.group, token.kind) == ("authentication.k8s.io", "TokenRequest")
    assert {s.name for s in info("", "pods").subresources} >= {"status", "binding", "eviction", "log", "exec",
                                                                "attach", "portforward"}
    assert info("", "namespaces").subresource("finalize").verbs == ("update",)
    for group, plural in [("", "nodes"), ("", "services"), ("batch", "jobs"), ("batch", "cronjobs"),
                          ("apps", "daemonsets"), ("policy", "poddisruptionbudgets"), ("", "namespaces")]:
        assert info(group, plural).subresource("status").verbs == ("get", "patch", "update")


def test_pod_columns_match_kubernetes_printer():
    columns = info("", "pods").columns
    assert [c.name for c in columns if c.priority == 0] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert [c.name for c in columns if c.priority == 1] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert columns[0].format == "name"


def test_field_selectors_per_kind():
    assert {"spec.nodeName", "status.phase", "metadata.name"} <= set(info("", "pods").field_selectors)
    assert "involvedObject.uid" in info("", "events").field_selectors
    assert "type" in info("", "secrets").field_selectors
    assert "spec.unschedulable" in info("", "nodes").field_selectors
    assert "spec.nodeName" not in info("", "configmaps").field_selectors


def test_lookup_by_kind_and_uniqueness():
    assert REGISTRY.for_kind("apps/v1", "Deployment").plural == "deployments"
    assert REGISTRY.for_kind("events.k8s.io/v1", "Event").group == "events.k8s.io"
    served = [(r.qualified, r.version) for r in REGISTRY]
    assert len(served) == len(set(served))
    stored = [r.qualified for r in REGISTRY if r.storage]  # one storage prefix per stored resource: the versions
    # of a resource served in several share it (HPA autoscaling/v1 is converted from the stored v2)
    assert {q for q in stored if stored.count(q) > 1} == {"horizontalpodautoscalers.autoscaling"}
    assert all(r.singular == r.kind.lower() for r in REGISTRY)
