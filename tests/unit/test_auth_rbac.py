"""RBAC: rule matching (verbs, groups, subresources, resourceNames, nonResourceURLs), subjects, bindings and
aggregation, Kubernetes' allow/deny reasons and 403 wording, system:masters, rules listing, rule coverage."""
import pytest

from kpy_components.apiserver.auth.authz import PrivilegedGroups, Union, forbidden
from kpy_components.apiserver.auth.bootstrap import default_policy
from kpy_components.apiserver.auth.rbac import RBACAuthorizer, RBACIndex
from kpy_components.apiserver.auth.rules import PolicyRule, covers
from kpy_components.apiserver.http.context import RequestInfo, User

AUTHENTICATED = "system:authenticated"
ALICE = User("alice", ("dev", AUTHENTICATED))


def req(verb, resource="", namespace="", name="", group="", subresource="", path=""):
    if not resource:
        return RequestInfo(verb=verb, path=path, is_resource_request=False)
    return RequestInfo(verb=verb, path=path or f"/x/{resource}", is_resource_request=True, api_group=group,
                       api_version="v1", resource=resource, subresource=subresource, namespace=namespace, name=name)


def rule(verbs, groups=("",), resources=(), names=(), urls=()):
    return PolicyRule(tuple(verbs), tuple(groups) if resources else (), tuple(resources), tuple(names), tuple(urls))


# --- rules -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy, request_info, allowed", [
    (rule(["get"], resources=["pods"]), req("get", "pods", "ns", "p"), True),
    (rule(["get"], resources=["pods"]), req("list", "pods", "ns"), False),
    (rule(["*"], resources=["pods"]), req("deletecollection", "pods", "ns"), True),
    (rule(["get"], resources=["pods"]), req("get", "pods", "ns", "p", subresource="log"), False),
    (rule(["get"], resources=["pods/log"]), req("get", "pods", "ns", "p", subresource="log"), True),
    (rule(["get"], resources=["*/log"]), req("get", "pods", "ns", "p", subresource="log"), True),
    (rule(["get"], resources=["*/log"]), req("get", "pods", "ns", "p"), False),
    (rule(["get"], resources=["*"]), req("get", "pods", "ns", "p", subresource="log"), True),
    (rule(["get"], resources=["pods/log"]), req("get", "pods", "ns", "p"), False),
    (rule(["get"], resources=["deployments"]), req("get", "deployments", "ns", "d", group="apps"), False),
    (rule(["get"], groups=["apps"], resources=["deployments"]), req("get", "deployments", "ns", "d", group="apps"),
     True),
    (rule(["get"], groups=["*"], resources=["deployments"]), req("get", "deployments", "ns", "d", group="apps"),
     True),
    (rule(["get", "update"], resources=["configmaps"], names=["cfg"]), req("update", "configmaps", "ns", "cfg"),
     True),
    (rule(["get"], resources=["configmaps"], names=["cfg"]), req("get", "configmaps", "ns", "other"), False),
    (rule(["list"], resources=["configmaps"], names=["cfg"]), req("list", "configmaps", "ns"), False),
    (rule(["create"], resources=["configmaps"], names=["cfg"]), req("create", "configmaps", "ns"), False),
    (rule(["get"], urls=["/healthz"]), req("get", path="/healthz"), True),
    (rule(["get"], urls=["/healthz"]), req("get", path="/healthz/etcd"), False),
    (rule(["get"], urls=["/healthz*"]), req("get", path="/healthz/etcd"), True),
    (rule(["get"], urls=["/apis/*"]), req("get", path="/apis/apps/v1"), True),
    (rule(["get"], urls=["*"]), req("post", path="/anything"), False),
    (rule(["get"], resources=["pods"]), req("get", path="/api/v1/pods"), False),
    (rule(["get"], urls=["/api"]), req("get", "pods", "ns", path="/api"), False),
])
def test_rule_matching(policy, request_info, allowed):
    assert policy.allows(request_info) is allowed


def test_rule_round_trips_and_prints_compactly():
    raw = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["p"]}
    assert PolicyRule.from_dict(raw).to_dict() == raw
    assert str(PolicyRule.from_dict(raw)) == '{APIGroups:[""], Resources:["pods"], ResourceNames:["p"], Verbs:["get"]}'
    assert str(rule(["get", "list"], urls=["/healthz"])) == '{NonResourceURLs:["/healthz"], Verbs:["get" "list"]}'


@pytest.mark.parametrize("owner, wanted, covered", [
    ([rule(["*"], groups=["*"], resources=["*"])], rule(["get"], groups=["apps"], resources=["deployments/scale"]),
     True),
    ([rule(["get", "list"], resources=["pods"])], rule(["get"], resources=["pods"]), True),
    ([rule(["get"], resources=["pods"])], rule(["get", "list"], resources=["pods"]), False),
    ([rule(["get"], resources=["pods"]), rule(["list"], resources=["pods"])], rule(["get", "list"],
                                                                                   resources=["pods"]), True),
    ([rule(["get"], resources=["configmaps"], names=["a"])], rule(["get"], resources=["configmaps"]), False),
    ([rule(["get"], resources=["configmaps"])], rule(["get"], resources=["configmaps"], names=["a"]), True),
    ([rule(["get"], resources=["*/scale"])], rule(["get"], resources=["deployments/scale"]), True),
    ([rule(["get"], resources=["pods"])], rule(["get"], resources=["pods/log"]), False),
    ([rule(["get"], urls=["/apis/*"])], rule(["get"], urls=["/apis/apps"]), True),
    ([rule(["get"], urls=["/apis/apps"])], rule(["get"], urls=["/apis/*"]), False),
])
def test_covers(owner, wanted, covered):
    assert covers(owner, wanted) is covered


# --- bindings ---------------------------------------------------------------------------------------------------------

def _obj(kind, name, namespace="", **fields):
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, **fields}


def _index(*objects) -> RBACIndex:
    index = RBACIndex()
    plural = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings",
              "ClusterRoleBinding": "clusterrolebindings"}
    for obj in objects:
        index.apply(plural[obj["kind"]], "ADDED", obj)
    return index


POD_READER = _obj("Role", "pod-reader", "dev", rules=[{"verbs": ["get", "list"], "apiGroups": [""],
                                                       "resources": ["pods", "pods/log"]}])
SECRET_ADMIN = _obj("ClusterRole", "secret-admin", rules=[{"verbs": ["*"], "apiGroups": [""],
                                                           "resources": ["secrets"]}])


def _binding(kind, name, role_kind, role, subjects, namespace=""):
    return _obj(kind, name, namespace, roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                                                "name": role}, subjects=subjects)


def test_rolebinding_grants_only_in_its_namespace_with_upstreams_reason():
    authorizer = RBACAuthorizer(_index(POD_READER, _binding("RoleBinding", "read", "Role", "pod-reader",
                                                            [{"kind": "User", "name": "alice"}], "dev")))
    decision, reason = authorizer.authorize(ALICE, req("get", "pods", "dev", "web", subresource="log"))
    assert decision.value == "allow"
    assert reason == 'RBAC: allowed by RoleBinding "read/dev" of Role "pod-reader" to User "alice"'
    assert authorizer.authorize(ALICE, req("get", "pods", "prod", "web"))[0].value == "no-opinion"
    assert authorizer.authorize(ALICE, req("delete", "pods", "dev", "web"))[0].value == "no-opinion"


def test_clusterrole_through_a_rolebinding_is_namespace_scoped():
    authorizer = RBACAuthorizer(_index(SECRET_ADMIN, _binding("RoleBinding", "secrets", "ClusterRole",
                                                              "secret-admin", [{"kind": "Group", "name": "dev"}],
                                                              "dev")))
    assert authorizer.authorize(ALICE, req("delete", "secrets", "dev", "s"))[0].value == "allow"
    assert authorizer.authorize(ALICE, req("list", "secrets", ""))[0].value == "no-opinion"
    assert authorizer.authorize(ALICE, req("list", "secrets", "kube-system"))[0].value == "no-opinion"


def test_clusterrolebinding_grants_everywhere_to_a_group():
    authorizer = RBACAuthorizer(_index(SECRET_ADMIN, _binding("ClusterRoleBinding", "all-secrets", "ClusterRole",
                                                              "secret-admin", [{"kind": "Group", "name": "dev"}])))
    decision, reason = authorizer.authorize(ALICE, req("list", "secrets"))
    assert decision.value == "allow"
    assert reason == 'RBAC: allowed by ClusterRoleBinding "all-secrets" of ClusterRole "secret-admin" to Group "dev"'
    assert authorizer.authorize(User("bob", (AUTHENTICATED,)), req("list", "secrets"))[0].value == "no-opinion"


def test_service_account_subject_defaults_to_the_bindings_namespace():
    binding = _binding("RoleBinding", "ci", "Role", "pod-reader", [{"kind": "ServiceAccount", "name": "builder"}],
                       "dev")
    authorizer = RBACAuthorizer(_index(POD_READER, binding))
    builder = User("system:serviceaccount:dev:builder", ("system:serviceaccounts", AUTHENTICATED))
    other = User("system:serviceaccount:prod:builder", ("system:serviceaccounts", AUTHENTICATED))
    decision, reason = authorizer.authorize(builder, req("list", "pods", "dev"))
    assert decision.value == "allow" and reason.endswith('to ServiceAccount "builder/dev"')
    assert authorizer.authorize(other, req("list", "pods", "dev"))[0].value == "no-opinion"


def test_missing_role_is_the_deny_reason_and_part_of_the_403():
    authorizer = RBACAuthorizer(_index(_binding("RoleBinding", "broken", "ClusterRole", "gone",
                                                [{"kind": "User", "name": "alice"}], "dev")))
    info = req("list", "pods", "dev")
    decision, reason = authorizer.authorize(ALICE, info)
    assert decision.value == "no-opinion"
    assert reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'
    error = forbidden(ALICE, info, reason)
    assert error.code == 403 and error.reason == "Forbidden"
    assert error.message == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
                             'namespace "dev": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found')


def test_403_wording_for_resources_subresources_cluster_scope_and_paths():
    assert forbidden(ALICE, req("list", "pods", "default"), "").message == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"')
    assert forbidden(ALICE, req("get", "pods", "default", "web", subresource="log"), "").message == (
        'pods "web" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace '
        '"default"')
    assert forbidden(ALICE, req("create", "clusterroles", group="rbac.authorization.k8s.io"), "").message == (
        'clusterroles.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource "clusterroles" in '
        'API group "rbac.authorization.k8s.io" at the cluster scope')
    assert forbidden(ALICE, req("get", path="/metrics"), "").message == (
        'forbidden: User "alice" cannot get path "/metrics"')


def test_changes_are_seen_after_apply_and_replace():
    index = _index(POD_READER)
    authorizer = RBACAuthorizer(index)
    binding = _binding("RoleBinding", "read", "Role", "pod-reader", [{"kind": "User", "name": "alice"}], "dev")
    assert authorizer.authorize(ALICE, req("list", "pods", "dev"))[0].value == "no-opinion"
    index.apply("rolebindings", "ADDED", binding)
    assert authorizer.authorize(ALICE, req("list", "pods", "dev"))[0].value == "allow"
    index.apply("rolebindings", "DELETED", binding)
    assert authorizer.authorize(ALICE, req("list", "pods", "dev"))[0].value == "no-opinion"
    index.replace("rolebindings", [binding])
    assert authorizer.authorize(ALICE, req("list", "pods", "dev"))[0].value == "allow"


def test_rules_for_lists_resource_and_non_resource_rules_and_flags_errors():
    index = _index(POD_READER, _binding("RoleBinding", "read", "Role", "pod-reader",
                                        [{"kind": "User", "name": "alice"}], "dev"),
                   _obj("ClusterRole", "health", rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]),
                   _binding("ClusterRoleBinding", "health", "ClusterRole", "health", [{"kind": "Group",
                                                                                      "name": AUTHENTICATED}]),
                   _binding("ClusterRoleBinding", "broken", "ClusterRole", "gone", [{"kind": "User",
                                                                                    "name": "alice"}]))
    rules = RBACAuthorizer(index).rules_for(ALICE, "dev")
    assert [r.resources for r in rules.resource_rules] == [("pods", "pods/log")]
    assert [r.non_resource_urls for r in rules.non_resource_rules] == [("/healthz",)]
    assert rules.incomplete and rules.errors == ['clusterrole.rbac.authorization.k8s.io "gone" not found']


# --- default policy, aggregation, masters ---------------------------------------------------------------------------

def _default_authorizer(*extra) -> Union:
    return Union([PrivilegedGroups(), RBACAuthorizer(_index(*default_policy(), *extra))])


def _bound_to(cluster_role: str, namespace: str = "dev") -> tuple:
    return (_binding("RoleBinding", f"alice-{cluster_role}", "ClusterRole", cluster_role,
                     [{"kind": "User", "name": "alice"}], namespace),)


@pytest.mark.parametrize("role, request_info, allowed", [
    ("view", req("get", "pods", "dev", "p"), True),
    ("view", req("get", "pods", "dev", "p", subresource="log"), True),
    ("view", req("get", "secrets", "dev", "s"), False),
    ("view", req("create", "pods", "dev"), False),
    ("edit", req("create", "deployments", "dev", group="apps"), True),
    ("edit", req("get", "secrets", "dev", "s"), True),
    ("edit", req("patch", "deployments", "dev", "d", group="apps", subresource="scale"), True),
    ("edit", req("create", "roles", "dev", group="rbac.authorization.k8s.io"), False),
    ("admin", req("create", "roles", "dev", group="rbac.authorization.k8s.io"), True),
    ("admin", req("delete", "pods", "dev", "p"), True),
    ("admin", req("create", "resourcequotas", "dev"), False),
])
def test_aggregated_user_roles(role, request_info, allowed):
    assert _default_authorizer(*_bound_to(role)).decide(ALICE, request_info)[0] is allowed


def test_an_aggregated_role_picks_up_new_labelled_roles():
    extra = _obj("ClusterRole", "widgets-view", rules=[{"verbs": ["get"], "apiGroups": ["example.com"],
                                                        "resources": ["widgets"]}])
    extra["metadata"]["labels"] = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    authorizer = _default_authorizer(extra, *_bound_to("admin"))
    assert authorizer.decide(ALICE, req("get", "widgets", "dev", "w", group="example.com"))[0]


def test_every_authenticated_user_gets_discovery_and_self_reviews():
    authorizer = _default_authorizer()
    assert authorizer.decide(ALICE, req("get", path="/api"))[0]
    assert authorizer.decide(ALICE, req("get", path="/apis/apps/v1"))[0]
    assert authorizer.decide(ALICE, req("create", "selfsubjectaccessreviews", group="authorization.k8s.io"))[0]
    assert authorizer.decide(ALICE, req("create", "selfsubjectrulesreviews", group="authorization.k8s.io"))[0]
    assert authorizer.decide(ALICE, req("create", "selfsubjectreviews", group="authentication.k8s.io"))[0]
    assert authorizer.decide(ALICE, req("list", "pods", "default")) == (False, "")
    assert not authorizer.decide(ALICE, req("get", path="/metrics"))[0]


def test_system_masters_may_do_anything_even_without_bindings():
    admin = User("admin", ("system:masters", AUTHENTICATED))
    union = Union([PrivilegedGroups(), RBACAuthorizer(RBACIndex())])
    assert union.decide(admin, req("delete", "nodes", name="n1")) == (True, "")
    assert union.decide(admin, req("get", path="/metrics")) == (True, "")
    assert union.rules_for(admin, "default").resource_rules == []  # listed rules come from bindings only


def test_masters_rules_come_from_the_cluster_admin_binding_once():
    admin = User("admin", ("system:masters", AUTHENTICATED))
    rules = _default_authorizer().rules_for(admin, "default")
    assert [r.to_dict() for r in rules.resource_rules][0] == {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
    assert [r.to_dict() for r in rules.non_resource_rules].count({"verbs": ["*"], "nonResourceURLs": ["*"]}) == 1


@pytest.mark.parametrize("user, request_info", [
    (User("system:kube-scheduler", (AUTHENTICATED,)), req("create", "pods", "dev", "p", subresource="binding")),
    (User("system:kube-scheduler", (AUTHENTICATED,)), req("update", "leases", "kube-system", "kube-scheduler",
                                                          group="coordination.k8s.io")),
    (User("system:kube-controller-manager", (AUTHENTICATED,)), req("list", "deployments", group="apps")),
    (User("system:kube-controller-manager", (AUTHENTICATED,)), req("create", "serviceaccounts", "kube-system",
                                                                   subresource="token", name="job-controller")),
    (User("system:kube-proxy", ("system:node-proxier", AUTHENTICATED)), req("watch", "endpointslices",
                                                                           group="discovery.k8s.io")),
    (User("system:serviceaccount:kube-system:deployment-controller", ("system:serviceaccounts", AUTHENTICATED)),
     req("create", "replicasets", "dev", group="apps")),
    (User("system:serviceaccount:kube-system:generic-garbage-collector", ("system:serviceaccounts", AUTHENTICATED)),
     req("delete", "widgets", "dev", "w", group="example.com")),
    (User("system:serviceaccount:kube-system:namespace-controller", ("system:serviceaccounts", AUTHENTICATED)),
     req("deletecollection", "configmaps", "dev")),
])
def test_component_identities_have_their_default_permissions(user, request_info):
    assert _default_authorizer().decide(user, request_info)[0]


def test_scheduler_may_not_update_another_lease():
    scheduler = User("system:kube-scheduler", (AUTHENTICATED,))
    assert not _default_authorizer().decide(scheduler, req("update", "leases", "kube-system", "kube-controller-manager",
                                                           group="coordination.k8s.io"))[0]
