"""Keeps the ZoneIndex current from three shared informers: Services, discovery.k8s.io/v1 EndpointSlices (filed by
their kubernetes.io/service-name label) and Namespaces. Every event recomputes the one Service (or namespace) it
concerns, so an update costs that Service's records, never the zone's.
"""
from __future__ import annotations

from kpy_components.client import Informer, RESTClient, SharedInformerFactory, key_of, split_key

from .records import ZoneIndex

SERVICE_NAME = "kubernetes.io/service-name"
_BY_SERVICE = "kpy-dns-service"


def _slice_service(obj: dict) -> list[str]:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME)
    return [f"{meta.get('namespace')}/{name}"] if name else []


class Feed:
    def __init__(self, index: ZoneIndex, client: RESTClient, informers: SharedInformerFactory):
        self.index = index
        self.services: Informer = informers.informer(client.resource("services"))
        self.slices: Informer = informers.informer(client.resource("endpointslices", "discovery.k8s.io"))
        self.namespaces: Informer = informers.informer(client.resource("namespaces"))
        self.slices.store.add_indexers({_BY_SERVICE: _slice_service})
        self.services.add_handler(self._service, lambda _old, new: self._service(new), self._service)
        self.slices.add_handler(self._slice, self._slice_update, self._slice)
        self.namespaces.add_handler(self._namespace, lambda _old, new: self._namespace(new),
                                    lambda obj: self.index.set_namespace(obj["metadata"]["name"], False))

    @property
    def synced(self) -> bool:
        return self.services.has_synced and self.slices.has_synced and self.namespaces.has_synced

    def refresh(self, key: str) -> None:
        """Recompute the records of Service `key` (namespace/name) from the caches."""
        namespace, name = split_key(key)
        service = self.services.store.get_object(namespace, name)
        slices = self.slices.store.by_index(_BY_SERVICE, key) if service is not None else []
        self.index.set_service(key, service, slices)

    def _service(self, service: dict) -> None:
        self.refresh(key_of(service))

    def _slice(self, slice_: dict) -> None:
        for key in _slice_service(slice_):
            self.refresh(key)

    def _slice_update(self, old: dict, new: dict) -> None:
        for key in {*_slice_service(old), *_slice_service(new)}:
            self.refresh(key)

    def _namespace(self, namespace: dict) -> None:
        self.index.set_namespace(namespace["metadata"]["name"], True)
