"""kpy-dns's configuration file (every problem reported at once, with its field):

    apiVersion: dns.kpy.io/v1alpha1
    kind: KpyDNSConfiguration
    clientConnection: {kubeconfig: /etc/kpy/kube-dns.kubeconfig}
    clusterDomain: cluster.local
    listen: ["10.213.23.11:53"]   # where DNS is served, UDP and TCP ("[fd00::1]:53" for IPv6)
    ttl: 30                       # seconds, of every record in the zone (kubeadm's Corefile: ttl 30)
    upstreams: []                 # resolvers for names outside the zone ("192.0.2.53:53"); none: SERVFAIL at once
    upstreamTimeout: 2s           # per query, all upstreams together
    cacheSize: 9984               # answers kept (CoreDNS's default cache capacity)
    cacheMaxTTL: 1h               # upper bound on how long an upstream answer is kept
    health: 127.0.0.1:8080        # GET /health (CoreDNS's health plugin)
    ready: 127.0.0.1:8181         # GET /ready: 200 once the caches synced and DNS is served
    metrics: 0.0.0.0:9153         # GET /metrics (Prometheus, CoreDNS's metric names)
    endpointSlice: kube-system/kube-dns-nodes  # the kube-dns slice whose endpoints follow their Node's readiness
                                               # (endpoints.py); empty: none
"""
from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from kpy_components.component.config import ConfigError, Reader, load_yaml, parse_client_connection

API_VERSION = "dns.kpy.io/v1alpha1"
KIND = "KpyDNSConfiguration"
_FIELDS = ("apiVersion", "kind", "clientConnection", "clusterDomain", "listen", "ttl", "upstreams", "upstreamTimeout",
           "cacheSize", "cacheMaxTTL", "health", "ready", "metrics", "endpointSlice")

Address = tuple[str, int]


@dataclass(frozen=True)
class DNSConfig:
    kubeconfig: Path | None = None
    cluster_domain: str = "cluster.local"
    listen: tuple[Address, ...] = (("0.0.0.0", 53),)
    ttl: int = 30
    upstreams: tuple[Address, ...] = ()
    upstream_timeout: float = 2.0
    cache_size: int = 9984
    cache_max_ttl: float = 3600.0
    health: Address = ("127.0.0.1", 8080)
    ready: Address = ("127.0.0.1", 8181)
    metrics: Address = ("0.0.0.0", 9153)
    endpoint_slice: str = ""  # namespace/name


def parse_address(text: str, default_port: int | None = None) -> Address:
    """("10.0.0.1", 53) from "10.0.0.1:53", "[fd00::1]:53" (or a bare address with `default_port`); ValueError."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is None:
        if default_port is None:
            raise ValueError(f"{text!r} has no port (like 10.0.0.1:53)")
        port = str(default_port)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: {port!r} is not a port number")
    return host, int(port)


def _address(reader: Reader, name: str, default: Address) -> Address:
    value = reader.string(name)
    if value is None:
        return default
    try:
        return parse_address(value)
    except ValueError as error:
        reader.problem(name, str(error))
        return default


def _addresses(reader: Reader, name: str, default: tuple[Address, ...], default_port: int) -> tuple[Address, ...]:
    values = reader.strings(name, tuple(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in default))
    result = []
    for index, value in enumerate(values):
        try:
            result.append(parse_address(value, default_port))
        except ValueError as error:
            reader.problem(f"{name}[{index}]", str(error))
    return tuple(result)


def load(path: str | Path | None, args: argparse.Namespace | None = None) -> DNSConfig:
    """The configuration in `path` (defaults when None); ConfigError naming every bad field."""
    config = DNSConfig() if path is None else parse(load_yaml(path), str(path))
    if args is not None and getattr(args, "kubeconfig", None):
        config = replace(config, kubeconfig=Path(args.kubeconfig))
    return config


def parse(data: Any, source: str = "config") -> DNSConfig:
    problems: list[str] = []
    top = Reader(data, "", problems, _FIELDS)
    top.string("apiVersion", API_VERSION, (API_VERSION,))
    top.string("kind", KIND, (KIND,))
    defaults = DNSConfig()
    domain = top.string("clusterDomain", defaults.cluster_domain) or defaults.cluster_domain
    try:
        dns.name.from_text(domain)
    except dns.exception.DNSException as error:
        top.problem("clusterDomain", f"{domain!r} is not a domain name: {error}")
    config = DNSConfig(
        kubeconfig=parse_client_connection(top),
        cluster_domain=domain.rstrip(".").lower(),
        listen=_addresses(top, "listen", defaults.listen, 53),
        ttl=top.integer("ttl", defaults.ttl, minimum=0, maximum=3600),
        upstreams=_addresses(top, "upstreams", defaults.upstreams, 53),
        upstream_timeout=top.duration("upstreamTimeout", defaults.upstream_timeout),
        cache_size=top.integer("cacheSize", defaults.cache_size, minimum=0),
        cache_max_ttl=top.duration("cacheMaxTTL", defaults.cache_max_ttl),
        health=_address(top, "health", defaults.health),
        ready=_address(top, "ready", defaults.ready),
        metrics=_address(top, "metrics", defaults.metrics),
        endpoint_slice=top.string("endpointSlice") or "")
    if top.data.get("listen") == []:
        top.problem("listen", "must name at least one address to serve DNS on")
    if config.endpoint_slice and config.endpoint_slice.count("/") != 1:
        top.problem("endpointSlice", f"must be namespace/name, not {config.endpoint_slice!r}")
    if config.upstream_timeout <= 0:
        top.problem("upstreamTimeout", "must be greater than zero")
    if problems:
        raise ConfigError(problems, source)
    return config
