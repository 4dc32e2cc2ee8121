"""kpy-controller-manager's csrapproving and csrsigning controllers together against a REAL kpy-apiserver --dev, each
running as its own service account (certificate-controller, as upstream's): a kubelet client CSR a node creates for
itself (selfnodeclient, granted to system:nodes) and one a bootstrapper creates for a new node (nodeclient, granted
to system:bootstrappers) are approved with reason AutoApproved and then signed by the cluster CA; the same request
from a user without either permission stays pending."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools

import pytest
from conftest import cm_config, eventually, run_component
from cryptography import x509
from test_csr_signing_controller import csr_manifest, csr_of

from apiserver.conftest import Kubectl
from kpy_components.apiserver import dev
from kpy_components.controller_manager import manager
from kpy_components.controller_manager.config import CSRSigningSettings
from kpy_components.pki import issue

pytestmark = pytest.mark.anyio
_names = itertools.count()
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
USAGES = ["digital signature", "client auth"]


def as_user(cluster, tmp_path, name: str, user: str, groups: tuple[str, ...]) -> Kubectl:
    """kubectl 1.33 with a client certificate of `user` in `groups` (files named `name`)."""
    dev.client_certificate(cluster.directory, name, user, groups)
    return Kubectl("1.33", dev.kubeconfig_for(cluster.directory, name, cluster.port), tmp_path / f"cache-{name}")


async def test_node_and_bootstrapper_kubelet_client_csrs_are_approved_then_signed(cluster, tmp_path):
    config = dataclasses.replace(
        cm_config(["csrapproving", "csrsigning"], csr_signing=CSRSigningSettings(
            cert_file=cluster.directory / "ca.crt", key_file=cluster.directory / "ca.key", duration=86400.0)),
        use_service_account_credentials=True)
    admin = Kubectl("1.33", cluster.admin_kubeconfig, tmp_path / "cache-admin")
    ca_cert = x509.load_pem_x509_certificate((cluster.directory / "ca.crt").read_bytes())
    n = next(_names)
    node = as_user(cluster, tmp_path, f"node-{n}", f"system:node:worker-{n}", ("system:nodes",))
    bootstrapper = as_user(cluster, tmp_path, f"bootstrap-{n}", f"system:bootstrap:abc{n:03d}",
                           ("system:bootstrappers",))
    stranger = as_user(cluster, tmp_path, f"stranger-{n}", f"stranger-{n}", ("devs",))
    # the bootstrapper (as kubeadm binds its token's group) and the stranger may create CSRs; only the bootstrapper
    # has nodeclient (the default binding to system:bootstrappers)
    for who in (f"system:bootstrap:abc{n:03d}", f"stranger-{n}"):
        admin("create", "clusterrolebinding", f"csr-creator-{n}-{who.replace(':', '-')}",
              "--clusterrole=system:node-bootstrapper", f"--user={who}")
    requests = {}
    async with run_component(manager.run, config, cluster, name="kube-controller-manager"):
        for who, cn, kubectl in ((f"stranger-{n}", f"system:node:worker-{n}", stranger),
                                 (f"renewal-{n}", f"system:node:worker-{n}", node),
                                 (f"new-node-{n}", f"system:node:new-{n}", bootstrapper)):
            manifest, requests[who] = csr_manifest(who, cn, ("system:nodes",), KUBELET_CLIENT, USAGES)
            await asyncio.to_thread(kubectl, "create", "-f", "-", input=manifest)
        for name, message in ((f"renewal-{n}", "Auto approving self kubelet client certificate after "
                                               "SubjectAccessReview."),
                              (f"new-node-{n}", "Auto approving kubelet client certificate after "
                                                "SubjectAccessReview.")):
            async def issued(name=name):
                return (await csr_of(admin, name)).get("status", {}).get("certificate")
            pem = base64.b64decode(await eventually(issued, message=f"CSR {name} approved and signed"))
            cert = x509.load_pem_x509_certificate(pem)
            assert issue.signed_by(cert, ca_cert) and cert.subject == requests[name].subject
            conditions = (await csr_of(admin, name))["status"]["conditions"]
            assert [(c["type"], c["status"], c["reason"], c["message"]) for c in conditions] == [
                ("Approved", "True", "AutoApproved", message)]
        # approved ones were created after it: it has been looked at, and refused for want of permission
        stranger_csr = await csr_of(admin, f"stranger-{n}")
        assert stranger_csr["spec"]["username"] == f"stranger-{n}"
        assert not stranger_csr.get("status", {}).get("conditions")
        assert "certificate" not in stranger_csr.get("status", {})
        # the same request, approved by a person, is signed: only approval was missing
        await asyncio.to_thread(admin, "certificate", "approve", f"stranger-{n}")

        async def stranger_issued():
            return (await csr_of(admin, f"stranger-{n}")).get("status", {}).get("certificate")
        await eventually(stranger_issued, message="the manually approved CSR is signed")
