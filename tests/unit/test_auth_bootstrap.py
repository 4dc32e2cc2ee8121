"""The default RBAC policy: shape as Kubernetes creates it, every binding names an existing role, and start-up
reconciliation through the real registry (SQLite) creates, tops up autoupdate objects and keeps user edits."""
import asyncio

import pytest

from kpy_components.api.catalog import default_registry
from kpy_components.apiserver.auth.bootstrap import (AUTOUPDATE, cluster_role_bindings, cluster_roles,
                                                     controller_service_accounts, default_policy)
from kpy_components.apiserver.auth.reconcile import reconcile
from kpy_components.apiserver.registry.api import API
from kpy_components.apiserver.storage.sqlite import SqliteStorage

RBAC = "rbac.authorization.k8s.io"


def test_every_object_is_labelled_and_autoupdated():
    for obj in default_policy():
        assert obj["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert obj["metadata"]["annotations"] == {AUTOUPDATE: "true"}


def test_names_are_unique_and_the_expected_roles_exist():
    names = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in default_policy()]
    assert len(names) == len(set(names))
    roles = {o["metadata"]["name"] for o in cluster_roles()}
    for expected in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                     "system:public-info-viewer", "system:node", "system:node-proxier", "system:kube-scheduler",
                     "system:kube-controller-manager", "system:kube-dns", "system:auth-delegator", "system:heapster",
                     "system:controller:deployment-controller", "system:controller:replicaset-controller",
                     "system:controller:namespace-controller", "system:controller:node-controller",
                     "system:controller:endpoint-controller", "system:controller:endpointslice-controller",
                     "system:controller:job-controller", "system:controller:cronjob-controller",
                     "system:controller:daemon-set-controller", "system:controller:statefulset-controller",
                     "system:controller:generic-garbage-collector", "system:controller:service-account-controller",
                     "system:controller:disruption-controller", "system:controller:pod-garbage-collector",
                     "system:controller:ttl-after-finished-controller"):
        assert expected in roles, expected


def test_bindings_name_existing_roles_and_controllers_run_as_kube_system_accounts():
    policy = default_policy()
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in policy
             if o["kind"] in ("Role", "ClusterRole")}
    for binding in (o for o in policy if o["kind"].endswith("Binding")):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace", "") if ref["kind"] == "Role" else ""
        assert (ref["kind"], namespace, ref["name"]) in roles, binding["metadata"]["name"]
    by_name = {b["metadata"]["name"]: b for b in cluster_role_bindings()}
    for controller in controller_service_accounts():
        assert by_name[f"system:controller:{controller}"]["subjects"] == [
            {"kind": "ServiceAccount", "name": controller, "namespace": "kube-system"}]
    assert by_name["cluster-admin"]["subjects"] == [{"kind": "Group", "apiGroup": RBAC, "name": "system:masters"}]


def test_aggregation_labels_chain_view_into_edit_into_admin():
    by_name = {o["metadata"]["name"]: o for o in cluster_roles()}
    assert by_name["view"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert by_name["edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert by_name["admin"]["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]}


@pytest.fixture
def api(tmp_path):
    storage = SqliteStorage(tmp_path / "store.sqlite")
    api = API(default_registry(), storage, storage, "10.32.0.0/16")

    async def namespaces():
        for name in ("kube-system", "kube-public"):
            await api.create("", "namespaces", "", {"metadata": {"name": name}})
    asyncio.run(namespaces())
    yield api
    asyncio.run(storage.close())


def _get(api, plural, name, namespace=""):
    return asyncio.run(api.get(RBAC, plural, namespace, name))


def _default(name):
    return next(o for o in default_policy() if o["metadata"]["name"] == name and o["kind"] == "ClusterRole")


# The logic tests use the few default objects below; the first test reconciles the whole policy.
PLAIN = [o for o in default_policy() if ":" not in o["metadata"]["name"]]


def test_reconcile_creates_the_whole_default_policy_then_does_nothing(api):
    report = asyncio.run(reconcile(api))
    assert report == [f"created {line.split(' ', 1)[1]}" for line in report]
    assert len(report) == len(default_policy())
    assert _get(api, "clusterroles", "system:kube-scheduler")["rules"] == _default("system:kube-scheduler")["rules"]
    assert _get(api, "rolebindings", "system:controller:bootstrap-signer", "kube-public")
    assert asyncio.run(reconcile(api)) == []


def test_reconcile_creates_a_subset_in_order(api):
    report = asyncio.run(reconcile(api, PLAIN))
    assert report == ["created clusterroles/admin", "created clusterroles/edit", "created clusterroles/view",
                      "created clusterroles/cluster-admin", "created clusterrolebindings/cluster-admin",
                      "created roles/kube-system/extension-apiserver-authentication-reader"]
    assert _get(api, "clusterroles", "cluster-admin")["rules"] == _default("cluster-admin")["rules"]


def test_reconcile_tops_up_autoupdate_objects_and_keeps_their_additions(api):
    asyncio.run(reconcile(api, PLAIN))
    admin = _get(api, "clusterroles", "cluster-admin")
    widgets = {"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["widgets"]}
    admin["rules"] = [widgets]
    del admin["metadata"]["labels"]
    asyncio.run(api.update(RBAC, "clusterroles", "", admin))
    binding = _get(api, "clusterrolebindings", "cluster-admin")
    binding["subjects"] = [{"kind": "Group", "apiGroup": RBAC, "name": "extra"}]
    asyncio.run(api.update(RBAC, "clusterrolebindings", "", binding))

    report = asyncio.run(reconcile(api, PLAIN))
    assert report == ["updated clusterroles/cluster-admin", "updated clusterrolebindings/cluster-admin"]
    admin = _get(api, "clusterroles", "cluster-admin")
    assert admin["rules"] == [widgets, *_default("cluster-admin")["rules"]]
    assert admin["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
    subjects = _get(api, "clusterrolebindings", "cluster-admin")["subjects"]
    assert [s["name"] for s in subjects] == ["extra", "system:masters"]


def test_reconcile_leaves_objects_whose_autoupdate_is_false(api):
    asyncio.run(reconcile(api, PLAIN))
    view = _get(api, "clusterroles", "view")
    view["metadata"]["annotations"][AUTOUPDATE] = "false"
    view["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"mine": "true"}}]}
    asyncio.run(api.update(RBAC, "clusterroles", "", view))
    assert asyncio.run(reconcile(api, PLAIN)) == []
    assert _get(api, "clusterroles", "view")["aggregationRule"] == view["aggregationRule"]


def test_reconcile_reports_a_binding_whose_role_ref_was_changed(api):
    binding = next(o for o in PLAIN if o["kind"] == "ClusterRoleBinding")
    changed = {**binding, "roleRef": {**binding["roleRef"], "name": "view"}}
    asyncio.run(api.create(RBAC, "clusterrolebindings", "", changed))
    assert asyncio.run(reconcile(api, [binding])) == [
        "kept clusterrolebindings/cluster-admin: its roleRef differs from the default and roleRef cannot change"]
