"""--use-service-account-credentials, as kube-controller-manager does it: every controller writes to the API as its
own service account kube-system/<account> (bound by the default policy to ClusterRole system:controller:<account>),
so each has only the rights it needs; the manager's own identity (system:kube-controller-manager) only lists and
watches for the shared informers, creates those service accounts and asks for their tokens.

Tokens come from the TokenRequest API (serviceaccounts/<name>/token), are written to private files the REST client
re-reads (client-go's token-file rotation) and are renewed at 80% of their lifetime.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import tempfile
from pathlib import Path

from kpy_components.client import RESTClient, is_already_exists

log = logging.getLogger(__name__)
NAMESPACE = "kube-system"
TOKEN_SECONDS = 3600
RENEW_AT = 0.8  # of the token's lifetime
RETRY_SECONDS = 10.0

# controller (--controllers name) -> the service account it runs as (upstream's names, so RBAC matches)
ACCOUNTS = {
    "deployment": "deployment-controller", "replicaset": "replicaset-controller",
    "daemonset": "daemon-set-controller", "statefulset": "statefulset-controller", "job": "job-controller",
    "cronjob": "cronjob-controller", "namespace": "namespace-controller",
    "serviceaccount": "service-account-controller", "endpoints": "endpoint-controller",
    "endpointslice": "endpointslice-controller", "nodeipam": "node-controller", "nodelifecycle": "node-controller",
    "garbagecollector": "generic-garbage-collector", "podgc": "pod-garbage-collector",
    "disruption": "disruption-controller", "root-ca-cert-publisher": "root-ca-cert-publisher",
    "ttl-after-finished": "ttl-after-finished-controller",
    "csrsigning": "certificate-controller", "csrapproving": "certificate-controller",
    "persistentvolume-binder": "persistent-volume-binder",
    "pvc-protection": "pvc-protection-controller", "pv-protection": "pv-protection-controller",
}
# serviceaccount-token signs tokens into Secrets itself and runs as the manager (as upstream's does).


class ServiceAccountCredentials:
    def __init__(self, client: RESTClient):
        self.client = client
        self._directory = tempfile.TemporaryDirectory(prefix="kpy-controller-tokens-")
        self._clients: dict[str, RESTClient] = {}
        self._renewals: list[asyncio.Task] = []

    async def client_for(self, controller: str) -> RESTClient:
        """The REST client `controller` writes with: its service account's, or the manager's own when it has none."""
        account = ACCOUNTS.get(controller)
        if account is None:
            return self.client
        if account not in self._clients:
            path = Path(self._directory.name, account)
            expires_in = await self._refresh(account, path)
            config = dataclasses.replace(self.client.config, cert_pem=None, key_pem=None, token=None,
                                         token_file=path, source=f"service account {NAMESPACE}/{account}")
            self._clients[account] = RESTClient(config, user_agent=f"kpy-controller-manager/{account}")
            self._renewals.append(asyncio.create_task(self._renew(account, path, expires_in),
                                                      name=f"token-renewal-{account}"))
        return self._clients[account]

    async def _refresh(self, account: str, path: Path) -> float:
        accounts = self.client.resource("serviceaccounts")
        try:
            await self.client.create(accounts, {"metadata": {"name": account, "namespace": NAMESPACE}}, NAMESPACE)
        except Exception as error:  # noqa: BLE001 - it exists already (the usual case after the first start)
            if not is_already_exists(error):
                raise
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": TOKEN_SECONDS}}
        answer = await self.client.create(accounts, request, NAMESPACE, name=account, subresource="token")
        temporary = path.with_suffix(".new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as output:
            output.write(answer["status"]["token"])
        os.replace(temporary, path)  # the client never reads half a token
        return float(answer.get("spec", {}).get("expirationSeconds") or TOKEN_SECONDS)

    async def _renew(self, account: str, path: Path, expires_in: float) -> None:
        delay = expires_in * RENEW_AT
        while True:
            await asyncio.sleep(delay)
            try:
                delay = (await self._refresh(account, path)) * RENEW_AT
            except Exception as error:  # noqa: BLE001 - the old token is still valid for a while: retry soon
                log.warning("Failed to renew the token of %s/%s: %r", NAMESPACE, account, error)
                delay = RETRY_SECONDS

    async def close(self) -> None:
        for task in self._renewals:
            task.cancel()
        await asyncio.gather(*self._renewals, return_exceptions=True)
        await asyncio.gather(*(client.aclose() for client in self._clients.values()))
        self._directory.cleanup()
