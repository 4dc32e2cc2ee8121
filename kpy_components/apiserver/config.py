"""kpy-apiserver's configuration: a YAML file (snake_case keys, like kube-apiserver's flags) read into dataclasses.
`load` reports every problem at once as `<field>: <what is wrong>` (ConfigError); nothing half-configured runs.

    bind_address: 0.0.0.0            secure_port: 6443          advertise_address: 10.0.0.11
    tls: {cert_file, key_file, client_ca_file}
    storage:
      backend: etcd                  # or sqlite
      etcd_servers: [https://10.0.0.11:2379]
      etcd_ca_file, etcd_cert_file, etcd_key_file
      sqlite_path: /var/lib/kpy/apiserver.db
      encryption_config_file: /etc/kpy/encryption-config.yaml
      compaction_interval: 5m        # history older than this is compacted away; "0" never compacts
    service_cluster_ip_range: 10.96.0.0/12
    service_node_port_range: 30000-32767
    service_account: {key_files: [...], signing_key_file, issuer}
    kubelet_client: {cert_file, key_file, ca_file}    # for pods/log; ca_file verifies kubelets' certificates
    proxy_client: {cert_file, key_file}               # the aggregation layer's client certificate
    requestheader: {client_ca_file, allowed_names: [front-proxy-client], username_headers: [X-Remote-User],
                    group_headers: [X-Remote-Group], extra_headers_prefix: [X-Remote-Extra-]}
    authorization_modes: [Node, RBAC]
    enable_admission_plugins: [NodeRestriction]         # upstream's names; every kpy plugin is on by default
    disable_admission_plugins: [DefaultStorageClass]
    log_level: info
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpy_components.apiserver.admission.chain import PLUGINS as ADMISSION_PLUGINS
from kpy_components.apiserver.auth.requestheader import RequestHeaderConfig
from kpy_components.apiserver.kubelet import KubeletClientConfig
from kpy_components.component.config import ConfigError, Reader, load_yaml, unreadable

AUTHORIZATION_MODES = ("Node", "RBAC")  # what kpy implements; both are always on
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class TLSConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "sqlite"
    sqlite_path: Path | None = None
    etcd_servers: tuple[str, ...] = ()
    etcd_ca_file: Path | None = None
    etcd_cert_file: Path | None = None
    etcd_key_file: Path | None = None
    encryption_config_file: Path | None = None
    compaction_interval: float = 300.0  # seconds, as kube-apiserver's --etcd-compaction-interval; 0: never


@dataclass(frozen=True)
class ServiceAccountConfig:
    key_files: tuple[Path, ...] = ()  # public (or private) keys that verify tokens
    signing_key_file: Path | None = None  # private key that signs TokenRequests
    issuer: str = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class ProxyClientConfig:
    """The client certificate the aggregation layer presents to extension API servers (upstream's
    --proxy-client-cert-file/--proxy-client-key-file, issued by the front-proxy CA they trust)."""
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class ServerConfig:
    tls: TLSConfig
    storage: StorageConfig
    bind_address: str = "0.0.0.0"
    secure_port: int = 6443
    advertise_address: str | None = None  # the address the `kubernetes` Service points at
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: tuple[int, int] = (30000, 32767)
    service_account: ServiceAccountConfig = field(default_factory=ServiceAccountConfig)
    authorization_modes: tuple[str, ...] = ("Node", "RBAC")
    log_level: str = "info"
    kubelet_client: KubeletClientConfig | None = None
    # upstream's --enable-admission-plugins / --disable-admission-plugins (every kpy plugin is on by default)
    enable_admission_plugins: tuple[str, ...] = ()
    disable_admission_plugins: tuple[str, ...] = ()
    proxy_client: ProxyClientConfig | None = None  # None: APIServices are proxied without a client certificate
    requestheader: RequestHeaderConfig | None = None  # None: no front proxy may authenticate users

    @property
    def disabled_admission_plugins(self) -> frozenset[str]:
        return frozenset(self.disable_admission_plugins) - set(self.enable_admission_plugins)


def _ip(reader: Reader, name: str, default: str | None) -> str | None:
    value = reader.string(name, default)
    if value is not None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            reader.problem(name, f"must be an IP address, not {value!r}")
    return value


def _node_port_range(reader: Reader) -> tuple[int, int]:
    value = reader.string("service_node_port_range", "30000-32767") or "30000-32767"
    first, _, last = value.partition("-")
    if not (first.isdigit() and last.isdigit() and 1 <= int(first) < int(last) <= 65535):
        reader.problem("service_node_port_range", f"must be FIRST-LAST port numbers, not {value!r}")
        return 30000, 32767
    return int(first), int(last)


def _storage(data: Any, problems: list[str]) -> StorageConfig:
    known = ("backend", "sqlite_path", "etcd_servers", "etcd_ca_file", "etcd_cert_file", "etcd_key_file",
             "encryption_config_file", "compaction_interval")
    reader = Reader(data, "storage.", problems, known)
    backend = reader.string("backend", "sqlite", ("sqlite", "etcd"))
    servers = reader.strings("etcd_servers", ())
    config = StorageConfig(backend=backend or "sqlite", sqlite_path=reader.path("sqlite_path"),
                           etcd_servers=servers, etcd_ca_file=reader.path("etcd_ca_file"),
                           etcd_cert_file=reader.path("etcd_cert_file"), etcd_key_file=reader.path("etcd_key_file"),
                           encryption_config_file=reader.path("encryption_config_file"),
                           compaction_interval=reader.duration("compaction_interval", 300.0))
    if config.backend == "etcd":
        if not servers:
            reader.problem("etcd_servers", "is required with backend etcd (a list of https:// URLs)")
        for server in servers:
            if not server.startswith("https://"):
                reader.problem("etcd_servers", f"{server!r} must be an https:// URL (etcd is reached over TLS)")
        for name in ("etcd_ca_file", "etcd_cert_file", "etcd_key_file"):
            if getattr(config, name) is None:
                reader.problem(name, "is required with backend etcd")
    elif config.sqlite_path is None:
        reader.problem("sqlite_path", "is required with backend sqlite")
    return config


def _kubelet_client(data: Any, problems: list[str]) -> KubeletClientConfig:
    reader = Reader(data, "kubelet_client.", problems, ("cert_file", "key_file", "ca_file"))
    return KubeletClientConfig(reader.path("cert_file", required=True) or Path(),
                               reader.path("key_file", required=True) or Path(), reader.path("ca_file"))


def _proxy_client(data: Any, problems: list[str]) -> ProxyClientConfig:
    reader = Reader(data, "proxy_client.", problems, ("cert_file", "key_file"))
    return ProxyClientConfig(reader.path("cert_file", required=True) or Path(),
                             reader.path("key_file", required=True) or Path())


def _requestheader(data: Any, problems: list[str]) -> RequestHeaderConfig:
    """upstream's --requestheader-client-ca-file, -allowed-names, -username-headers, -group-headers and
    -extra-headers-prefix, with kubeadm's header names as defaults."""
    reader = Reader(data, "requestheader.", problems, ("client_ca_file", "allowed_names", "username_headers",
                                                        "group_headers", "extra_headers_prefix"))
    defaults = RequestHeaderConfig(Path())
    config = RequestHeaderConfig(
        reader.path("client_ca_file", required=True) or Path(), reader.strings("allowed_names", ()),
        *(reader.strings(name, getattr(defaults, name)) for name in ("username_headers", "group_headers",
                                                                     "extra_headers_prefix")))
    if not config.username_headers:
        reader.problem("username_headers", "must name at least one header (the user's name comes from it)")
    return config


def parse(data: Any, source: str = "kpy-apiserver config") -> ServerConfig:
    problems: list[str] = []
    known = ("bind_address", "secure_port", "advertise_address", "tls", "storage", "service_cluster_ip_range",
             "service_node_port_range", "service_account", "authorization_modes", "log_level", "kubelet_client",
             "enable_admission_plugins", "disable_admission_plugins", "proxy_client", "requestheader")
    top = Reader(data, "", problems, known)
    tls_reader = Reader(top.mapping("tls"), "tls.", problems, ("cert_file", "key_file", "client_ca_file"))
    tls = TLSConfig(*(tls_reader.path(n, required=True) or Path() for n in ("cert_file", "key_file",
                                                                           "client_ca_file")))
    sa_reader = Reader(top.mapping("service_account"), "service_account.", problems,
                        ("key_files", "signing_key_file", "issuer"))
    service_account = ServiceAccountConfig(sa_reader.paths("key_files"), sa_reader.path("signing_key_file"),
                                           sa_reader.string("issuer", ServiceAccountConfig.issuer)
                                           or ServiceAccountConfig.issuer)
    cidr = top.string("service_cluster_ip_range", "10.96.0.0/12") or "10.96.0.0/12"
    try:
        network = ipaddress.ip_network(cidr, strict=True)
        if network.num_addresses < 8:
            top.problem("service_cluster_ip_range", f"{cidr} is too small (at least 8 addresses)")
    except ValueError as error:
        top.problem("service_cluster_ip_range", f"must be a network in CIDR form: {error}")
    config = ServerConfig(
        tls=tls, storage=_storage(top.mapping("storage"), problems),
        bind_address=_ip(top, "bind_address", "0.0.0.0") or "0.0.0.0",
        secure_port=top.port("secure_port", 6443), advertise_address=_ip(top, "advertise_address", None),
        service_cluster_ip_range=cidr, service_node_port_range=_node_port_range(top),
        service_account=service_account,
        authorization_modes=top.strings("authorization_modes", ("Node", "RBAC"), AUTHORIZATION_MODES),
        log_level=top.string("log_level", "info", LOG_LEVELS) or "info",
        kubelet_client=_kubelet_client(top.mapping("kubelet_client"), problems) if "kubelet_client" in
        (data if isinstance(data, dict) else {}) else None,
        enable_admission_plugins=top.strings("enable_admission_plugins", (), ADMISSION_PLUGINS),
        disable_admission_plugins=top.strings("disable_admission_plugins", (), ADMISSION_PLUGINS),
        proxy_client=_proxy_client(top.mapping("proxy_client"), problems) if "proxy_client" in
        (data if isinstance(data, dict) else {}) else None,
        requestheader=_requestheader(top.mapping("requestheader"), problems) if "requestheader" in
        (data if isinstance(data, dict) else {}) else None)
    for name in sorted(set(config.enable_admission_plugins) & set(config.disable_admission_plugins)):
        top.problem("disable_admission_plugins", f"{name} is also in enable_admission_plugins: it cannot be both")
    if set(config.authorization_modes) != set(AUTHORIZATION_MODES):
        top.problem("authorization_modes", "kpy-apiserver authorizes with Node and RBAC together; list both")
    if config.service_account.signing_key_file is None:
        sa_reader.problem("signing_key_file", "is required (it signs service-account tokens)")
    if problems:
        raise ConfigError(problems, source)
    return config


def load(path: str | Path) -> ServerConfig:
    return parse(load_yaml(path), str(path))


def missing_files(config: ServerConfig) -> list[str]:
    """`<field>: cannot read <path>: <reason>` for each configured file that cannot be read."""
    wanted = [("tls.cert_file", config.tls.cert_file), ("tls.key_file", config.tls.key_file),
              ("tls.client_ca_file", config.tls.client_ca_file)]
    storage = config.storage
    for name in ("etcd_ca_file", "etcd_cert_file", "etcd_key_file", "encryption_config_file"):
        if getattr(storage, name) is not None:
            wanted.append((f"storage.{name}", getattr(storage, name)))
    for index, path in enumerate(config.service_account.key_files):
        wanted.append((f"service_account.key_files[{index}]", path))
    if config.service_account.signing_key_file:
        wanted.append(("service_account.signing_key_file", config.service_account.signing_key_file))
    if config.kubelet_client is not None:
        wanted += [(f"kubelet_client.{name}", getattr(config.kubelet_client, name))
                   for name in ("cert_file", "key_file", "ca_file") if getattr(config.kubelet_client, name)]
    if config.proxy_client is not None:
        wanted += [(f"proxy_client.{name}", getattr(config.proxy_client, name)) for name in ("cert_file", "key_file")]
    if config.requestheader is not None:
        wanted.append(("requestheader.client_ca_file", config.requestheader.client_ca_file))
    return unreadable(wanted)
