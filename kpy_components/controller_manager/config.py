"""kpy-controller-manager's configuration: a KubeControllerManagerConfiguration-shaped YAML file (camelCase keys, Go
durations), every field optional, overridden by the flags of the same meaning (--cluster-cidr, ...). Every bad field
is reported at once with its path (ConfigError).

    apiVersion: kubecontrollermanager.config.k8s.io/v1alpha1
    kind: KubeControllerManagerConfiguration
    clientConnection: {kubeconfig: /etc/kpy/controller-manager.kubeconfig}
    leaderElection: {leaderElect: true, leaseDuration: 15s, renewDeadline: 10s, retryPeriod: 2s}
    controllers: ["*"]                       # "*", "foo", "-foo" as --controllers
    useServiceAccountCredentials: true       # each controller writes as kube-system/<its service account>
    serviceCIDR: 10.32.0.0/24
    nodeIPAM: {allocateNodeCIDRs: true, clusterCIDR: 10.200.0.0/16, nodeCIDRMaskSize: 24}
    nodeLifecycle: {nodeMonitorPeriod: 5s, nodeMonitorGracePeriod: 40s, nodeStartupGracePeriod: 60s,
                    defaultTolerationSeconds: 300}
    podGC: {terminatedPodGCThreshold: 12500}
    serviceAccount: {privateKeyFile: /etc/kpy/pki/service-account.key, rootCAFile: /etc/kpy/pki/ca.crt}
    concurrentSyncs: {deployment: 5, replicaset: 5}   # workers per controller
    csrSigningController: {clusterSigningCertFile: /etc/kpy/pki/ca.crt, clusterSigningKeyFile: /etc/kpy/pki/ca.key,
                           clusterSigningDuration: 8760h}   # the csrsigning controller runs when both files are set
"""
from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from kpy_components.component.config import (ConfigError, LeaderElectionSettings, Reader, boolean_flag,
                                             duration_flag, load_yaml, parse_client_connection,
                                             parse_leader_election, unreadable)

from . import controllers

API_VERSION = "kubecontrollermanager.config.k8s.io/v1alpha1"
KIND = "KubeControllerManagerConfiguration"
LEASE_NAME = "kube-controller-manager"


@dataclass(frozen=True)
class NodeIpamConfig:
    allocate_node_cidrs: bool = False
    cluster_cidr: str | None = None
    node_cidr_mask_size: int = 24


@dataclass(frozen=True)
class NodeLifecycleConfig:
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    node_startup_grace_period: float = 60.0
    default_toleration_seconds: int = 300  # the not-ready/unreachable NoExecute tolerations pods get


@dataclass(frozen=True)
class ServiceAccountSettings:
    private_key_file: Path | None = None  # signs legacy token Secrets
    root_ca_file: Path | None = None  # published as kube-root-ca.crt and put in token Secrets


@dataclass(frozen=True)
class CSRSigningSettings:
    cert_file: Path | None = None  # the CA that signs approved CSRs of the kubernetes.io/* signers
    key_file: Path | None = None
    duration: float = 365 * 24 * 3600.0  # the longest certificate issued (spec.expirationSeconds may shorten it)


@dataclass(frozen=True)
class ControllerManagerConfig:
    kubeconfig: Path | None = None
    leader_election: LeaderElectionSettings = field(
        default_factory=lambda: LeaderElectionSettings(resource_name=LEASE_NAME))
    controllers: tuple[str, ...] = ("*",)
    enabled: tuple[str, ...] = ()  # resolved from `controllers`
    service_cidr: str | None = None
    node_ipam: NodeIpamConfig = NodeIpamConfig()
    node_lifecycle: NodeLifecycleConfig = NodeLifecycleConfig()
    terminated_pod_gc_threshold: int = 12500
    service_account: ServiceAccountSettings = ServiceAccountSettings()
    concurrent_syncs: dict[str, int] = field(default_factory=dict)
    use_service_account_credentials: bool = False
    csr_signing: CSRSigningSettings = CSRSigningSettings()


TOP_FIELDS = ("apiVersion", "kind", "clientConnection", "leaderElection", "controllers", "serviceCIDR", "nodeIPAM",
              "nodeLifecycle", "podGC", "serviceAccount", "concurrentSyncs", "useServiceAccountCredentials",
              "csrSigningController")


def _cidr(reader: Reader, name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        reader.problem(name, f"must be a network in CIDR form: {error}")
        return None


def parse(data, source: str, args: argparse.Namespace | None = None) -> ControllerManagerConfig:
    """The configuration from a parsed file (or {}), with flags applied over it."""
    problems: list[str] = []
    top = Reader(data, "", problems, TOP_FIELDS)
    top.string("apiVersion", API_VERSION, (API_VERSION,))
    top.string("kind", KIND, (KIND,))
    flags = vars(args) if args is not None else {}

    def flag(name, value):
        return value if flags.get(name) is None else flags[name]

    ipam = top.child("nodeIPAM", ("allocateNodeCIDRs", "clusterCIDR", "nodeCIDRMaskSize"))
    node_ipam = NodeIpamConfig(
        allocate_node_cidrs=flag("allocate_node_cidrs", ipam.boolean("allocateNodeCIDRs", False)),
        cluster_cidr=_cidr(ipam, "clusterCIDR", flag("cluster_cidr", ipam.string("clusterCIDR"))),
        node_cidr_mask_size=flag("node_cidr_mask_size", ipam.integer("nodeCIDRMaskSize", 24, 8, 30)))
    if node_ipam.allocate_node_cidrs and not node_ipam.cluster_cidr:
        ipam.problem("clusterCIDR", "is required when allocateNodeCIDRs is true (or pass --cluster-cidr)")
    if node_ipam.cluster_cidr and ipaddress.ip_network(node_ipam.cluster_cidr).prefixlen > \
            node_ipam.node_cidr_mask_size:
        ipam.problem("nodeCIDRMaskSize", f"/{node_ipam.node_cidr_mask_size} is larger than the cluster CIDR "
                     f"{node_ipam.cluster_cidr}")
    life = top.child("nodeLifecycle", ("nodeMonitorPeriod", "nodeMonitorGracePeriod", "nodeStartupGracePeriod",
                                       "defaultTolerationSeconds"))
    lifecycle = NodeLifecycleConfig(
        node_monitor_period=life.duration("nodeMonitorPeriod", 5.0),
        node_monitor_grace_period=flag("node_monitor_grace_period", life.duration("nodeMonitorGracePeriod", 40.0)),
        node_startup_grace_period=life.duration("nodeStartupGracePeriod", 60.0),
        default_toleration_seconds=life.integer("defaultTolerationSeconds", 300, 0))
    if lifecycle.node_monitor_grace_period <= lifecycle.node_monitor_period:
        life.problem("nodeMonitorGracePeriod", f"must be longer than nodeMonitorPeriod "
                     f"({lifecycle.node_monitor_period:g}s)")
    gc = top.child("podGC", ("terminatedPodGCThreshold",))
    accounts = top.child("serviceAccount", ("privateKeyFile", "rootCAFile"))
    service_account = ServiceAccountSettings(
        private_key_file=flag("service_account_private_key_file", accounts.path("privateKeyFile")),
        root_ca_file=flag("root_ca_file", accounts.path("rootCAFile")))
    signing = top.child("csrSigningController",
                        ("clusterSigningCertFile", "clusterSigningKeyFile", "clusterSigningDuration"))
    csr_signing = CSRSigningSettings(
        cert_file=flag("cluster_signing_cert_file", signing.path("clusterSigningCertFile")),
        key_file=flag("cluster_signing_key_file", signing.path("clusterSigningKeyFile")),
        duration=flag("cluster_signing_duration", signing.duration("clusterSigningDuration", 365 * 24 * 3600.0)))
    if (csr_signing.cert_file is None) != (csr_signing.key_file is None):
        signing.problem("clusterSigningKeyFile" if csr_signing.key_file is None else "clusterSigningCertFile",
                        "is required with the other cluster signing file (pass both or neither)")
    if csr_signing.duration < 600:
        signing.problem("clusterSigningDuration", "must be at least 10m")
    wanted = flag("controllers", top.strings("controllers", ("*",)))
    enabled, unknown = controllers.select(tuple(wanted))
    for problem in unknown:
        top.problem("controllers", problem)
    syncs = top.mapping("concurrentSyncs") or {}
    if not isinstance(syncs, dict):
        top.problem("concurrentSyncs", f"must be a mapping of controller name to workers, not {syncs!r}")
        syncs = {}
    for name, workers in syncs.items():
        if name not in controllers.CONTROLLERS:
            top.problem(f"concurrentSyncs.{name}", "is not a controller")
        elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            top.problem(f"concurrentSyncs.{name}", f"must be a positive integer, not {workers!r}")
    config = ControllerManagerConfig(
        kubeconfig=parse_client_connection(top),
        leader_election=parse_leader_election(top, LEASE_NAME),
        controllers=tuple(wanted), enabled=tuple(enabled),
        service_cidr=_cidr(top, "serviceCIDR", flag("service_cluster_ip_range", top.string("serviceCIDR"))),
        node_ipam=node_ipam, node_lifecycle=lifecycle,
        terminated_pod_gc_threshold=flag("terminated_pod_gc_threshold",
                                         gc.integer("terminatedPodGCThreshold", 12500, 0)),
        service_account=service_account, concurrent_syncs=dict(syncs),
        use_service_account_credentials=flag("use_service_account_credentials",
                                             top.boolean("useServiceAccountCredentials", False)),
        csr_signing=csr_signing)
    if problems:
        raise ConfigError(problems, source)
    return config


def load(path: str | None, args: argparse.Namespace | None = None) -> ControllerManagerConfig:
    source = path or "command line"
    config = parse(load_yaml(path) if path else {}, source, args)
    problems = unreadable_files(config)
    if problems:
        raise ConfigError(problems, source)
    return config


def unreadable_files(config: ControllerManagerConfig) -> list[str]:
    """`<field>: cannot read <path>: <reason>` for each configured file that cannot be read (checked at start, so a
    bad path stops the binary with exit 2 instead of failing a controller later)."""
    return unreadable([("serviceAccount.privateKeyFile", config.service_account.private_key_file),
                       ("serviceAccount.rootCAFile", config.service_account.root_ca_file),
                       ("csrSigningController.clusterSigningCertFile", config.csr_signing.cert_file),
                       ("csrSigningController.clusterSigningKeyFile", config.csr_signing.key_file)])


def add_flags(parser: argparse.ArgumentParser) -> None:
    """kube-controller-manager's flags for what kpy implements; each overrides its config-file field."""
    parser.add_argument("--controllers", type=lambda v: tuple(p.strip() for p in v.split(",") if p.strip()),
                        help="controllers to run: '*' (all), 'foo' enables, '-foo' disables (comma-separated)")
    parser.add_argument("--cluster-cidr", help="pod network, split into a CIDR per node (nodeIPAM.clusterCIDR)")
    parser.add_argument("--allocate-node-cidrs", type=boolean_flag, nargs="?", const=True, metavar="BOOL")
    parser.add_argument("--node-cidr-mask-size", type=int)
    parser.add_argument("--service-cluster-ip-range", help="the Service network (serviceCIDR)")
    parser.add_argument("--node-monitor-grace-period", type=duration_flag,
                        help="how long a node may go without a Lease renewal before it is marked not ready (40s)")
    parser.add_argument("--use-service-account-credentials", type=boolean_flag, nargs="?", const=True, metavar="BOOL",
                        help="each controller writes as its own service account in kube-system (as kubeadm runs "
                        "kube-controller-manager)")
    parser.add_argument("--service-account-private-key-file", type=Path)
    parser.add_argument("--root-ca-file", type=Path)
    parser.add_argument("--terminated-pod-gc-threshold", type=int)
    parser.add_argument("--cluster-signing-cert-file", type=Path,
                        help="the CA certificate that signs approved CSRs (csrSigningController)")
    parser.add_argument("--cluster-signing-key-file", type=Path, help="its private key")
    parser.add_argument("--cluster-signing-duration", type=duration_flag,
                        help="the longest certificate the CSR signer issues (8760h)")
