"""A pod's DNS configuration (pkg/kubelet/network/dns): which resolver settings the runtime writes into the sandbox's
resolv.conf, from the pod's dnsPolicy and dnsConfig, the kubelet's clusterDNS/clusterDomain and the host's own
resolv.conf.

- ClusterFirst (the default): the cluster DNS servers, search `<ns>.svc.<domain> svc.<domain> <domain>` followed by
  the host's searches, `options ndots:5`. A hostNetwork pod gets Default instead, and so does every pod while the
  kubelet has no clusterDNS (upstream falls back the same way).
- ClusterFirstWithHostNet: ClusterFirst, also for hostNetwork pods.
- Default: the host's resolv.conf as it is.
- None: nothing but the pod's dnsConfig.
Then the pod's dnsConfig is merged in: its nameservers and searches appended (duplicates dropped), its options
overriding those of the same name. Search lists are cut to upstream's limits (32 domains, 2048 characters).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import api_pb2

MAX_SEARCH_DOMAINS = 32
MAX_SEARCH_CHARS = 2048
CLUSTER_NDOTS = "ndots:5"


@dataclass(frozen=True)
class ResolvConf:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> ResolvConf:
    """The nameserver, search and options lines of a resolv.conf (resolv.conf(5): the last search line wins;
    comments start with # or ;)."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [domain.rstrip(".") for domain in fields[1:] if domain.rstrip(".")]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return ResolvConf(tuple(servers), tuple(searches), tuple(options))


@dataclass(frozen=True)
class DNSSettings:
    """The kubelet's side: clusterDNS, clusterDomain and the host's resolv.conf (its resolvConf setting)."""
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    host: ResolvConf = ResolvConf()


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _merge_options(existing: Iterable[str], pod_options: Iterable[dict]) -> list[str]:
    merged: dict[str, str | None] = {}
    for option in existing:
        name, sep, value = option.partition(":")
        merged[name] = value if sep else None
    for option in pod_options:
        merged[option.get("name", "")] = option.get("value")
    return [name if value in (None, "") else f"{name}:{value}" for name, value in merged.items()]


def _fit_searches(searches: list[str]) -> list[str]:
    kept: list[str] = []
    for domain in searches[:MAX_SEARCH_DOMAINS]:
        if len(" ".join([*kept, domain])) > MAX_SEARCH_CHARS:
            break
        kept.append(domain)
    return kept


def policy_of(spec: dict, settings: DNSSettings) -> str:
    """What the pod gets in effect: "cluster", "host" or "none"."""
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "Default":
        return "host"
    if not settings.cluster_dns:
        return "host"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        return "host"
    return "cluster"


def pod_dns_config(pod: dict, settings: DNSSettings) -> api_pb2.DNSConfig:
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = policy_of(spec, settings)
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "host":
        servers, searches, options = list(settings.host.servers), list(settings.host.searches), list(
            settings.host.options)
    elif policy == "cluster":
        servers = list(settings.cluster_dns)
        domain = settings.cluster_domain
        cluster = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain] if domain else []
        searches = _unique([*cluster, *settings.host.searches])
        options = [CLUSTER_NDOTS]
    pod_config = spec.get("dnsConfig") or {}
    if pod_config:
        servers = _unique([*servers, *(pod_config.get("nameservers") or [])])
        searches = _unique([*searches, *(pod_config.get("searches") or [])])
        options = _merge_options(options, pod_config.get("options") or [])
    return api_pb2.DNSConfig(servers=servers, searches=_fit_searches(searches), options=options)
