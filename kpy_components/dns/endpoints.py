"""Keeps the kube-dns EndpointSlice honest about hosts that are down.

kpy-dns runs as a node service, so no endpoint controller judges its replicas as it judges pods: the cluster_dns
role writes one EndpointSlice naming every kpy-dns host (each endpoint with its nodeName). Every replica watches
the Nodes and marks an endpoint not ready while its Node is not Ready (the node lifecycle controller's verdict, 40 s
after a host stops), and ready again when it is, so kpy-proxy sends the kube-dns Service's queries only to hosts
that are up. A kpy-dns process that dies on a live host is back within seconds (systemd); a host that dies is what
this is for. Every replica writes the same content (a function of the Nodes and the slice), so their writes agree;
an endpoint whose Node is unknown is left as the role wrote it.
"""
from __future__ import annotations

import asyncio
import logging

from kpy_components.api.errors import APIError
from kpy_components.client import ClientConnectionError, Informer, RESTClient, SharedInformerFactory

log = logging.getLogger(__name__)


def node_ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def judged(endpoints: list[dict], nodes: dict[str, bool]) -> list[dict]:
    """`endpoints` with conditions.ready set from their Node's readiness (endpoints of unknown nodes unchanged)."""
    result = []
    for endpoint in endpoints:
        node = endpoint.get("nodeName")
        if node in nodes and (endpoint.get("conditions") or {}).get("ready", True) != nodes[node]:
            ready = nodes[node]
            endpoint = {**endpoint, "conditions": {**(endpoint.get("conditions") or {}), "ready": ready,
                                                   "serving": ready}}
        result.append(endpoint)
    return result


class EndpointsKeeper:
    def __init__(self, client: RESTClient, informers: SharedInformerFactory, slices: Informer, slice_key: str):
        self.client = client
        self.namespace, _, self.name = slice_key.partition("/")
        self.info = client.resource("endpointslices", "discovery.k8s.io")
        self.slices = slices
        self.nodes = informers.informer(client.resource("nodes"))
        self._wake = asyncio.Event()
        handler = (lambda *_: self._wake.set())
        self.nodes.add_handler(handler, handler, handler)
        self.slices.add_handler(handler, handler, handler)

    async def run(self) -> None:
        """Reconcile after every Node or slice event, until cancelled; API errors are logged and retried on the
        next event (and every 30 s)."""
        while True:
            try:
                async with asyncio.timeout(30):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self.nodes.has_synced and self.slices.has_synced:
                try:
                    await self.reconcile()
                except (APIError, ClientConnectionError) as error:
                    log.warning("Failed updating endpoints slice=%s/%s error=%s", self.namespace, self.name, error)
                except Exception:  # a bug must not end the keeping for good: logged, tried again on the next event
                    log.exception("Failed updating endpoints slice=%s/%s", self.namespace, self.name)

    async def reconcile(self) -> bool:
        """Write the slice's endpoints if a Node's readiness says otherwise; True when it wrote."""
        current = self.slices.store.get_object(self.namespace, self.name)
        if current is None:
            return False
        nodes = {node["metadata"]["name"]: node_ready(node) for node in self.nodes.store.list()}
        endpoints = current.get("endpoints") or []
        wanted = judged(endpoints, nodes)
        if wanted == endpoints:
            return False
        await self.client.patch(self.info, self.name, {"endpoints": wanted}, self.namespace)
        log.info("Updated endpoints slice=%s/%s not_ready=%s", self.namespace, self.name,
                 ",".join(e.get("nodeName", "") for e in wanted
                          if not (e.get("conditions") or {}).get("ready", True)) or "-")
        return True
