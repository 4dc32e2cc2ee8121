"""Conntrack sysctls kube-proxy sets at start (conntrack.* in the config): the table size (maxPerCore x CPUs, at
least `min`; only ever raised) and the TCP established and close-wait timeouts. A value that cannot be written
(a read-only /proc/sys, as in containers and lab hosts, where only the machine's init namespace may) is logged
and skipped: the proxy works without them, only with the kernel's defaults."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .config import ProxyConfig

log = logging.getLogger(__name__)
SYSCTL = Path("/proc/sys/net/netfilter")


def wanted(config: ProxyConfig, cpus: int) -> dict[str, int]:
    """sysctl name -> value (0 settings mean: leave the kernel's value)."""
    result = {}
    if config.conntrack_max_per_core > 0:
        result["nf_conntrack_max"] = max(config.conntrack_max_per_core * cpus, config.conntrack_min)
    if config.conntrack_tcp_established_timeout > 0:
        result["nf_conntrack_tcp_timeout_established"] = int(config.conntrack_tcp_established_timeout)
    if config.conntrack_tcp_close_wait_timeout > 0:
        result["nf_conntrack_tcp_timeout_close_wait"] = int(config.conntrack_tcp_close_wait_timeout)
    return result


def apply(config: ProxyConfig, root: Path = SYSCTL) -> None:
    for name, value in wanted(config, os.cpu_count() or 1).items():
        path = root / name
        try:
            current = int(path.read_text().split()[0])
            if current == value or (name == "nf_conntrack_max" and current > value):
                continue
            path.write_text(f"{value}\n")
            log.info("Set sysctl name=net.netfilter.%s value=%d previous=%d", name, value, current)
        except (OSError, ValueError, IndexError) as error:
            log.warning("Skipped sysctl name=net.netfilter.%s value=%d reason=%s", name, value,
                        getattr(error, "strerror", None) or error)
