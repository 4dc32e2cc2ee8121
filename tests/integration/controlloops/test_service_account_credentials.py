"""--use-service-account-credentials against a real kpy-apiserver: a controller's client authenticates as its own
service account in kube-system and has exactly the rights of system:controller:<account>."""
from __future__ import annotations

import pytest

from kpy_components.client import is_forbidden
from kpy_components.controller_manager.credentials import ServiceAccountCredentials

pytestmark = pytest.mark.anyio


async def _whoami(client) -> str:
    review = await client.create(client.resource("selfsubjectreviews", "authentication.k8s.io"),
                                 {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    return review["status"]["userInfo"]["username"]


async def test_each_controller_writes_as_its_service_account(client, namespace):
    credentials = ServiceAccountCredentials(client)
    try:
        deployments = await credentials.client_for("deployment")
        assert await _whoami(deployments) == "system:serviceaccount:kube-system:deployment-controller"
        assert await credentials.client_for("deployment") is deployments  # one client per account
        assert await credentials.client_for("serviceaccount-token") is client  # runs as the manager itself
        # deployment-controller may create ReplicaSets but not Secrets
        replicaset = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
                      "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                               "template": {"metadata": {"labels": {"a": "b"}},
                                            "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
        created = await deployments.create(deployments.resource("replicasets", "apps"), replicaset, namespace)
        assert created["metadata"]["name"] == "rs"
        with pytest.raises(Exception) as raised:
            await deployments.create(deployments.resource("secrets"), {"metadata": {"name": "s"}}, namespace)
        assert is_forbidden(raised.value)
        path = deployments.config.token_file
        first = path.read_text()
        await credentials._refresh("deployment-controller", path)  # what the renewal task does before expiry
        assert path.read_text() != first and oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        await credentials.close()
    assert not path.exists()  # tokens do not outlive the manager
