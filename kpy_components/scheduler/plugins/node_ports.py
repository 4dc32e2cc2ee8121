"""NodePorts: a host port (IP, protocol, port) may be used once per node; 0.0.0.0 conflicts with every IP."""
from __future__ import annotations

from ..framework import ASSIGNED_POD_DELETE, NODE_ADD, OK, SKIPPED, unschedulable

REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(wanted: tuple[str, str, int], used) -> bool:
    ip, protocol, port = wanted
    if ip == ANY_IP:
        return any(p == port and proto == protocol for _, proto, p in used)
    return (ip, protocol, port) in used or (ANY_IP, protocol, port) in used


class NodePorts:
    name = "NodePorts"
    events = frozenset({NODE_ADD, ASSIGNED_POD_DELETE})

    def pre_filter(self, state, pod, nodes):
        return OK if pod.ports else SKIPPED

    def filter(self, state, pod, node):
        used = node.used_ports
        if used and any(conflicts(port, used) for port in pod.ports):
            return unschedulable(self.name, REASON)
        return None
