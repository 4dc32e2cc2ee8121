"""The endpoints controller (pkg/controller/endpoint): every Service with a selector has an Endpoints object of
the same name listing its pods — ready ones under `addresses`, the others under `notReadyAddresses` (all ready
with publishNotReadyAddresses), each with its IP, nodeName and a targetRef to the pod; ports resolved per pod
(named targetPorts by container port name), pods with the same resolved ports grouped into one subset (as
RepackSubsets does). Endpoints of a deleted Service go too; Services without a selector are left alone.
"""
from __future__ import annotations

import logging

from kpy_components.api.meta import deep_copy
from kpy_components.client import ignore_not_found, split_key

from ..controller import Controller
from .pods import is_ready
from .servicepods import backing_pods, find_port, selector, service_labels, target_ref, watch_services_and_pods

log = logging.getLogger(__name__)


def endpoint_port(service_port: dict, number: int) -> dict:
    port = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def subsets(service: dict, pods: list[dict]) -> list[dict]:
    """The Endpoints subsets of `service` from the pods of its namespace."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    groups: dict[tuple, dict] = {}
    for pod in backing_pods(service, pods, include_terminating=publish):
        ports = [endpoint_port(p, number) for p in service_ports if (number := find_port(pod, p)) is not None]
        if service_ports and not ports:
            continue  # none of the service's ports exists on this pod
        address = {"ip": pod["status"]["podIP"], "targetRef": target_ref(pod)}
        pod_spec = pod.get("spec") or {}
        if pod_spec.get("nodeName"):
            address["nodeName"] = pod_spec["nodeName"]
        if pod_spec.get("hostname") and pod_spec.get("subdomain") == service["metadata"]["name"]:
            address["hostname"] = pod_spec["hostname"]
        key = tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
        group = groups.setdefault(key, {"ports": sorted(ports, key=lambda p: (p.get("name", ""), p["port"]))})
        group.setdefault("addresses" if publish or is_ready(pod) else "notReadyAddresses", []).append(address)
    result = []
    for key in sorted(groups):
        subset = groups[key]
        for field in ("addresses", "notReadyAddresses"):
            if field in subset:
                subset[field].sort(key=lambda a: (a["ip"], a["targetRef"]["uid"]))
        if not subset["ports"]:
            del subset["ports"]
        result.append(subset)
    return result


class EndpointsController(Controller):
    name = "endpoints"
    workers = 5

    def setup(self) -> None:
        self.services, self.pods = watch_services_and_pods(self)
        self.endpoints = self.informer("endpoints")
        self.endpoints.add_handler(on_delete=self.enqueue)  # recreate what someone deleted

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.store.get(key)
        current = self.endpoints.store.get(key)
        if service is None:
            if current is not None:
                await ignore_not_found(self.client.delete(self.endpoints.info, name, namespace))
            return
        if selector(service) is None:
            return
        wanted_subsets = subsets(service, self.pods.store.list(namespace))
        labels = service_labels(service)
        if current is not None and (current.get("subsets") or []) == wanted_subsets and \
                (current["metadata"].get("labels") or {}) == labels:
            return
        if current is None:
            body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace,
                                                                          "labels": labels}}
        else:
            body = deep_copy(current)
            body["metadata"]["labels"] = labels
        body["subsets"] = wanted_subsets
        # a conflict or AlreadyExists means our cache is behind: raising retries the key once it caught up
        if current is None:
            await self.client.create(self.endpoints.info, body)
        else:
            await self.client.update(self.endpoints.info, body)
        log.debug("Synced endpoints namespace=%s service=%s subsets=%d", namespace, name, len(wanted_subsets))
