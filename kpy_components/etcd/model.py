"""The etcd cluster as kpy sees it: the members from the inventory and the local member's settings, validated.

The wrapper's own config file (e.g. /etc/kpy/etcd/kpy-etcd.yaml, written by the etcd role) holds this model:

    cluster_token: kpy-lab-etcd
    member: cp1                     # the member this host runs
    members:                        # every member; ports default to client_port / peer_port below
      - {name: cp1, ip: 10.213.0.11}
    data_dir: /var/lib/etcd/lab
    initial_cluster_state: new      # new: bootstrap with all members; existing: join a running cluster
    client_port: 2379
    peer_port: 2380
    metrics_port: 2381              # plain HTTP on 127.0.0.1 (/metrics, /health); null turns it off
    tls: {ca_file, server_cert_file, server_key_file, peer_cert_file, peer_key_file,
          client_cert_file, client_key_file}   # client_*: kpy-etcd's own certificate (health, members, snapshots)
    etcd_binary: /usr/bin/etcd
    etcd_config_file: /run/kpy-etcd/etcd.yaml  # where `kpy-etcd run` renders etcd's config
    log_level: info
    extra_config: {}                # more etcd config-file keys (e.g. quota-backend-bytes); not the managed ones

All problems are reported at once, each naming its field (`members[1].ip: ...`).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kpy_components.etcd.transport import TLSFiles

DEFAULT_CLIENT_PORT = 2379
DEFAULT_PEER_PORT = 2380
DEFAULT_METRICS_PORT = 2381
CLUSTER_STATES = ("new", "existing")
LOG_LEVELS = ("debug", "info", "warn", "error", "panic", "fatal")
TLS_FIELDS = ("ca_file", "server_cert_file", "server_key_file", "peer_cert_file", "peer_key_file",
              "client_cert_file", "client_key_file")
# A name goes into etcd's initial-cluster string "a=URL,b=URL": no '=', ',' or spaces.
MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class ModelError(ValueError):
    """The wrapper config is invalid; `problems` lists every problem as "field: what is wrong"."""

    def __init__(self, problems: list[str], source: str = "etcd model"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


def url(scheme: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class MemberSpec:
    name: str
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    client_port: int = DEFAULT_CLIENT_PORT
    peer_port: int = DEFAULT_PEER_PORT

    @property
    def client_url(self) -> str:
        return url("https", self.ip, self.client_port)

    @property
    def peer_url(self) -> str:
        return url("https", self.ip, self.peer_port)


@dataclass(frozen=True)
class TLSPaths:
    ca_file: Path
    server_cert_file: Path
    server_key_file: Path
    peer_cert_file: Path
    peer_key_file: Path
    client_cert_file: Path
    client_key_file: Path

    def client(self) -> TLSFiles:
        return TLSFiles(self.ca_file, self.client_cert_file, self.client_key_file)

    def missing_files(self) -> list[str]:
        """`tls.<field>: <path> ...` for every file that does not exist or cannot be read."""
        problems = []
        for name in TLS_FIELDS:
            path: Path = getattr(self, name)
            try:
                with path.open("rb"):
                    pass
            except OSError as error:
                problems.append(f"tls.{name}: cannot read {path}: {error.strerror}")
        return problems


@dataclass(frozen=True)
class EtcdModel:
    cluster_token: str
    member: str
    members: tuple[MemberSpec, ...]
    data_dir: Path
    tls: TLSPaths
    initial_cluster_state: str = "new"
    metrics_port: int | None = DEFAULT_METRICS_PORT
    etcd_binary: Path = Path("/usr/bin/etcd")
    etcd_config_file: Path = Path("/run/kpy-etcd/etcd.yaml")
    log_level: str = "info"
    extra_config: dict[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> MemberSpec:
        return next(m for m in self.members if m.name == self.member)

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def client_urls(self) -> list[str]:
        return [m.client_url for m in self.members]


class _Fields:
    """Reads a mapping field by field, collecting problems instead of stopping at the first."""

    def __init__(self, data: dict, prefix: str, problems: list[str]):
        self.data, self.prefix, self.problems = data, prefix, problems

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{self.prefix}{name}: {message}")

    def unknown(self, known: tuple[str, ...]) -> None:
        for name in sorted(set(self.data) - set(known), key=str):
            self.problem(str(name), f"unknown field (known: {', '.join(known)})")

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.data.get(name, default)
        if value is None:
            self.problem(name, "is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(name, f"must be a non-empty string, not {value!r}")
            return ""
        if choices and value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def path(self, name: str, default: str | None = None) -> Path:
        value = self.string(name, default)
        if value and not value.startswith("/"):
            self.problem(name, f"must be an absolute path, not {value!r}")
        return Path(value)

    def port(self, name: str, default: int | None, nullable: bool = False) -> int | None:
        """The port; with `nullable`, an explicit null (turned off) is accepted as None."""
        value = self.data.get(name, default)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.problem(name, f"must be a port number (1-65535), not {value!r}")
            return default
        return value


def _member(item: Any, index: int, ports: tuple[int, int], problems: list[str]) -> MemberSpec | None:
    prefix = f"members[{index}]"
    if not isinstance(item, dict):
        problems.append(f"{prefix}: must be a mapping with name and ip, not {item!r}")
        return None
    fields = _Fields(item, prefix + ".", problems)
    fields.unknown(("name", "ip", "client_port", "peer_port"))
    name = fields.string("name")
    if name and not MEMBER_NAME.match(name):
        fields.problem("name", f"{name!r} must be letters, digits, '.', '_' or '-' (it goes into initial-cluster)")
    raw_ip = item.get("ip")
    try:
        ip = ipaddress.ip_address(str(raw_ip).strip()) if raw_ip is not None else None
    except ValueError:
        ip = None
    if ip is None:
        fields.problem("ip", f"must be an IP address, not {raw_ip!r}")
    client_port = fields.port("client_port", ports[0])
    peer_port = fields.port("peer_port", ports[1])
    if ip is None or not name:
        return None
    return MemberSpec(name, ip, client_port, peer_port)


def _check_members(members: list[MemberSpec], problems: list[str]) -> None:
    if len(members) % 2 == 0:
        problems.append(f"members: {len(members)} members given; etcd needs an odd number (1, 3, 5, ...) so that "
                        "a majority survives a failure")
    seen_names: dict[str, int] = {}
    seen_endpoints: dict[tuple, str] = {}
    for index, member in enumerate(members):
        if member.name in seen_names:
            problems.append(f"members[{index}].name: {member.name!r} is already members[{seen_names[member.name]}]")
        seen_names.setdefault(member.name, index)
        for kind, port in (("client", member.client_port), ("peer", member.peer_port)):
            endpoint = (member.ip, port)
            if endpoint in seen_endpoints:
                problems.append(f"members[{index}]: {kind} address {url('https', member.ip, port)} is already used "
                                f"by {seen_endpoints[endpoint]}")
            seen_endpoints.setdefault(endpoint, f"member {member.name!r} ({kind})")


def _tls(data: Any, problems: list[str]) -> TLSPaths:
    if not isinstance(data, dict):
        problems.append(f"tls: must be a mapping with {', '.join(TLS_FIELDS)}, not {data!r}")
        data = {}
    fields = _Fields(data, "tls.", problems)
    fields.unknown(TLS_FIELDS)
    return TLSPaths(**{name: fields.path(name) for name in TLS_FIELDS})


# etcd config keys the model renders itself; extra_config may not override them.
MANAGED_ETCD_KEYS = frozenset({
    "name", "data-dir", "listen-client-urls", "advertise-client-urls", "listen-peer-urls",
    "initial-advertise-peer-urls", "initial-cluster", "initial-cluster-state", "initial-cluster-token",
    "client-transport-security", "peer-transport-security", "listen-metrics-urls", "enable-grpc-gateway",
    "logger", "log-outputs", "log-level",
})
TOP_LEVEL_FIELDS = ("cluster_token", "member", "members", "data_dir", "initial_cluster_state", "client_port",
                    "peer_port", "metrics_port", "tls", "etcd_binary", "etcd_config_file", "log_level", "extra_config")


def parse_model(data: Any, source: str = "etcd model") -> EtcdModel:
    """The validated model from a mapping (the wrapper config); raises ModelError listing every problem."""
    if not isinstance(data, dict):
        raise ModelError([f"must be a mapping of {', '.join(TOP_LEVEL_FIELDS)}, not {type(data).__name__}"], source)
    problems: list[str] = []
    top = _Fields(data, "", problems)
    top.unknown(TOP_LEVEL_FIELDS)
    ports = (top.port("client_port", DEFAULT_CLIENT_PORT), top.port("peer_port", DEFAULT_PEER_PORT))
    raw_members = data.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        problems.append(f"members: must be a non-empty list of {{name, ip}}, not {raw_members!r}")
        raw_members = []
    parsed = [_member(item, index, ports, problems) for index, item in enumerate(raw_members)]
    members = [m for m in parsed if m is not None]
    if raw_members and len(members) == len(raw_members):
        _check_members(members, problems)
    member = top.string("member")
    if member and members and member not in {m.name for m in members}:
        top.problem("member", f"{member!r} is not one of the members ({', '.join(m.name for m in members)})")
    extra = data.get("extra_config") or {}
    if not isinstance(extra, dict):
        top.problem("extra_config", f"must be a mapping of etcd config keys, not {extra!r}")
        extra = {}
    for key in sorted(set(extra) & MANAGED_ETCD_KEYS):
        top.problem(f"extra_config.{key}", "is set by kpy-etcd from the model; change the model field instead")
    model = dict(
        cluster_token=top.string("cluster_token"),
        member=member,
        members=tuple(members),
        data_dir=top.path("data_dir"),
        tls=_tls(data.get("tls"), problems),
        initial_cluster_state=top.string("initial_cluster_state", "new", CLUSTER_STATES),
        metrics_port=top.port("metrics_port", DEFAULT_METRICS_PORT, nullable=True),
        etcd_binary=top.path("etcd_binary", "/usr/bin/etcd"),
        etcd_config_file=top.path("etcd_config_file", "/run/kpy-etcd/etcd.yaml"),
        log_level=top.string("log_level", "info", LOG_LEVELS),
        extra_config=dict(extra),
    )
    if problems:
        raise ModelError(problems, source)
    return EtcdModel(**model)


def load_model(path: Path | str) -> EtcdModel:
    """The validated model from a YAML wrapper config file; ModelError names the file and every problem."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ModelError([f"cannot read the file: {error.strerror}"], source) from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ModelError([f"not valid YAML: {error}".replace("\n", " ")], source) from error
    return parse_model(data, source)
