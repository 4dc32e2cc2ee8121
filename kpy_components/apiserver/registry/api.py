"""Every store of the API server, built from the resource registry, and the in-process `InternalAPI` that security
code (RBAC, admission, reviews) reads and writes through: no HTTP, no authorization, no admission."""
from __future__ import annotations

from kpy_components.api import errors
from kpy_components.api.resources import Registry, ResourceInfo
from kpy_components.apiserver.storage.interface import Storage

from . import conversion
from .allocators import ClusterIPAllocator, NodePortAllocator
from .context import WriteContext
from .store import Store
from .strategies import strategy_for


class API:
    def __init__(self, registry: Registry, storage: Storage, cache: Storage, service_cidr: str):
        """`storage` takes quorum reads and writes; `cache` (a WatchCache over it, or the storage itself) serves
        watches and resourceVersion=0 lists."""
        self.registry = registry
        self.storage, self.cache = storage, cache
        self.cluster_ips = ClusterIPAllocator(storage, service_cidr)
        self.node_ports = NodePortAllocator(storage)
        self.stores: dict[tuple[str, str], Store] = {}
        self.versions: dict[tuple[str, str, str], Store] = {}  # (group, version, plural) of non-stored versions
        self.custom: dict[str, list[ResourceInfo]] = {}  # CRD name -> the ResourceInfos it serves
        namespaces_info = registry.get("", "v1", "namespaces")
        namespaces = self._build(namespaces_info, None) if namespaces_info else None
        for info in registry:
            if info.storage and (info.group, info.plural) not in self.stores:
                self._build(info, namespaces)
        for (group, version, plural), (to_stored, to_served) in conversion.VERSIONS.items():
            info = registry.get(group, version, plural)
            if info is not None:
                self.versions[(group, version, plural)] = conversion.ConvertedVersion(
                    self.stores[(group, plural)], info, to_stored, to_served)

    def _build(self, info: ResourceInfo, namespaces: Store | None) -> Store:
        strategy = strategy_for(info, self.cluster_ips, self.node_ports)
        store = Store(info, strategy, self.storage, cache=self.cache, namespaces=namespaces)
        self.stores[(info.group, info.plural)] = store
        return store

    # --- custom resources (crds.controller) ----------------------------------------------------------------------
    def serve_custom(self, crd: str, infos: list[ResourceInfo]) -> None:
        """Serve (or stop serving, with no infos) the versions of CRD `crd`: each enters the registry (discovery,
        OpenAPI, routing); the storage version's gets the store (the one generic store, over the same storage and
        watch cache as every built-in kind)."""
        from kpy_components.apiserver.crds.versions import ServedVersion

        from kpy_components.api import patch
        from kpy_components.apiserver.crds.structural import merge_types

        for old in self.custom.pop(crd, []):
            if old.kind in patch.CUSTOM_ROOTS:
                patch.register_custom(old.kind, {}, None)
            self.registry.remove(old)
            self.versions.pop((old.group, old.version, old.plural), None)
            if self.stores.get((old.group, old.plural)) and self.stores[(old.group, old.plural)].info is old:
                del self.stores[(old.group, old.plural)]
        if not infos:
            return
        self.custom[crd] = infos
        stored = next((i for i in infos if i.version == i.extra.get("storage_version")), infos[0])
        if not any(i.kind == stored.kind and not i.extra.get("crd") for i in self.registry):
            # list semantics are keyed by kind: a CR named like a built-in kind keeps the built-in's
            patch.register_custom(stored.kind, *merge_types(stored.kind, stored.extra.get("schema")))
        base = self._build(stored, self.stores.get(("", "namespaces")))
        for info in infos:
            if info is not stored:
                strategy = strategy_for(info, self.cluster_ips, self.node_ports)
                self.versions[(info.group, info.version, info.plural)] = ServedVersion(base, info, strategy, self)
            self.registry.add(info)

    def store_for(self, info: ResourceInfo) -> Store:
        """The store serving this version of a resource (a CRD's other versions have views of their own)."""
        return self.versions.get((info.group, info.version, info.plural)) or self.store(info.group, info.plural)

    def store(self, group: str, plural: str) -> Store:
        store = self.stores.get((group, plural))
        if store is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        return store

    def prefixes(self) -> list[str]:
        """The storage prefix of every stored resource (what the watch cache primes)."""
        return [store.prefix() for store in self.stores.values()]

    # --- InternalAPI (http.context) ------------------------------------------------------------------------------
    async def get(self, group: str, plural: str, namespace: str, name: str) -> dict:
        """From the watch cache (storage when the cache has not seen the object yet), as admission plugins and
        token checks read through listers in Kubernetes."""
        return await self.store(group, plural).get(namespace, name, resource_version="0")

    async def peek(self, group: str, plural: str, namespace: str, name: str) -> dict:
        """get, but the watch cache's own object when it has it, not a copy: for lookups that only read."""
        store = self.store(group, plural)
        return await store.peek(namespace, name) or await store.get(namespace, name, resource_version="0")

    async def list(self, group: str, plural: str, namespace: str = "", label_selector: str = "",
                   field_selector: str = "", resource_version: str = "") -> list[dict]:
        """A quorum list by default (authorizers re-list before denying); resource_version="0" reads the cache."""
        listed = await self.store(group, plural).list(namespace, label_selector=label_selector,
                                                      field_selector=field_selector,
                                                      resource_version=resource_version)
        return listed["items"]

    async def create(self, group: str, plural: str, namespace: str, obj: dict) -> dict:
        return await self.store(group, plural).create(WriteContext(field_validation="Ignore"), namespace, obj)

    async def update(self, group: str, plural: str, namespace: str, obj: dict) -> dict:
        name = (obj.get("metadata") or {}).get("name", "")
        stored, _ = await self.store(group, plural).update(WriteContext(field_validation="Ignore"), namespace,
                                                           name, obj)
        return stored

    async def update_status(self, group: str, plural: str, namespace: str, obj: dict) -> dict:
        """Replace obj's status (the /status subresource's update)."""
        name = (obj.get("metadata") or {}).get("name", "")
        stored, _ = await self.store(group, plural).update(WriteContext(field_validation="Ignore"), namespace,
                                                           name, obj, subresource="status")
        return stored
