"""The CSR approving controller (controller_manager/controllers/csrapproving.py): which requests it recognizes (upstream's
isSelfNodeClientCert / isNodeClientCert), the SubjectAccessReview it asks, and what it writes, against a stand-in for
the API (the one thing faked here), with real CSRs made with `cryptography`."""
from __future__ import annotations

import asyncio
import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kpy_components.controller_manager import controllers
from kpy_components.controller_manager.controllers import csrapproving
from kpy_components.controller_manager.credentials import ACCOUNTS
from kpy_components.apiserver.auth import bootstrap

KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
USAGES = ["digital signature", "client auth"]


def make_spec(cn="system:node:n1", organizations=("system:nodes",), username="system:node:n1",
              signer=KUBELET_CLIENT, usages=USAGES, groups=("system:nodes", "system:authenticated"), **extra) -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, hashes.SHA256())
    return {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": signer, "usages": list(usages), "username": username, "groups": list(groups), **extra}


def subresources(spec: dict) -> list[str]:
    return [r.subresource for r in csrapproving.recognized(spec, csrapproving.parse_request(spec))]


def test_a_node_renewing_its_own_certificate_is_tried_as_selfnodeclient_then_nodeclient():
    assert subresources(make_spec()) == ["selfnodeclient", "nodeclient"]


def test_a_request_for_another_node_is_only_nodeclient():
    assert subresources(make_spec(username="system:bootstrap:abcdef")) == ["nodeclient"]
    assert subresources(make_spec(username="system:node:n2")) == ["nodeclient"]


@pytest.mark.parametrize("spec", [
    {"signer": "kubernetes.io/kube-apiserver-client"},
    {"signer": "kubernetes.io/kubelet-serving"},
    {"organizations": ("devs",)},
    {"cn": "n1", "username": "n1"},
    {"usages": ["digital signature", "server auth"]},
    {"usages": ["client auth"]},
], ids=["apiserver-client", "kubelet-serving", "not-system-nodes", "cn-not-a-node", "serving-usages",
        "missing-digital-signature"])
def test_anything_but_a_valid_kubelet_client_request_is_left_alone(spec):
    assert subresources(make_spec(**spec)) == []


def test_the_review_asks_for_the_requesters_identity_and_the_subresource():
    spec = make_spec(uid="u-1", extra={"scopes": ["a"]})
    assert csrapproving.access_review(spec, "selfnodeclient") == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "system:node:n1", "groups": ["system:nodes", "system:authenticated"], "uid": "u-1",
                 "extra": {"scopes": ["a"]},
                 "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                                        "verb": "create", "subresource": "selfnodeclient", "version": "*"}}}


class StandInAPI:
    """Answers SubjectAccessReviews from `allowed` subresources and records approval updates."""

    def __init__(self, allowed: set[str]):
        self.allowed, self.asked, self.updates = allowed, [], []

    async def create(self, _info, body):
        subresource = body["spec"]["resourceAttributes"]["subresource"]
        self.asked.append(subresource)
        return {**body, "status": {"allowed": subresource in self.allowed}}

    async def update(self, _info, body, subresource=None):
        self.updates.append((subresource, body))
        return body


class Informer:
    info = "csrs"

    def __init__(self, csr):
        self.store = {"n1-csr": csr}


def controller_for(csr: dict, api: StandInAPI) -> csrapproving.CSRApprovingController:
    controller = object.__new__(csrapproving.CSRApprovingController)
    controller.client, controller.csrs, controller.reviews = api, Informer(csr), "subjectaccessreviews"
    return controller


def test_a_renewal_the_node_may_ask_for_is_approved_with_upstreams_reason():
    api = StandInAPI({"selfnodeclient"})
    asyncio.run(controller_for({"metadata": {"name": "n1-csr"}, "spec": make_spec()}, api).reconcile("n1-csr"))
    assert api.asked == ["selfnodeclient"]
    ((subresource, body),) = api.updates
    (condition,) = body["status"]["conditions"]
    assert subresource == "approval"
    assert (condition["type"], condition["status"], condition["reason"], condition["message"]) == (
        "Approved", "True", "AutoApproved", "Auto approving self kubelet client certificate after SubjectAccessReview.")


def test_a_bootstrapper_with_nodeclient_is_approved_with_the_nodeclient_message():
    api = StandInAPI({"nodeclient"})
    csr = {"metadata": {"name": "n1-csr"}, "spec": make_spec(username="system:bootstrap:abcdef",
                                                             groups=("system:bootstrappers",))}
    asyncio.run(controller_for(csr, api).reconcile("n1-csr"))
    assert api.asked == ["nodeclient"]
    assert api.updates[0][1]["status"]["conditions"][0]["message"] == (
        "Auto approving kubelet client certificate after SubjectAccessReview.")


def test_without_permission_nothing_is_written_and_the_key_is_retried():
    api = StandInAPI(set())
    with pytest.raises(csrapproving.NotApproved, match=r"recognized csr 'n1-csr' as \['selfnodeclient', "
                                                        r"'nodeclient'\] but subject access review was not approved"):
        asyncio.run(controller_for({"metadata": {"name": "n1-csr"}, "spec": make_spec()}, api).reconcile("n1-csr"))
    assert api.updates == []


@pytest.mark.parametrize("status", [{"certificate": "eA=="},
                                    {"conditions": [{"type": "Approved", "status": "True"}]},
                                    {"conditions": [{"type": "Denied", "status": "True"}]}])
def test_issued_approved_or_denied_requests_are_not_reviewed(status):
    api = StandInAPI({"selfnodeclient", "nodeclient"})
    asyncio.run(controller_for({"metadata": {"name": "n1-csr"}, "spec": make_spec(), "status": status},
                               api).reconcile("n1-csr"))
    assert (api.asked, api.updates) == ([], [])


def test_registered_on_by_default_as_certificate_controller_with_upstreams_rbac():
    enabled, problems = controllers.select(("*",))
    assert "csrapproving" in enabled and problems == []
    assert ACCOUNTS["csrapproving"] == ACCOUNTS["csrsigning"] == "certificate-controller"
    roles = {role["metadata"]["name"]: role for role in bootstrap.cluster_roles()}
    rules = roles["system:controller:certificate-controller"]["rules"]
    assert {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
            "verbs": ["create"]} in rules
    assert {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval",
                                                                "certificatesigningrequests/status"],
            "verbs": ["update"]} in rules
    bindings = {b["metadata"]["name"]: b for b in bootstrap.cluster_role_bindings()}
    for subresource, group in (("nodeclient", "system:bootstrappers"), ("selfnodeclient", "system:nodes")):
        name = f"system:certificates.k8s.io:certificatesigningrequests:{subresource}"
        assert roles[name]["rules"] == [{"verbs": ["create"], "apiGroups": ["certificates.k8s.io"],
                                         "resources": [f"certificatesigningrequests/{subresource}"]}]
        assert bindings[name]["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                               "name": group}]
