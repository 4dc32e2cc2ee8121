"""The root CA publisher (pkg/controller/certificates/rootcacertpublisher): every namespace has the ConfigMap
`kube-root-ca.crt` whose `ca.crt` is the cluster CA (serviceAccount.rootCAFile), which the API server's
ServiceAccount admission mounts into pods next to their token. Edits and deletions are undone. Runs only when the
CA file is configured.
"""
from __future__ import annotations

import logging

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy
from kpy_components.client import is_already_exists, is_conflict, is_forbidden, is_not_found

from ..controller import Controller
from .pods import is_terminating
from .serviceaccount import read_file

log = logging.getLogger(__name__)
CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"

    @classmethod
    def wanted(cls, config) -> bool:
        return config.service_account.root_ca_file is not None

    def setup(self) -> None:
        self.ca = read_file(self.config.service_account.root_ca_file, "serviceAccount.rootCAFile").decode()
        self.namespaces = self.informer("namespaces")
        self.configmaps = self.informer("configmaps")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))
        self.configmaps.add_handler(on_update=lambda _old, new: self._configmap_changed(new),
                                    on_delete=self._configmap_changed)

    def _configmap_changed(self, configmap: dict) -> None:
        if configmap["metadata"]["name"] == CONFIGMAP:
            self.queue.add(configmap["metadata"]["namespace"])

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.store.get(key)
        if namespace is None or is_terminating(namespace):
            return
        current = self.configmaps.store.get_object(key, CONFIGMAP)
        try:
            if current is None:
                await self.client.create(self.configmaps.info, {
                    "apiVersion": "v1", "kind": "ConfigMap", "data": {"ca.crt": self.ca},
                    "metadata": {"name": CONFIGMAP, "namespace": key,
                                 "annotations": {"kubernetes.io/description": DESCRIPTION}}})
                log.info("Published the root CA namespace=%s", key)
            elif (current.get("data") or {}).get("ca.crt") != self.ca or set(current.get("data") or {}) != {"ca.crt"}:
                updated = deep_copy(current)
                updated["data"] = {"ca.crt": self.ca}
                await self.client.update(self.configmaps.info, updated)
                log.info("Restored the root CA namespace=%s", key)
        except APIError as error:
            # created/changed meanwhile (our cache is behind: the event brings us back) or the namespace is going
            if not (is_already_exists(error) or is_conflict(error) or is_forbidden(error) or is_not_found(error)):
                raise
