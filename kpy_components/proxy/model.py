"""What the proxy needs from Services and EndpointSlices (plain dicts as the API serves them), as kube-proxy reads
them (pkg/proxy/servicechangetracker.go, endpointslicecache.go, topology.go):

- One `ServicePort` per port of a Service with a ClusterIP (ExternalName and headless Services are not proxied).
- Its endpoints come from the EndpointSlices labelled `kubernetes.io/service-name=<service>` in its namespace,
  matched by port name and protocol; IPv4 slices only (kpy clusters are IPv4 single-stack: see rules.py); an
  address listed by two slices counts once. Conditions as the API defines their absence: ready unset = true,
  serving unset = ready, terminating unset = false.
- Traffic uses the ready endpoints, and only when none is ready the serving-and-terminating ones (so connections
  drain to pods that are shutting down instead of failing); "local" means on this node (`nodeName`).

Pure: no I/O, stdlib only.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
DEFAULT_AFFINITY_SECONDS = 10800  # the API's default sessionAffinityConfig.clientIP.timeoutSeconds


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""

    @property
    def address(self) -> str:
        return f"{self.ip}/{self.port}"


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # nft's name: tcp, udp, sctp
    port: int
    cluster_ips: tuple[str, ...]
    node_port: int = 0
    external_ips: tuple[str, ...] = ()  # spec.externalIPs and status.loadBalancer.ingress[].ip
    affinity_seconds: int = 0  # sessionAffinity ClientIP's timeout; 0: no affinity
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def key(self) -> str:
        """`namespace/name/protocol/portname`: the base of every chain and set name of this port (as upstream)."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    @property
    def has_external(self) -> bool:
        """Whether traffic reaches it from outside the cluster network (a NodePort, external or load-balancer IPs)."""
        return bool(self.node_port or self.external_ips)

    def cluster_endpoints(self) -> tuple[Endpoint, ...]:
        return usable(self.endpoints)

    def local_endpoints(self, node_name: str) -> tuple[Endpoint, ...]:
        return usable(e for e in self.endpoints if e.node_name == node_name)


def usable(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """The ready endpoints; when none is ready, the serving ones that are terminating (upstream's fallback)."""
    endpoints = tuple(endpoints)
    ready = tuple(e for e in endpoints if e.ready)
    return ready or tuple(e for e in endpoints if e.serving and e.terminating)


def _ipv4(values: Iterable) -> tuple[str, ...]:
    result = []
    for value in values:
        try:
            if isinstance(value, str) and ipaddress.ip_address(value).version == 4 and value not in result:
                result.append(value)
        except ValueError:
            continue
    return tuple(result)


def proxied(service: dict) -> bool:
    """Whether kube-proxy programs this Service: it has a ClusterIP (not headless) and is not ExternalName."""
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") not in (None, "", "None")


def slice_endpoints(slices: Iterable[dict], port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    """The endpoints of one service port across the Service's slices, first listing of an address kept, sorted."""
    found: dict[tuple[str, int], Endpoint] = {}
    for endpoint_slice in slices:
        if endpoint_slice.get("addressType") != "IPv4":
            continue
        port = next((p.get("port") for p in endpoint_slice.get("ports") or ()
                     if (p.get("name") or "") == port_name and p.get("protocol", "TCP") == protocol), None)
        if not isinstance(port, int):
            continue
        for endpoint in endpoint_slice.get("endpoints") or ():
            addresses = _ipv4(endpoint.get("addresses") or ())
            if not addresses:
                continue
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready") is not False
            serving = ready if conditions.get("serving") is None else bool(conditions["serving"])
            found.setdefault((addresses[0], port), Endpoint(
                addresses[0], port, ready=ready, serving=serving, terminating=bool(conditions.get("terminating")),
                node_name=endpoint.get("nodeName") or ""))
    return tuple(sorted(found.values()))


def service_ports(service: dict, slices: Iterable[dict]) -> list[ServicePort]:
    """The proxied ports of one Service, each with its endpoints from `slices` (the Service's own slices)."""
    if not proxied(service):
        return []
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    status = service.get("status") or {}
    cluster_ips = _ipv4(spec.get("clusterIPs") or [spec.get("clusterIP")])
    if not cluster_ips:
        return []
    external_ips = _ipv4([*(spec.get("externalIPs") or ()),
                          *(i.get("ip") for i in (status.get("loadBalancer") or {}).get("ingress") or ())])
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = client_ip.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS
    external_local = spec.get("externalTrafficPolicy") == "Local" and spec.get("type") in ("NodePort", "LoadBalancer")
    slices = list(slices)
    result = []
    for port in spec.get("ports") or ():
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS or not isinstance(port.get("port"), int):
            continue
        name = port.get("name") or ""
        node_port = port.get("nodePort") if spec.get("type") in ("NodePort", "LoadBalancer") else 0
        result.append(ServicePort(
            namespace=meta.get("namespace", ""), name=meta.get("name", ""), port_name=name,
            protocol=PROTOCOLS[protocol], port=port["port"], cluster_ips=cluster_ips,
            node_port=node_port if isinstance(node_port, int) else 0, external_ips=external_ips,
            affinity_seconds=affinity, external_local=external_local,
            internal_local=spec.get("internalTrafficPolicy") == "Local",
            endpoints=slice_endpoints(slices, name, protocol)))
    return result


def _slices_by_service(slices: Iterable[dict]) -> dict[tuple[str, str], list[dict]]:
    by_service: dict[tuple[str, str], list[dict]] = {}
    for endpoint_slice in slices:
        meta = endpoint_slice.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            by_service.setdefault((meta.get("namespace", ""), owner), []).append(endpoint_slice)
    return by_service


def all_service_ports(services: Iterable[dict], slices: Iterable[dict]) -> list[ServicePort]:
    """Every proxied port of `services`, each with the endpoints of the slices naming its Service."""
    return ServicePortCache().ports(services, slices)


class ServicePortCache:
    """all_service_ports for a sync loop: a Service whose object and slices are the very objects of the previous
    call keeps its ports without being read again. Sound because informer stores replace objects on every change
    and never mutate them; the cache holds the objects, so their identities cannot be reused meanwhile."""

    def __init__(self):
        self._entries: dict[tuple[str, str], tuple[dict, list[dict], list[ServicePort]]] = {}

    def ports(self, services: Iterable[dict], slices: Iterable[dict]) -> list[ServicePort]:
        by_service = _slices_by_service(slices)
        entries, result = {}, []
        for service in services:
            meta = service.get("metadata") or {}
            key = (meta.get("namespace", ""), meta.get("name", ""))
            own = by_service.get(key, [])
            cached = self._entries.get(key)
            if (cached is not None and cached[0] is service and len(cached[1]) == len(own)
                    and all(a is b for a, b in zip(cached[1], own))):
                ports = cached[2]
            else:
                ports = service_ports(service, own)
            entries[key] = (service, own, ports)
            result.extend(ports)
        self._entries = entries
        return result
