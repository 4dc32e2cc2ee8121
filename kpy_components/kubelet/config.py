"""The kubelet's configuration file, in the KubeletConfiguration shape (kubelet.config.k8s.io/v1beta1):

    apiVersion: kubelet.config.k8s.io/v1beta1
    kind: KubeletConfiguration
    address: 0.0.0.0                  # the kubelet API (port 10250, TLS)
    port: 10250
    healthzBindAddress: 127.0.0.1     # plain-HTTP /healthz (port 10248)
    healthzPort: 10248
    readOnlyPort: 0                   # never served: kpy refuses any other value
    tlsCertFile: /etc/kpy/pki/kubelet.crt
    tlsPrivateKeyFile: /etc/kpy/pki/kubelet.key
    authentication:
      x509: {clientCAFile: /etc/kpy/pki/ca.crt}
      webhook: {enabled: true, cacheTTL: 2m}
      anonymous: {enabled: false}
    authorization: {mode: Webhook}    # SubjectAccessReview for every request (AlwaysAllow only for tests)
    clusterDomain: cluster.local
    clusterDNS: [10.96.0.10]
    containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
    cgroupDriver: systemd             # must match containerd's runc SystemdCgroup
    maxPods: 110
    systemReserved: {cpu: 100m, memory: 256Mi}
    kubeReserved: {}
    evictionHard: {memory.available: 100Mi, nodefs.available: 10%}
    nodeStatusUpdateFrequency: 10s
    nodeStatusReportFrequency: 5m
    nodeLeaseDurationSeconds: 40
    registerWithTaints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]

Node-specific settings are flags, as upstream's are: --kubeconfig, --hostname-override, --node-ip, --node-labels,
--root-dir; and kpy's own for the pod network it wires itself: --cluster-cidr (the whole pod network, for
masquerading only traffic that leaves it) and --cni-conf-dir.

Every problem is reported at once with its field path in a ConfigError, so nothing half-configured runs.
"""
from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from kpy_components.api.quantity import Quantity, QuantityError
from kpy_components.component.config import ConfigError, Reader, load_yaml, unreadable

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"
RESERVABLE = ("cpu", "memory", "ephemeral-storage", "pid")
EVICTION_SIGNALS = ("memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "pid.available")
_TOP_FIELDS = (
    "apiVersion", "kind", "address", "port", "healthzBindAddress", "healthzPort", "readOnlyPort", "tlsCertFile",
    "tlsPrivateKeyFile", "authentication", "authorization", "clusterDomain", "clusterDNS", "containerRuntimeEndpoint",
    "cgroupDriver", "maxPods", "systemReserved", "kubeReserved", "evictionHard", "nodeStatusUpdateFrequency",
    "nodeStatusReportFrequency", "nodeLeaseDurationSeconds", "registerNode", "registerWithTaints",
    "serializeImagePulls", "resolvConf", "podLogsDir", "staticPodPath", "failSwapOn",
)


@dataclass(frozen=True)
class KubeletConfig:
    kubeconfig: Path | None = None
    node_name: str = ""  # --hostname-override; the host's name when empty
    node_ip: str = ""  # --node-ip; the address of the default route's interface when empty
    node_labels: dict[str, str] = field(default_factory=dict)
    root_dir: Path = Path("/var/lib/kubelet")
    pod_logs_dir: Path = Path("/var/log/pods")
    cni_conf_dir: Path = Path("/etc/cni/net.d")
    cluster_cidr: str = ""  # the whole pod network; empty: no masquerade rule
    address: str = "0.0.0.0"
    port: int = 10250
    healthz_bind_address: str = "127.0.0.1"
    healthz_port: int = 10248
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    client_ca_file: Path | None = None
    webhook_authentication: bool = True
    webhook_cache_ttl: float = 120.0
    anonymous: bool = False
    authorization_mode: str = "Webhook"
    cluster_domain: str = "cluster.local"
    cluster_dns: tuple[str, ...] = ()
    runtime_endpoint: str = "/run/containerd/containerd.sock"  # a unix socket path
    cgroup_driver: str = "systemd"
    max_pods: int = 110
    system_reserved: dict[str, Quantity] = field(default_factory=dict)
    kube_reserved: dict[str, Quantity] = field(default_factory=dict)
    eviction_hard: dict[str, str] = field(default_factory=lambda: {"memory.available": "100Mi",
                                                                    "nodefs.available": "10%"})
    status_update_frequency: float = 10.0
    status_report_frequency: float = 300.0
    lease_duration_seconds: int = 40
    register_node: bool = True
    register_with_taints: tuple[dict, ...] = ()
    serialize_image_pulls: bool = True
    resolv_conf: Path | None = Path("/etc/resolv.conf")  # the host's, for dnsPolicy Default


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="KubeletConfiguration file (YAML)")
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig to reach the API server")
    parser.add_argument("--hostname-override", default="", help="the Node's name (default: this host's name)")
    parser.add_argument("--node-ip", default="", help="the Node's InternalIP (default: the default route's address)")
    parser.add_argument("--node-labels", default="", help="labels to register the Node with: key=value,...")
    parser.add_argument("--root-dir", type=Path, default=Path("/var/lib/kubelet"), help="pod volumes and state")
    parser.add_argument("--cni-conf-dir", type=Path, default=Path("/etc/cni/net.d"),
                        help="where the kubelet writes the node's CNI configuration")
    parser.add_argument("--cluster-cidr", default="", help="the cluster's pod network (masquerade what leaves it)")


def load(path: str | None, args: argparse.Namespace) -> KubeletConfig:
    """The configuration from the file (defaults when None) and the flags; ConfigError with every problem."""
    data = load_yaml(path) if path else {"apiVersion": API_VERSION, "kind": KIND}
    return parse(data, str(path or "defaults"), args)


def parse(data, source: str, args: argparse.Namespace) -> KubeletConfig:
    problems: list[str] = []
    top = Reader(data, "", problems, _TOP_FIELDS)
    top.string("apiVersion", API_VERSION, (API_VERSION,))
    top.string("kind", KIND, (KIND,))
    if top.data.get("readOnlyPort", 0) != 0:
        top.problem("readOnlyPort", "kpy never serves the unauthenticated read-only port: leave it 0")
    authn = top.child("authentication", ("x509", "webhook", "anonymous"))
    x509 = authn.child("x509", ("clientCAFile",))
    webhook = authn.child("webhook", ("enabled", "cacheTTL"))
    anonymous = authn.child("anonymous", ("enabled",))
    authz = top.child("authorization", ("mode", "webhook"))
    labels = _labels(args.node_labels, problems)
    config = KubeletConfig(
        kubeconfig=args.kubeconfig,
        node_name=args.hostname_override.strip().lower(),
        node_ip=_address(args.node_ip, "--node-ip", problems) if args.node_ip else "",
        node_labels=labels,
        root_dir=args.root_dir,
        pod_logs_dir=top.path("podLogsDir") or Path("/var/log/pods"),
        cni_conf_dir=args.cni_conf_dir,
        cluster_cidr=_network(args.cluster_cidr, "--cluster-cidr", problems) if args.cluster_cidr else "",
        address=top.string("address", "0.0.0.0"),
        port=top.port("port", 10250),
        healthz_bind_address=top.string("healthzBindAddress", "127.0.0.1"),
        healthz_port=top.port("healthzPort", 10248),
        tls_cert_file=top.path("tlsCertFile"),
        tls_private_key_file=top.path("tlsPrivateKeyFile"),
        client_ca_file=x509.path("clientCAFile"),
        webhook_authentication=webhook.boolean("enabled", True),
        webhook_cache_ttl=webhook.duration("cacheTTL", 120.0),
        anonymous=anonymous.boolean("enabled", False),
        authorization_mode=authz.string("mode", "Webhook", ("Webhook", "AlwaysAllow")),
        cluster_domain=top.string("clusterDomain", "cluster.local"),
        cluster_dns=tuple(_address(a, "clusterDNS", problems) for a in top.strings("clusterDNS", ())),
        runtime_endpoint=_endpoint(top),
        cgroup_driver=top.string("cgroupDriver", "systemd", ("systemd", "cgroupfs")),
        max_pods=top.integer("maxPods", 110, minimum=1),
        system_reserved=_resources(top, "systemReserved"),
        kube_reserved=_resources(top, "kubeReserved"),
        eviction_hard=_eviction(top),
        status_update_frequency=top.duration("nodeStatusUpdateFrequency", 10.0),
        status_report_frequency=top.duration("nodeStatusReportFrequency", 300.0),
        lease_duration_seconds=top.integer("nodeLeaseDurationSeconds", 40, minimum=1),
        register_node=top.boolean("registerNode", True),
        register_with_taints=_taints(top),
        serialize_image_pulls=top.boolean("serializeImagePulls", True),
        resolv_conf=top.path("resolvConf") or Path("/etc/resolv.conf"),
    )
    if top.data.get("staticPodPath"):
        top.problem("staticPodPath", "static pods are not supported by kpy-kubelet")
    if config.status_update_frequency <= 0:
        top.problem("nodeStatusUpdateFrequency", "must be greater than zero")
    if bool(config.tls_cert_file) != bool(config.tls_private_key_file):
        top.problem("tlsCertFile", "tlsCertFile and tlsPrivateKeyFile: give both or neither")
    problems += unreadable([("tlsCertFile", config.tls_cert_file), ("tlsPrivateKeyFile", config.tls_private_key_file),
                            ("authentication.x509.clientCAFile", config.client_ca_file)])
    if config.webhook_authentication is False and config.client_ca_file is None and not config.anonymous:
        problems.append("authentication: with no x509.clientCAFile and webhook disabled nobody can authenticate")
    if problems:
        raise ConfigError(problems, source)
    return config


def _endpoint(top: Reader) -> str:
    value = top.string("containerRuntimeEndpoint", "unix:///run/containerd/containerd.sock") or ""
    path = value.removeprefix("unix://")
    if not path.startswith("/"):
        top.problem("containerRuntimeEndpoint", f"must be a unix socket (unix:///path), not {value!r}")
    return path


def _resources(top: Reader, name: str) -> dict[str, Quantity]:
    values = top.mapping(name) or {}
    result = {}
    if not isinstance(values, dict):
        top.problem(name, f"must be a mapping of resource to quantity, not {values!r}")
        return result
    for resource, text in values.items():
        if resource not in RESERVABLE:
            top.problem(f"{name}.{resource}", f"unknown resource (known: {', '.join(RESERVABLE)})")
            continue
        try:
            result[resource] = Quantity.parse(str(text))
        except QuantityError as error:
            top.problem(f"{name}.{resource}", str(error))
    return result


def _eviction(top: Reader) -> dict[str, str]:
    values = top.data.get("evictionHard")
    if values is None:
        return KubeletConfig().eviction_hard
    if not isinstance(values, dict):
        top.problem("evictionHard", f"must be a mapping of signal to threshold, not {values!r}")
        return {}
    result = {}
    for signal, threshold in values.items():
        if signal not in EVICTION_SIGNALS:
            top.problem(f"evictionHard.{signal}", f"unknown signal (known: {', '.join(EVICTION_SIGNALS)})")
            continue
        text = str(threshold)
        try:
            if text.endswith("%"):
                if not 0 <= float(text[:-1]) <= 100:
                    raise ValueError
            else:
                Quantity.parse(text)
        except (ValueError, QuantityError):
            top.problem(f"evictionHard.{signal}", f"must be a quantity or a percentage, not {threshold!r}")
            continue
        result[signal] = text
    return result


def _taints(top: Reader) -> tuple[dict, ...]:
    values = top.data.get("registerWithTaints") or []
    result = []
    if not isinstance(values, list):
        top.problem("registerWithTaints", f"must be a list of taints, not {values!r}")
        return ()
    for index, taint in enumerate(values):
        where = f"registerWithTaints[{index}]"
        if not isinstance(taint, dict) or not taint.get("key"):
            top.problem(where, "must be a mapping with a key")
            continue
        if taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            top.problem(f"{where}.effect", "must be one of NoSchedule, PreferNoSchedule, NoExecute")
            continue
        result.append({k: taint[k] for k in ("key", "value", "effect") if taint.get(k) is not None})
    return tuple(result)


def _labels(text: str, problems: list[str]) -> dict[str, str]:
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(f"--node-labels: {item!r} is not key=value")
            continue
        labels[key] = value
    return labels


def _address(text: str, where: str, problems: list[str]) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        problems.append(f"{where}: {text!r} is not an IP address")
        return ""


def _network(text: str, where: str, problems: list[str]) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        problems.append(f"{where}: {text!r} is not a CIDR")
        return ""
