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
    service_cluster_ip_range: 10.96.0.0/12
    service_node_port_range: 30000-32767
    service_account: {key_files: [...], signing_key_file, issuer}
    authorization_modes: [Node, RBAC]
    log_level: info
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

AUTHORIZATION_MODES = ("Node", "RBAC")  # what kpy implements; both are always on
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    def __init__(self, problems: list[str], source: str):
        self.problems, self.source = problems, source
        super().__init__(f"{source}: " + "; ".join(problems))


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


@dataclass(frozen=True)
class ServiceAccountConfig:
    key_files: tuple[Path, ...] = ()  # public (or private) keys that verify tokens
    signing_key_file: Path | None = None  # private key that signs TokenRequests
    issuer: str = "https://kubernetes.default.svc.cluster.local"


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


class _Reader:
    """Reads one mapping field by field, collecting problems (prefixed with the mapping's path)."""

    def __init__(self, data: Any, prefix: str, problems: list[str], known: tuple[str, ...]):
        self.prefix, self.problems = prefix, problems
        if not isinstance(data, dict):
            problems.append(f"{prefix.rstrip('.') or 'config'}: must be a mapping, not {data!r}")
            data = {}
        self.data = data
        for name in sorted(set(data) - set(known), key=str):
            self.problem(str(name), f"unknown field (known: {', '.join(known)})")

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{self.prefix}{name}: {message}")

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str | None:
        value = self.data.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(name, f"must be a non-empty string, not {value!r}")
            return default
        if choices and value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def path(self, name: str, required: bool = False) -> Path | None:
        value = self.string(name)
        if value is None:
            if required:
                self.problem(name, "is required")
            return None
        return Path(value)

    def paths(self, name: str) -> tuple[Path, ...]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(name, f"must be a list of file paths, not {value!r}")
            return ()
        return tuple(Path(v) for v in value)

    def strings(self, name: str, default: tuple[str, ...], choices: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(name, f"must be a list of strings, not {value!r}")
            return default
        for item in value:
            if choices and item not in choices:
                self.problem(name, f"{item!r} is not one of {', '.join(choices)}")
        return tuple(value)

    def port(self, name: str, default: int) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.problem(name, f"must be a port number (1-65535), not {value!r}")
            return default
        return value

    def mapping(self, name: str) -> Any:
        return self.data.get(name, {})


def _ip(reader: _Reader, name: str, default: str | None) -> str | None:
    value = reader.string(name, default)
    if value is not None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            reader.problem(name, f"must be an IP address, not {value!r}")
    return value


def _node_port_range(reader: _Reader) -> tuple[int, int]:
    value = reader.string("service_node_port_range", "30000-32767") or "30000-32767"
    first, _, last = value.partition("-")
    if not (first.isdigit() and last.isdigit() and 1 <= int(first) < int(last) <= 65535):
        reader.problem("service_node_port_range", f"must be FIRST-LAST port numbers, not {value!r}")
        return 30000, 32767
    return int(first), int(last)


def _storage(data: Any, problems: list[str]) -> StorageConfig:
    known = ("backend", "sqlite_path", "etcd_servers", "etcd_ca_file", "etcd_cert_file", "etcd_key_file",
             "encryption_config_file")
    reader = _Reader(data, "storage.", problems, known)
    backend = reader.string("backend", "sqlite", ("sqlite", "etcd"))
    servers = reader.strings("etcd_servers", ())
    config = StorageConfig(backend=backend or "sqlite", sqlite_path=reader.path("sqlite_path"),
                           etcd_servers=servers, etcd_ca_file=reader.path("etcd_ca_file"),
                           etcd_cert_file=reader.path("etcd_cert_file"), etcd_key_file=reader.path("etcd_key_file"),
                           encryption_config_file=reader.path("encryption_config_file"))
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


def parse(data: Any, source: str = "kpy-apiserver config") -> ServerConfig:
    problems: list[str] = []
    known = ("bind_address", "secure_port", "advertise_address", "tls", "storage", "service_cluster_ip_range",
             "service_node_port_range", "service_account", "authorization_modes", "log_level")
    top = _Reader(data, "", problems, known)
    tls_reader = _Reader(top.mapping("tls"), "tls.", problems, ("cert_file", "key_file", "client_ca_file"))
    tls = TLSConfig(*(tls_reader.path(n, required=True) or Path() for n in ("cert_file", "key_file",
                                                                           "client_ca_file")))
    sa_reader = _Reader(top.mapping("service_account"), "service_account.", problems,
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
        log_level=top.string("log_level", "info", LOG_LEVELS) or "info")
    if set(config.authorization_modes) != set(AUTHORIZATION_MODES):
        top.problem("authorization_modes", "kpy-apiserver authorizes with Node and RBAC together; list both")
    if config.service_account.signing_key_file is None:
        sa_reader.problem("signing_key_file", "is required (it signs service-account tokens)")
    if problems:
        raise ConfigError(problems, source)
    return config


def load(path: str | Path) -> ServerConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError([f"cannot read the file: {error.strerror}"], str(path)) from error
    except yaml.YAMLError as error:
        raise ConfigError([f"is not valid YAML: {error}"], str(path)) from error
    return parse(data, str(path))


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
    problems = []
    for name, path in wanted:
        try:
            with Path(path).open("rb"):
                pass
        except OSError as error:
            problems.append(f"{name}: cannot read {path}: {error.strerror}")
    return problems
