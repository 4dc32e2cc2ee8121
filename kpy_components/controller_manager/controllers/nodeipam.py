"""Node IPAM (pkg/controller/nodeipam, the range allocator): every node gets a pod CIDR (spec.podCIDR and
spec.podCIDRs) of nodeIPAM.nodeCIDRMaskSize carved from nodeIPAM.clusterCIDR. Runs only with allocateNodeCIDRs.

Restart-safe: before allocating anything, the CIDRs nodes already hold are marked used, so a node keeps its CIDR
and no CIDR is handed out twice. Subnets overlapping serviceCIDR are never handed out. When the cluster CIDR is
exhausted, the node gets a CIDRNotAvailable event and is tried again later (a deleted node frees its CIDR).
"""
from __future__ import annotations

import ipaddress
import logging

from kpy_components.api.errors import APIError
from kpy_components.client import is_not_found

from ..controller import Controller

log = logging.getLogger(__name__)
RETRY_EXHAUSTED_SECONDS = 10.0


class CIDRSet:
    """The /mask subnets of a cluster CIDR, by index; allocation goes round from after the last one handed out
    (as Kubernetes' cidrset), so a freed CIDR is not reused at once."""

    def __init__(self, cluster_cidr: str, mask: int, reserved: tuple[str, ...] = ()):
        self.network = ipaddress.ip_network(cluster_cidr)
        if not self.network.prefixlen <= mask <= self.network.max_prefixlen:
            raise ValueError(f"mask /{mask} does not fit in {cluster_cidr}")
        self.mask = mask
        self.count = 2 ** (mask - self.network.prefixlen)
        self.step = 2 ** (self.network.max_prefixlen - mask)
        self.used: set[int] = set()
        self.next = 0
        for cidr in reserved:
            self.reserve(cidr)

    def cidr(self, index: int) -> str:
        base = int(self.network.network_address) + index * self.step
        return str(ipaddress.ip_network((base, self.mask)))

    def index(self, cidr: str) -> int | None:
        """The index of one of our subnets; None for anything else (another size, outside the cluster CIDR)."""
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError:
            return None
        if network.version != self.network.version or network.prefixlen != self.mask or \
                not network.subnet_of(self.network):
            return None
        return (int(network.network_address) - int(self.network.network_address)) // self.step

    def occupy(self, cidr: str) -> bool:
        """Mark a CIDR a node holds as used; False when it is not one of ours."""
        index = self.index(cidr)
        if index is None:
            return False
        self.used.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self.index(cidr)
        if index is not None:
            self.used.discard(index)

    def reserve(self, other: str) -> None:
        """Never hand out subnets overlapping `other` (the Service network)."""
        network = ipaddress.ip_network(other)
        if network.version != self.network.version or not network.overlaps(self.network):
            return
        base = int(self.network.network_address)
        first = max(int(network.network_address), base) - base
        last = min(int(network.broadcast_address), int(self.network.broadcast_address)) - base
        self.used.update(range(first // self.step, last // self.step + 1))

    def allocate(self) -> str | None:
        """The next free CIDR (marked used), or None when every one is taken."""
        if len(self.used) >= self.count:
            return None
        for offset in range(self.count):
            index = (self.next + offset) % self.count
            if index not in self.used:
                self.used.add(index)
                self.next = (index + 1) % self.count
                return self.cidr(index)
        return None


def node_cidrs(node: dict) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


class NodeIpamController(Controller):
    name = "nodeipam"

    @classmethod
    def wanted(cls, config) -> bool:
        return config.node_ipam.allocate_node_cidrs

    def setup(self) -> None:
        settings = self.config.node_ipam
        reserved = (self.config.service_cidr,) if self.config.service_cidr else ()
        self.cidrs = CIDRSet(settings.cluster_cidr, settings.node_cidr_mask_size, reserved)
        self.assigned: dict[str, str] = {}  # node -> CIDR we patched in, until the node shows it
        self.loaded = False
        self.nodes = self.informer("nodes")
        self.nodes.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                               on_delete=self._node_deleted)

    def _node_deleted(self, node: dict) -> None:
        for cidr in [*node_cidrs(node), self.assigned.pop(node["metadata"]["name"], None)]:
            if cidr:
                self.cidrs.release(cidr)
        for waiting in self.nodes.store.list():  # a node the exhausted range made wait may get this CIDR
            if not node_cidrs(waiting) and waiting["metadata"]["name"] not in self.assigned:
                self.enqueue(waiting)

    def _load(self) -> None:
        """Once, before the first allocation: every CIDR a node holds is taken (the informer has synced)."""
        for node in self.nodes.store.list():
            for cidr in node_cidrs(node):
                if not self.cidrs.occupy(cidr):
                    log.warning("Node CIDR outside the cluster CIDR node=%s cidr=%s cluster_cidr=%s",
                                node["metadata"]["name"], cidr, self.cidrs.network)
        self.loaded = True

    async def reconcile(self, name: str) -> None:
        if not self.loaded:
            self._load()
        node = self.nodes.store.get(name)
        if node is None:
            return
        held = node_cidrs(node)
        if held:
            for cidr in held:
                self.cidrs.occupy(cidr)
            ours = self.assigned.pop(name, None)
            if ours and ours not in held:  # someone else set the node's CIDR first: ours is free again
                self.cidrs.release(ours)
            return
        cidr = self.assigned.get(name) or self.cidrs.allocate()
        if cidr is None:
            self.recorder.event(node, "Normal", "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable")
            log.warning("No pod CIDR left for node=%s cluster_cidr=%s", name, self.cidrs.network)
            self.queue.add_after(name, RETRY_EXHAUSTED_SECONDS)
            return
        self.assigned[name] = cidr
        try:
            await self.client.patch(self.nodes.info, name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except APIError as error:
            if is_not_found(error):
                self.cidrs.release(self.assigned.pop(name))
                return
            raise  # retried with the same CIDR (self.assigned)
        log.info("Allocated pod CIDR node=%s cidr=%s", name, cidr)
