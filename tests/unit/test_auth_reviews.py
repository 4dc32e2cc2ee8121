"""The review resources, shaped as kubectl reads them: SelfSubjectAccessReview / SubjectAccessReview /
LocalSubjectAccessReview (`auth can-i`), SelfSubjectRulesReview (`auth can-i --list`), TokenReview and
SelfSubjectReview (`auth whoami`)."""
import asyncio

import pytest

from kpy_components.api.errors import APIError
from kpy_components.apiserver.auth.authz import PrivilegedGroups, Union
from kpy_components.apiserver.auth.rbac import RBACAuthorizer, RBACIndex
from kpy_components.apiserver.auth.reviews import Reviews
from kpy_components.apiserver.auth.tokens import InvalidToken, TokenResult
from kpy_components.apiserver.http.context import RequestInfo, User

ALICE = User("alice", ("dev", "system:authenticated"), uid="u-1", extra={"scopes": ("a", "b")})
ADMIN = User("admin", ("system:masters", "system:authenticated"))


def info(group, plural, version="v1", namespace=""):
    return RequestInfo(verb="create", path=f"/apis/{group}/{version}/{plural}", is_resource_request=True,
                       api_group=group, api_version=version, resource=plural, namespace=namespace)


@pytest.fixture
def reviews():
    index = RBACIndex()
    index.apply("roles", "ADDED", {"metadata": {"name": "deployer", "namespace": "dev"}, "rules": [
        {"verbs": ["create", "get"], "apiGroups": ["apps"], "resources": ["deployments"]},
        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"]}]})
    index.apply("rolebindings", "ADDED", {"metadata": {"name": "deployers", "namespace": "dev"},
                                          "roleRef": {"kind": "Role", "name": "deployer"},
                                          "subjects": [{"kind": "Group", "name": "dev"}]})
    index.apply("clusterroles", "ADDED", {"metadata": {"name": "health"},
                                          "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]})
    index.apply("clusterrolebindings", "ADDED", {"metadata": {"name": "health"},
                                                 "roleRef": {"kind": "ClusterRole", "name": "health"},
                                                 "subjects": [{"kind": "Group", "name": "system:authenticated"}]})
    index.apply("clusterroles", "ADDED", {"metadata": {"name": "cluster-admin"}, "rules": [
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]})
    index.apply("clusterrolebindings", "ADDED", {"metadata": {"name": "cluster-admin"},
                                                 "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                                                 "subjects": [{"kind": "Group", "name": "system:masters"}]})
    union = Union([PrivilegedGroups(), RBACAuthorizer(index)])

    async def validate_token(token, audiences):
        if token != "good":
            raise InvalidToken("service account token has expired")
        return TokenResult(User("system:serviceaccount:dev:ci", ("system:serviceaccounts", "system:authenticated"),
                                uid="sa-uid"), tuple(audiences or ("https://kubernetes.default.svc",)))

    return Reviews(union.decide, union.rules_for, validate_token)


def _run(coroutine):
    return asyncio.run(coroutine)


def _ssar(**attributes):
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}


def test_can_i_create_deployments(reviews):
    answer = _run(reviews.self_subject_access_review(
        _ssar(namespace="dev", verb="create", group="apps", resource="deployments"), ALICE,
        info("authorization.k8s.io", "selfsubjectaccessreviews")))
    assert answer["kind"] == "SelfSubjectAccessReview" and answer["apiVersion"] == "authorization.k8s.io/v1"
    assert answer["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "deployers/dev" of Role '
                                                           '"deployer" to Group "dev"'}
    assert answer["spec"]["resourceAttributes"]["resource"] == "deployments"
    denied = _run(reviews.self_subject_access_review(
        _ssar(namespace="prod", verb="create", group="apps", resource="deployments"), ALICE,
        info("authorization.k8s.io", "selfsubjectaccessreviews")))
    assert denied["status"] == {"allowed": False}


def test_can_i_non_resource_urls_and_resource_names(reviews):
    body = {"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}
    assert _run(reviews.self_subject_access_review(body, ALICE, info("authorization.k8s.io",
                                                                      "selfsubjectaccessreviews")))["status"][
        "allowed"]
    named = _ssar(namespace="dev", verb="get", resource="configmaps", name="settings")
    assert _run(reviews.self_subject_access_review(named, ALICE, info("authorization.k8s.io",
                                                                       "selfsubjectaccessreviews")))["status"][
        "allowed"]


def test_access_review_needs_exactly_one_kind_of_attributes(reviews):
    with pytest.raises(APIError) as caught:
        _run(reviews.self_subject_access_review({"spec": {}}, ALICE, info("authorization.k8s.io",
                                                                         "selfsubjectaccessreviews")))
    assert caught.value.code == 422
    assert "exactly one of nonResourceAttributes or resourceAttributes must be specified" in caught.value.message


def test_subject_access_review_asks_about_someone_else(reviews):
    body = {"spec": {"user": "bob", "groups": ["dev"], "resourceAttributes": {"namespace": "dev", "verb": "get",
                                                                             "group": "apps",
                                                                             "resource": "deployments"}}}
    answer = _run(reviews.subject_access_review(body, ADMIN, info("authorization.k8s.io", "subjectaccessreviews")))
    assert answer["status"]["allowed"] is True
    body["spec"]["groups"] = []
    assert _run(reviews.subject_access_review(body, ADMIN, info("authorization.k8s.io",
                                                                "subjectaccessreviews")))["status"] == {
        "allowed": False}
    with pytest.raises(APIError, match="at least one of user or group must be specified"):
        _run(reviews.subject_access_review({"spec": {"resourceAttributes": {}}}, ADMIN,
                                           info("authorization.k8s.io", "subjectaccessreviews")))


def test_local_subject_access_review_stays_in_its_namespace(reviews):
    body = {"spec": {"user": "bob", "groups": ["dev"],
                     "resourceAttributes": {"namespace": "dev", "verb": "create", "group": "apps",
                                            "resource": "deployments"}}}
    here = info("authorization.k8s.io", "localsubjectaccessreviews", namespace="dev")
    answer = _run(reviews.local_subject_access_review(body, ADMIN, here))
    assert answer["status"]["allowed"] and answer["metadata"]["namespace"] == "dev"
    elsewhere = info("authorization.k8s.io", "localsubjectaccessreviews", namespace="prod")
    with pytest.raises(APIError, match="must match metadata.namespace"):
        _run(reviews.local_subject_access_review(body, ADMIN, elsewhere))


def test_rules_review_lists_what_kubectl_prints(reviews):
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "dev"}}
    status = _run(reviews.self_subject_rules_review(body, ALICE, info("authorization.k8s.io",
                                                                      "selfsubjectrulesreviews")))["status"]
    assert status == {
        "resourceRules": [{"verbs": ["create", "get"], "apiGroups": ["apps"], "resources": ["deployments"]},
                          {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                           "resourceNames": ["settings"]}],
        "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
        "incomplete": False}


def test_rules_review_for_masters_comes_from_cluster_admin(reviews):
    status = _run(reviews.self_subject_rules_review({"spec": {"namespace": "default"}}, ADMIN,
                                                    info("authorization.k8s.io", "selfsubjectrulesreviews")))["status"]
    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in status["resourceRules"]
    assert {"verbs": ["*"], "nonResourceURLs": ["*"]} in status["nonResourceRules"]


def test_token_review(reviews):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "good"}}
    status = _run(reviews.token_review(body, ADMIN, info("authentication.k8s.io", "tokenreviews")))["status"]
    assert status == {"authenticated": True, "audiences": ["https://kubernetes.default.svc"],
                      "user": {"username": "system:serviceaccount:dev:ci", "uid": "sa-uid",
                               "groups": ["system:serviceaccounts", "system:authenticated"]}}
    bad = _run(reviews.token_review({"spec": {"token": "bad"}}, ADMIN,
                                    info("authentication.k8s.io", "tokenreviews")))["status"]
    assert bad == {"authenticated": False, "user": {}, "error": "service account token has expired"}
    with pytest.raises(APIError) as caught:
        _run(reviews.token_review({"spec": {}}, ADMIN, info("authentication.k8s.io", "tokenreviews")))
    assert caught.value.code == 400 and caught.value.message == "token is required for TokenReview in authentication"


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_whoami_in_every_version_kubectl_asks(reviews, version):
    body = {"apiVersion": f"authentication.k8s.io/{version}", "kind": "SelfSubjectReview"}
    answer = _run(reviews.self_subject_review(body, ALICE, info("authentication.k8s.io", "selfsubjectreviews",
                                                                 version=version)))
    assert answer["apiVersion"] == f"authentication.k8s.io/{version}" and "spec" not in answer
    assert answer["status"] == {"userInfo": {"username": "alice", "uid": "u-1",
                                             "groups": ["dev", "system:authenticated"],
                                             "extra": {"scopes": ["a", "b"]}}}


def test_handlers_cover_every_review(reviews):
    assert set(reviews.handlers()) == {
        ("authorization.k8s.io", "selfsubjectaccessreviews"), ("authorization.k8s.io", "subjectaccessreviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews"), ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authentication.k8s.io", "tokenreviews"), ("authentication.k8s.io", "selfsubjectreviews")}
