"""kpy-proxy's configuration file, in the KubeProxyConfiguration shape (kubeproxy.config.k8s.io/v1alpha1):

    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    kind: KubeProxyConfiguration
    clientConnection: {kubeconfig: /etc/kpy/kube-proxy.kubeconfig}
    hostnameOverride: ""               # the Node's name; this host's name when empty
    mode: nftables                     # the only mode kpy implements ("" means nftables)
    clusterCIDR: 10.200.0.0/16         # the pod network: ClusterIP traffic from outside it is masqueraded
    nodePortAddresses: []              # [] every local address; CIDRs; or ["primary"]: the Node's InternalIPs
    healthzBindAddress: 0.0.0.0:10256  # /healthz /livez, plain HTTP
    metricsBindAddress: 127.0.0.1:10249  # /metrics, plain HTTP, loopback by default as upstream
    configSyncPeriod: 15m
    nftables: {masqueradeAll: false, masqueradeBit: 14, syncPeriod: 30s, minSyncPeriod: 1s}
    conntrack: {maxPerCore: 32768, min: 131072, tcpEstablishedTimeout: 24h, tcpCloseWaitTimeout: 1h}

Fields of other modes (iptables, ipvs, winkernel) and logging settings are accepted and ignored, so upstream
files load. Every problem is reported at once with its field path in a ConfigError.
"""
from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from kpy_components.component.config import ConfigError, Reader, load_yaml, parse_client_connection

API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"
_TOP_FIELDS = (
    "apiVersion", "kind", "bindAddress", "bindAddressHardFail", "clientConnection", "clusterCIDR", "configSyncPeriod",
    "conntrack", "detectLocal", "detectLocalMode", "enableProfiling", "featureGates", "healthzBindAddress",
    "hostnameOverride", "iptables", "ipvs", "linux", "logging", "metricsBindAddress", "mode", "nftables",
    "nodePortAddresses", "oomScoreAdj", "portRange", "showHiddenMetricsForVersion", "winkernel", "windowsRunAsService",
)
_NFTABLES_FIELDS = ("masqueradeAll", "masqueradeBit", "syncPeriod", "minSyncPeriod")
_CONNTRACK_FIELDS = ("maxPerCore", "min", "tcpEstablishedTimeout", "tcpCloseWaitTimeout", "tcpBeLiberal",
                     "udpTimeout", "udpStreamTimeout")


@dataclass(frozen=True)
class ProxyConfig:
    kubeconfig: Path | None = None
    hostname_override: str = ""
    cluster_cidr: str = ""
    node_port_addresses: tuple[str, ...] = ()  # CIDRs, or ("primary",)
    healthz_address: tuple[str, int] = ("0.0.0.0", 10256)
    metrics_address: tuple[str, int] = ("127.0.0.1", 10249)
    config_sync_period: float = 900.0
    masquerade_all: bool = False
    masquerade_bit: int = 14
    sync_period: float = 30.0
    min_sync_period: float = 1.0
    conntrack_max_per_core: int = 32768
    conntrack_min: int = 131072
    conntrack_tcp_established_timeout: float = 86400.0
    conntrack_tcp_close_wait_timeout: float = 3600.0


def _optional(reader: Reader, name: str) -> str:
    """A string field where "" means unset, as in upstream's files."""
    return "" if reader.data.get(name) in (None, "") else reader.string(name) or ""


def _bind_address(reader: Reader, name: str, default: tuple[str, int]) -> tuple[str, int]:
    value = reader.string(name)
    if value is None:
        return default
    host, _, port = value.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError
    except ValueError:
        reader.problem(name, f"must be IP:port (like 0.0.0.0:{default[1]}), not {value!r}")
        return default
    return host.strip("[]"), int(port)


def parse(data, source: str) -> ProxyConfig:
    problems: list[str] = []
    top = Reader(data, "", problems, _TOP_FIELDS)
    if top.data.get("apiVersion") not in (None, API_VERSION):
        top.problem("apiVersion", f"must be {API_VERSION}, not {top.data['apiVersion']!r}")
    if top.data.get("kind") not in (None, KIND):
        top.problem("kind", f"must be {KIND}, not {top.data['kind']!r}")
    if top.data.get("mode") not in (None, "", "nftables"):
        top.problem("mode", f"kpy-proxy implements nftables only, not {top.data['mode']!r}")
    cluster_cidr = _optional(top, "clusterCIDR")
    for cidr in filter(None, cluster_cidr.split(",")):
        try:
            if ipaddress.ip_network(cidr.strip(), strict=False).version != 4:
                top.problem("clusterCIDR", f"{cidr!r}: kpy-proxy programs IPv4 only")
        except ValueError:
            top.problem("clusterCIDR", f"{cidr!r} is not a CIDR")
    cluster_cidr = cluster_cidr.split(",")[0].strip()
    node_port_addresses = top.strings("nodePortAddresses", ())
    for value in node_port_addresses:
        if value == "primary":
            if len(node_port_addresses) > 1:
                top.problem("nodePortAddresses", "\"primary\" cannot be combined with CIDRs")
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            top.problem("nodePortAddresses", f"{value!r} is neither a CIDR nor \"primary\"")
    nft = top.child("nftables", _NFTABLES_FIELDS)
    conntrack = top.child("conntrack", _CONNTRACK_FIELDS)
    config = ProxyConfig(
        kubeconfig=parse_client_connection(top),
        hostname_override=_optional(top, "hostnameOverride"),
        cluster_cidr=cluster_cidr,
        node_port_addresses=node_port_addresses,
        healthz_address=_bind_address(top, "healthzBindAddress", ProxyConfig.healthz_address),
        metrics_address=_bind_address(top, "metricsBindAddress", ProxyConfig.metrics_address),
        config_sync_period=top.duration("configSyncPeriod", 900.0),
        masquerade_all=nft.boolean("masqueradeAll", False),
        masquerade_bit=nft.integer("masqueradeBit", 14, 0, 31),
        sync_period=nft.duration("syncPeriod", 30.0),
        min_sync_period=nft.duration("minSyncPeriod", 1.0),
        conntrack_max_per_core=conntrack.integer("maxPerCore", 32768, 0),
        conntrack_min=conntrack.integer("min", 131072, 0),
        conntrack_tcp_established_timeout=conntrack.duration("tcpEstablishedTimeout", 86400.0),
        conntrack_tcp_close_wait_timeout=conntrack.duration("tcpCloseWaitTimeout", 3600.0))
    if config.sync_period <= 0:
        nft.problem("syncPeriod", "must be greater than zero")
    if config.min_sync_period > config.sync_period:
        nft.problem("minSyncPeriod", f"must not exceed syncPeriod ({config.sync_period:g}s)")
    if problems:
        raise ConfigError(problems, source)
    return config


def load(path: str | None, args: argparse.Namespace | None = None) -> ProxyConfig:
    """The file's configuration (defaults without one), with the command line's overrides applied."""
    config = ProxyConfig() if path is None else parse(load_yaml(path), str(path))
    if args is not None:
        overrides = {}
        if getattr(args, "kubeconfig", None):
            overrides["kubeconfig"] = Path(args.kubeconfig)
        if getattr(args, "hostname_override", None):
            overrides["hostname_override"] = args.hostname_override
        if overrides:
            config = ProxyConfig(**{**config.__dict__, **overrides})
    return config
