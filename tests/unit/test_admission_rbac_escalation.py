"""RBAC escalation prevention: roles and bindings may grant only what the writer holds, unless they may `escalate`
or `bind`; aggregation rules need full authority; system:masters is exempt; upstream's refusal wording."""
import pytest
from test_admission_chain import api, request  # noqa: F401

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.rbac_escalation import RBACEscalation
from kpy_components.apiserver.auth.authz import PrivilegedGroups, Union
from kpy_components.apiserver.auth.rbac import RBACAuthorizer, RBACIndex
from kpy_components.apiserver.http.context import User

pytestmark = pytest.mark.anyio
RBAC = "rbac.authorization.k8s.io"
ALICE = User("alice", ("dev", "system:authenticated"))
ADMIN = User("admin", ("system:masters", "system:authenticated"))


def _role(name, rules, namespace="app", kind="Role"):
    meta = {"name": name, **({"namespace": namespace} if kind == "Role" else {})}
    return {"kind": kind, "metadata": meta, "rules": rules}


def _binding(name, role, role_kind="ClusterRole", user="bob", namespace="app"):
    return {"metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
            "subjects": [{"kind": "User", "apiGroup": RBAC, "name": user}]}


DEPLOYER = [{"verbs": ["get", "create"], "apiGroups": ["apps"], "resources": ["deployments"]}]


@pytest.fixture
async def index(api):
    """Alice is an admin of namespace app (a Role of her own and the deployer ClusterRole)."""
    index = RBACIndex()
    objects = [
        ("clusterroles", _role("deployer", DEPLOYER, kind="ClusterRole")),
        ("clusterroles", _role("wide", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                               kind="ClusterRole")),
        ("roles", _role("rbac-writer", [{"verbs": ["create", "update"], "apiGroups": [RBAC],
                                         "resources": ["roles", "rolebindings"]}])),
        ("rolebindings", _binding("alice-deployer", "deployer", user="alice")),
        ("rolebindings", _binding("alice-rbac", "rbac-writer", role_kind="Role", user="alice")),
    ]
    for plural, obj in objects:
        index.apply(plural, "ADDED", obj)
        await api.create(RBAC, plural, obj["metadata"].get("namespace", ""), {k: v for k, v in obj.items()
                                                                              if k != "kind"})
    return index


def _chain(api, index):
    union = Union([PrivilegedGroups(), RBACAuthorizer(index)])

    async def authorize(user, info):
        return union.decide(user, info)
    return AdmissionChain([], [RBACEscalation(api, authorize, union.rules_for)])


async def _write(api, index, user, plural, obj, operation="CREATE"):
    namespace = obj["metadata"].get("namespace", "")
    await _chain(api, index).admit(operation, request("create", plural, namespace, group=RBAC), obj, None, user)


async def test_a_role_within_held_permissions_is_allowed(api, index):
    await _write(api, index, ALICE, "roles", _role("subset", [{"verbs": ["get"], "apiGroups": ["apps"],
                                                               "resources": ["deployments"]}]))


async def test_granting_more_is_refused_with_upstreams_words(api, index):
    more = _role("more", [{"verbs": ["get", "delete"], "apiGroups": ["apps"], "resources": ["deployments"]},
                          {"verbs": ["list"], "apiGroups": [""], "resources": ["secrets"]}])
    with pytest.raises(APIError) as caught:
        await _write(api, index, ALICE, "roles", more)
    assert caught.value.code == 403
    assert caught.value.message == (
        'roles.rbac.authorization.k8s.io "more" is forbidden: user "alice" (groups=["dev" "system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}\n'
        '{APIGroups:["apps"], Resources:["deployments"], Verbs:["delete"]}')


async def test_binding_a_role_needs_its_permissions_or_bind(api, index):
    await _write(api, index, ALICE, "rolebindings", _binding("bob-deployer", "deployer"))
    with pytest.raises(APIError) as caught:
        await _write(api, index, ALICE, "rolebindings", _binding("bob-wide", "wide"))
    assert "is attempting to grant RBAC permissions not currently held:\n" \
           '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in caught.value.message
    index.apply("clusterroles", "ADDED", _role("binder", [{"verbs": ["bind"], "apiGroups": [RBAC],
                                                           "resources": ["clusterroles"],
                                                           "resourceNames": ["wide"]}], kind="ClusterRole"))
    index.apply("rolebindings", "ADDED", _binding("alice-binder", "binder", user="alice"))
    await _write(api, index, ALICE, "rolebindings", _binding("bob-wide", "wide"))


async def test_escalate_permission_allows_any_role(api, index):
    index.apply("clusterroles", "ADDED", _role("escalator", [{"verbs": ["escalate"], "apiGroups": [RBAC],
                                                              "resources": ["roles"]}], kind="ClusterRole"))
    index.apply("rolebindings", "ADDED", _binding("alice-escalator", "escalator", user="alice"))
    await _write(api, index, ALICE, "roles", _role("anything", [{"verbs": ["*"], "apiGroups": ["*"],
                                                                 "resources": ["*"]}]))


async def test_aggregation_rules_need_full_authority_and_masters_are_exempt(api, index):
    aggregated = _role("gather", [], kind="ClusterRole")
    aggregated["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}
    index.apply("clusterrolebindings", "ADDED", {"metadata": {"name": "alice-deployer"},
                                                 "roleRef": {"kind": "ClusterRole", "name": "deployer"},
                                                 "subjects": [{"kind": "User", "name": "alice"}]})
    with pytest.raises(APIError) as caught:
        await _write(api, index, ALICE, "clusterroles", aggregated)
    assert caught.value.message.endswith("must have cluster-admin privileges to use the aggregationRule")
    await _write(api, index, ADMIN, "clusterroles", aggregated)
    await _write(api, index, ADMIN, "rolebindings", _binding("bob-wide", "wide"))


async def test_binding_a_missing_role_is_refused(api, index):
    with pytest.raises(APIError) as caught:
        await _write(api, index, ALICE, "rolebindings", _binding("ghost", "ghost"))
    assert caught.value.message == ('rolebindings.rbac.authorization.k8s.io "ghost" is forbidden: '
                                    'clusterrole.rbac.authorization.k8s.io "ghost" not found')
