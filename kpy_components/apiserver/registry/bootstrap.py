"""What exists in every cluster from the first start: the system namespaces, the built-in PriorityClasses
(system-node-critical, system-cluster-critical), the `kubernetes` Service (the first address of the service CIDR,
port 443) and its Endpoints and EndpointSlice listing every live API server.

Each API server announces itself with a short-lived storage key /registry/kpy/masterleases/<ip> (TTL 15 s,
rewritten with a fresh TTL every 10 s), and the endpoints list the addresses with a live key: servers that stop
drop out within 15 s, as with kube-apiserver's lease endpoint reconciler. A restarted server takes over the key
its previous run left behind (an update, never a create that would fail until the old TTL ran out).
"""
from __future__ import annotations

import asyncio
import logging

from kpy_components.api import errors, meta, scheduling
from kpy_components.apiserver.storage.interface import Storage, StorageError

from .api import API
from .context import WriteContext

log = logging.getLogger(__name__)
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
LEASE_PREFIX = "/registry/kpy/masterleases/"
LEASE_TTL, LEASE_INTERVAL = 15, 10.0


async def _ensure(api: API, group: str, plural: str, namespace: str, obj: dict) -> None:
    try:
        await api.store(group, plural).create(WriteContext(field_validation="Ignore"), namespace, obj)
    except errors.APIError as error:
        if error.code != 409:
            raise


async def create_defaults(api: API, port: int, security_objects: list[dict]) -> None:
    """System namespaces, the kubernetes Service, the system PriorityClasses, and the objects security asks for
    (roles, bindings)."""
    for name in SYSTEM_NAMESPACES:
        await _ensure(api, "", "namespaces", "", {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": name}})
    await _ensure(api, "", "services", "default", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": api.cluster_ips.first, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                                "targetPort": port}]}})
    for obj in scheduling.system_priority_classes():
        await _ensure(api, scheduling.GROUP, "priorityclasses", "", obj)
    for obj in security_objects:
        info = api.registry.for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if info is None:
            raise ValueError(f"bootstrap object of unknown kind {obj.get('apiVersion')}/{obj.get('kind')}")
        await _ensure(api, info.group, info.plural, (obj.get("metadata") or {}).get("namespace", ""), obj)


class EndpointsReconciler:
    """Keeps default/kubernetes Endpoints and EndpointSlice listing the live API servers."""

    def __init__(self, api: API, storage: Storage, address: str, port: int):
        self.api, self.storage, self.address, self.port = api, storage, address, port

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except (StorageError, errors.APIError) as error:
                log.warning("Failed to reconcile the kubernetes endpoints: %s", error)
            await asyncio.sleep(LEASE_INTERVAL)

    async def reconcile(self) -> None:
        await self._renew_lease()
        listed = await self.storage.list(LEASE_PREFIX)
        addresses = sorted({item["metadata"]["name"] for item in listed.items} | {self.address})
        await self._set_port()
        await self._write("", "endpoints", {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": ip} for ip in addresses],
                         "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}]}]})
        await self._write("discovery.k8s.io", "endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by": "kpy-apiserver"}},
            "addressType": "IPv6" if ":" in self.address else "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in addresses],
            "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}]})

    async def _renew_lease(self) -> None:
        """Create or take over this address's lease key with a new TTL; renewTime changes on every renewal,
        so the update always writes."""
        lease = {"metadata": {"name": self.address}, "renewTime": meta.now_rfc3339_micro()}
        await self.storage.guaranteed_update(f"{LEASE_PREFIX}{self.address}", lambda _current: lease,
                                             ignore_not_found=True, ttl=LEASE_TTL)

    async def _set_port(self) -> None:
        """The Service's targetPort follows the servers' secure port."""
        store = self.api.store("", "services")

        def with_port(service: dict) -> dict:
            for port in service.get("spec", {}).get("ports", []):
                if port.get("name") == "https":
                    port["targetPort"] = self.port
            return service
        await store.write(WriteContext(field_manager="kpy-apiserver"), "default", "kubernetes", with_port, "")

    async def _write(self, group: str, plural: str, obj: dict) -> None:
        store = self.api.store(group, plural)
        ctx = WriteContext(field_manager="kpy-apiserver", field_validation="Ignore")
        try:
            await store.write(ctx, "default", "kubernetes", lambda current: {**obj, "metadata": {
                **current["metadata"], **obj["metadata"]}}, "")
        except errors.APIError as error:
            if error.code != 404:
                raise
            await store.create(ctx, "default", obj)
