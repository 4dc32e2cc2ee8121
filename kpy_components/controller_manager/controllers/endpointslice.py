"""The endpoint slice controller (pkg/controller/endpointslice): every Service with a selector has
discovery.k8s.io/v1 EndpointSlices labelled kubernetes.io/service-name=<service> and
endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io, owned by the Service, holding at most
MAX_ENDPOINTS endpoints each. Pods whose ports resolve alike (named targetPorts may differ per pod) and whose IPs
are of one family share slices. Unlike Endpoints, terminating pods stay listed, with their conditions:
ready (Ready and not terminating), serving (Ready), terminating. A Service with no endpoints keeps one empty
placeholder slice, as Kubernetes does.
"""
from __future__ import annotations

import ipaddress
import logging

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy
from kpy_components.client import is_not_found, split_key

from ..controller import Controller, new_controller_ref
from .pods import is_ready, is_terminating
from .servicepods import backing_pods, find_port, selector, service_labels, target_ref, watch_services_and_pods

log = logging.getLogger(__name__)
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS = 100  # kube-controller-manager's --max-endpoints-per-slice default


def _family(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def slice_port(service_port: dict, number: int) -> dict:
    port = {"name": service_port.get("name") or "", "port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def endpoint(pod: dict, publish: bool, zones: dict[str, str]) -> dict:
    ready, terminating = is_ready(pod), is_terminating(pod)
    entry = {"addresses": [pod["status"]["podIP"]],
             "conditions": {"ready": publish or (ready and not terminating), "serving": publish or ready,
                            "terminating": terminating},
             "targetRef": target_ref(pod)}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        entry["nodeName"] = node
        if zones.get(node):
            entry["zone"] = zones[node]
    return entry


def desired_groups(service: dict, pods: list[dict], zones: dict[str, str]) -> dict[tuple, list[dict]]:
    """(addressType, ports as a tuple of sorted items) -> the endpoints of that group, ordered by pod name."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    groups: dict[tuple, list[dict]] = {}
    for pod in sorted(backing_pods(service, pods, include_terminating=True), key=lambda p: p["metadata"]["name"]):
        ports = [slice_port(p, number) for p in service_ports if (number := find_port(pod, p)) is not None]
        if service_ports and not ports:
            continue
        key = (_family(pod["status"]["podIP"]), tuple(tuple(sorted(p.items())) for p in ports))
        groups.setdefault(key, []).append(endpoint(pod, publish, zones))
    return groups


def chunks(endpoints: list[dict], size: int = MAX_ENDPOINTS) -> list[list[dict]]:
    return [endpoints[i:i + size] for i in range(0, len(endpoints), size)] or [[]]


class SliceTracker:
    """What this controller last wrote, so a reconcile does not act on a cache that has not caught up with its own
    writes (which would create a second slice for the same endpoints): resourceVersions written, names deleted."""

    def __init__(self):
        self.written: dict[str, int] = {}  # namespace/name -> resourceVersion of our last write
        self.deleted: set[str] = set()

    def wrote(self, endpoint_slice: dict) -> None:
        self.written[_slice_key(endpoint_slice)] = _version(endpoint_slice)

    def removed(self, endpoint_slice: dict) -> None:
        self.written.pop(_slice_key(endpoint_slice), None)
        self.deleted.add(_slice_key(endpoint_slice))

    def gone(self, endpoint_slice: dict) -> None:
        """A delete event: whoever deleted it, there is nothing left to wait for."""
        self.written.pop(_slice_key(endpoint_slice), None)
        self.deleted.discard(_slice_key(endpoint_slice))

    def stale(self, namespace: str, lookup) -> bool:
        """Whether the cache misses one of our writes in `namespace` (lookup: slice key -> cached slice)."""
        if any(key.startswith(f"{namespace}/") and lookup(key) is not None for key in self.deleted):
            return True
        for key, version in list(self.written.items()):
            if key.startswith(f"{namespace}/"):
                current = lookup(key)
                if current is None or _version(current) < version:
                    return True
                del self.written[key]  # seen: nothing to remember any more
        return False


def _slice_key(endpoint_slice: dict) -> str:
    return f"{endpoint_slice['metadata']['namespace']}/{endpoint_slice['metadata']['name']}"


def _version(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _group_of(endpoint_slice: dict) -> tuple:
    return (endpoint_slice.get("addressType"),
            tuple(tuple(sorted(p.items())) for p in endpoint_slice.get("ports") or []))


class EndpointSliceController(Controller):
    name = "endpointslice"
    workers = 5

    def setup(self) -> None:
        self.services, self.pods = watch_services_and_pods(self)
        self.nodes = self.informer("nodes")
        self.slices = self.informer("endpointslices", "discovery.k8s.io")
        self.slices.add_handler(on_update=lambda _old, new: self._slice_changed(new), on_delete=self._slice_deleted)
        self.tracker = SliceTracker()

    def _slice_changed(self, endpoint_slice: dict) -> None:
        labels = endpoint_slice["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY) == CONTROLLER_NAME and labels.get(SERVICE_NAME):
            self.queue.add(f"{endpoint_slice['metadata']['namespace']}/{labels[SERVICE_NAME]}")

    def _slice_deleted(self, endpoint_slice: dict) -> None:
        self.tracker.gone(endpoint_slice)
        self._slice_changed(endpoint_slice)

    def owned_slices(self, namespace: str, service: str) -> list[dict]:
        return sorted((s for s in self.slices.store.list(namespace)
                       if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == service
                       and s["metadata"]["labels"].get(MANAGED_BY) == CONTROLLER_NAME),
                      key=lambda s: s["metadata"]["name"])

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.store.get(key)
        existing = self.owned_slices(namespace, name)
        if self.tracker.stale(namespace, self.slices.store.get):
            self.queue.add_after(key, 0.2)  # our last writes are on their way through the informer
            return
        if service is None or selector(service) is None:
            for stale in existing:  # the garbage collector would too (they are owned); no need to wait for it
                await self._delete(stale)
            return
        zones = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone", "")
                 for n in self.nodes.store.list()}
        groups = desired_groups(service, self.pods.store.list(namespace), zones)
        if not groups:  # the placeholder: an empty slice of the Service's first IP family
            family = ((service.get("spec") or {}).get("ipFamilies") or ["IPv4"])[0]
            groups = {(family, ()): []}
        reusable = {}
        for endpoint_slice in existing:
            reusable.setdefault(_group_of(endpoint_slice), []).append(endpoint_slice)
        for group, endpoints in sorted(groups.items()):
            for part in chunks(endpoints):
                candidates = reusable.get(group) or []
                await self._write(service, group, part, candidates.pop(0) if candidates else None)
        for leftovers in reusable.values():
            for stale in leftovers:
                await self._delete(stale)

    async def _write(self, service: dict, group: tuple, endpoints: list[dict], current: dict | None) -> None:
        """Create a slice, or update `current` if its content or labels differ. Conflicts raise (retried)."""
        labels = {**service_labels(service), SERVICE_NAME: service["metadata"]["name"], MANAGED_BY: CONTROLLER_NAME}
        address_type, ports = group
        content = {"addressType": address_type, "endpoints": endpoints, "ports": [dict(p) for p in ports]}
        if current is None:
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", **content,
                    "metadata": {"generateName": f"{service['metadata']['name']}-",
                                 "namespace": service["metadata"]["namespace"], "labels": labels,
                                 "ownerReferences": [new_controller_ref(service)]}}
            self.tracker.wrote(await self.client.create(self.slices.info, body))
            return
        if all((current.get(k) or []) == (v or []) for k, v in content.items() if k != "addressType") and \
                current["metadata"].get("labels") == labels:
            return
        body = deep_copy(current)
        body.update(content)
        body["metadata"]["labels"] = labels
        self.tracker.wrote(await self.client.update(self.slices.info, body))

    async def _delete(self, endpoint_slice: dict) -> None:
        try:
            await self.client.delete(self.slices.info, endpoint_slice["metadata"]["name"],
                                     endpoint_slice["metadata"]["namespace"])
        except APIError as error:
            if not is_not_found(error):
                raise
            return
        self.tracker.removed(endpoint_slice)
