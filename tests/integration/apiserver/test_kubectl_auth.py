"""`kubectl auth can-i` (SelfSubjectAccessReviews through the real RBAC authorizer) as the admin and as a restricted
user who is granted a Role."""
from __future__ import annotations

import json

GRANT = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: pod-reader, namespace: {namespace}}}
rules: [{{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: read-pods, namespace: {namespace}}}
subjects: [{{kind: User, name: {user}, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}}
"""


def test_admin_can_do_anything(kubectl):
    assert kubectl("auth", "can-i", "create", "deployments.apps").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "*", "*", "--all-namespaces").stdout.strip() == "yes"


def test_restricted_user_gets_exactly_what_a_role_grants(kubectl, apiserver, namespace):
    user = f"bob-{kubectl.version}"
    restricted = kubectl.as_user(apiserver.user_kubeconfig(user))
    denied = restricted("auth", "can-i", "list", "pods", "-n", namespace, check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")

    kubectl("apply", "-f", "-", input=GRANT.format(namespace=namespace, user=user))
    assert restricted("auth", "can-i", "list", "pods", "-n", namespace).stdout.strip() == "yes"
    assert restricted("get", "pods", "-n", namespace).stderr.strip() == f"No resources found in {namespace} namespace."
    still_denied = restricted("auth", "can-i", "delete", "pods", "-n", namespace, check=False)
    assert (still_denied.returncode, still_denied.stdout.strip()) == (1, "no")
    forbidden = restricted("create", "configmap", "x", "-n", namespace, check=False)
    assert forbidden.stderr.strip() == (f'error: failed to create configmap: configmaps is forbidden: User "{user}" '
                                        f'cannot create resource "configmaps" in API group "" in the namespace '
                                        f'"{namespace}"')


def test_create_token_for_a_service_account(kubectl, namespace):
    kubectl("-n", namespace, "create", "serviceaccount", "robot")
    token = kubectl("-n", namespace, "create", "token", "robot", "--duration=15m").stdout.strip()
    assert token.count(".") == 2
    missing = kubectl("-n", namespace, "create", "token", "nobody", check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr


def test_auth_whoami_names_the_user_and_groups(kubectl, apiserver):
    """kubectl 1.27 asks authentication.k8s.io v1beta1 (then v1alpha1), 1.33 asks v1."""
    user = f"carol-{kubectl.version}"
    who = kubectl.as_user(apiserver.user_kubeconfig(user, ("team-a",)))
    result = who("auth", "whoami", "-o", "json")
    review = json.loads(result.stdout)
    expected_version = {"1.27": "v1beta1"}.get(kubectl.version, "v1")
    assert (review["apiVersion"], review["kind"]) == (f"authentication.k8s.io/{expected_version}", "SelfSubjectReview")
    assert review["status"]["userInfo"]["username"] == user
    assert set(review["status"]["userInfo"]["groups"]) == {"team-a", "system:authenticated"}
