"""Stale UDP flows, as kube-proxy clears them: UDP has no connection end, so a client that keeps its source port
(DNS resolvers, syslog, ...) keeps its conntrack entry, and with it the translation to an endpoint that has gone,
until the entry times out. After each sync that removed UDP endpoints, their entries are deleted (`conntrack -D`),
so the next datagram is balanced again over the endpoints left; entries of a Service that had no endpoints are
deleted when it gets some. TCP is left alone: a gone endpoint resets its connections itself.

`stale_flows` is pure (old and new service ports -> `conntrack` argument lists); `delete` runs them.
"""
from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable

from .model import ServicePort

log = logging.getLogger(__name__)


def _used(port: ServicePort, node_name: str) -> set[str]:
    """Endpoint IPs traffic to `port` may be translated to."""
    used = {e.ip for e in port.cluster_endpoints()}
    if port.internal_local or port.external_local:
        used |= {e.ip for e in port.local_endpoints(node_name)}
    return used


def stale_flows(old: Iterable[ServicePort], new: Iterable[ServicePort], node_name: str) -> list[list[str]]:
    """`conntrack` arguments deleting the UDP entries that point at endpoints no longer used, and the entries of
    UDP ports that had no endpoints and now have some."""
    before = {(p.key, p.port): p for p in old if p.protocol == "udp"}
    commands = []
    for port in new:
        if port.protocol != "udp":
            continue
        previous = before.get((port.key, port.port))
        if previous is None:
            continue
        was, now = _used(previous, node_name), _used(port, node_name)
        destinations = [["--orig-dst", ip, "--orig-port-dst", str(port.port)]
                        for ip in (*previous.cluster_ips, *previous.external_ips)]
        if previous.node_port:
            destinations.append(["--orig-port-dst", str(previous.node_port)])
        if not was and now:
            commands += [["-D", "-p", "udp", *destination] for destination in destinations]
        for ip in sorted(was - now):
            commands += [["-D", "-p", "udp", *destination, "--reply-src", ip] for destination in destinations]
    removed = {key for key in before} - {(p.key, p.port) for p in new}
    for key in sorted(removed):
        port = before[key]
        for ip in sorted(_used(port, node_name)):
            commands += [["-D", "-p", "udp", "--orig-dst", cluster_ip, "--orig-port-dst", str(port.port),
                          "--reply-src", ip] for cluster_ip in port.cluster_ips]
    return commands


def delete(commands: list[list[str]], binary: str = "conntrack") -> int:
    """Run the deletions; how many ran. conntrack exits 1 when no entry matched, which is no error here; a missing
    binary is logged once per call (install the `conntrack` package)."""
    ran = 0
    for arguments in commands:
        try:
            done = subprocess.run([binary, *arguments], capture_output=True, text=True, check=False)
        except OSError as error:
            log.warning("Skipped clearing stale UDP flows binary=%s reason=%s", binary, error.strerror)
            return ran
        ran += 1
        if done.returncode not in (0, 1):
            log.warning("Failed clearing stale UDP flows args=%s error=%s", " ".join(arguments), done.stderr.strip())
    return ran
