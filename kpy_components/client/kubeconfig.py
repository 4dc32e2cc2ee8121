"""Client configuration: a kubeconfig file (current or named context) or the in-cluster service account, turned
into one frozen `ClientConfig` that holds everything the REST client needs (credentials already read and checked).

Supported per kubeconfig entry (the fields kubectl reads):
    clusters[].cluster:  server, certificate-authority, certificate-authority-data, insecure-skip-tls-verify,
                         tls-server-name
    users[].user:        client-certificate(-data), client-key(-data), token, tokenFile
    contexts[].context:  cluster, user, namespace
Relative file paths are relative to the kubeconfig's own directory (as client-go resolves them). Unsupported
mechanisms (exec plugins, auth-provider, basic auth) are refused by name rather than silently ignored.

Every problem raises `KubeconfigError` naming the file and the field, e.g.
`/etc/kpy/scheduler.kubeconfig: users[kube-scheduler].user.client-key-data: not valid base64`.
"""
from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .errors import KubeconfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")


@dataclass(frozen=True)
class ClientConfig:
    """Where the API server is and how to authenticate to it. PEM material is held as bytes; `token_file` is kept
    as a path because service-account tokens rotate (the REST client re-reads it)."""
    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"
    source: str = ""  # where this came from, for messages: "/path/kubeconfig context admin" or "in-cluster"


# --- kubeconfig files --------------------------------------------------------------------------------------------

def load_kubeconfig(path: str | os.PathLike, context: str | None = None) -> ClientConfig:
    """The ClientConfig of `context` (default: the file's current-context) in the kubeconfig at `path`."""
    path = Path(path).expanduser()
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise KubeconfigError(f"{path}: cannot read the kubeconfig: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise KubeconfigError(f"{path}: not valid YAML: {error}") from None
    return from_dict(document, context, source=str(path), base_dir=path.parent)


def from_dict(document, context: str | None = None, source: str = "kubeconfig",
              base_dir: Path | None = None) -> ClientConfig:
    """The ClientConfig of `context` in an already parsed kubeconfig document."""
    reader = _Reader(source, base_dir or Path.cwd())
    if not isinstance(document, dict):
        raise reader.error("", "must be a mapping (apiVersion, clusters, users, contexts, current-context)")
    context_name = context or document.get("current-context")
    if not context_name:
        raise reader.error("current-context", "not set: name a context explicitly")
    where = "context" if context else "current-context"
    ctx = reader.entry(document, "contexts", "context", context_name, where)
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not cluster_name:
        raise reader.error(f"contexts[{context_name}].context.cluster", "required")
    cluster = reader.entry(document, "clusters", "cluster", cluster_name, f"contexts[{context_name}].context.cluster")
    user = (reader.entry(document, "users", "user", user_name, f"contexts[{context_name}].context.user")
            if user_name else {})
    return ClientConfig(
        server=reader.server(cluster, f"clusters[{cluster_name}].cluster.server"),
        ca_pem=reader.pem(cluster, f"clusters[{cluster_name}].cluster", "certificate-authority", _check_certs),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        tls_server_name=cluster.get("tls-server-name") or None,
        namespace=ctx.get("namespace") or "default",
        source=f"{source} context {context_name}",
        **reader.credentials(user, f"users[{user_name}].user"),
    )


def load_default(environ: Mapping[str, str] | None = None, context: str | None = None,
                 service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> ClientConfig:
    """What kubectl and client-go pick when no file is named: $KUBECONFIG (its first existing file), then
    ~/.kube/config, then the in-cluster service account."""
    environ = os.environ if environ is None else environ
    candidates = [Path(p) for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates.append(DEFAULT_KUBECONFIG.expanduser())
    for candidate in candidates:
        if candidate.expanduser().is_file():
            return load_kubeconfig(candidate, context)
    if "KUBERNETES_SERVICE_HOST" in environ:
        return in_cluster(environ, service_account_dir)
    raise KubeconfigError("no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster "
                          "(KUBERNETES_SERVICE_HOST is not set)")


class _Reader:
    """Reads entries and fields of one kubeconfig, naming the field in every error."""

    def __init__(self, source: str, base_dir: Path):
        self.source, self.base_dir = source, base_dir

    def error(self, field_path: str, problem: str) -> KubeconfigError:
        return KubeconfigError(f"{self.source}: {field_path}: {problem}" if field_path else f"{self.source}: {problem}")

    def entry(self, document: dict, section: str, body: str, name: str, referrer: str) -> dict:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise self.error(section, "must be a list of {name, %s} entries" % body)
        for item in entries:
            if isinstance(item, dict) and item.get("name") == name:
                value = item.get(body) or {}
                if not isinstance(value, dict):
                    raise self.error(f"{section}[{name}].{body}", "must be a mapping")
                return value
        known = ", ".join(str(item.get("name")) for item in entries if isinstance(item, dict)) or "none"
        raise self.error(referrer, f'no {body} named "{name}" in {section} (known: {known})')

    def server(self, cluster: dict, field_path: str) -> str:
        server = cluster.get("server")
        if not server:
            raise self.error(field_path, "required")
        if not isinstance(server, str) or not server.startswith(("https://", "http://")):
            raise self.error(field_path, f"must be an https:// URL, not {server!r}")
        return server.rstrip("/")

    def pem(self, body: dict, where: str, name: str, check) -> bytes | None:
        """`name-data` (base64) or `name` (a file path); at most one of them; checked by `check(pem) -> problem`."""
        data_field, file_field = f"{name}-data", name
        if body.get(data_field) and body.get(file_field):
            raise self.error(f"{where}.{data_field}", f"and {file_field} are both set: use one")
        if body.get(data_field):
            field_path = f"{where}.{data_field}"
            try:
                pem = base64.b64decode(str(body[data_field]), validate=True)
            except (binascii.Error, ValueError):
                raise self.error(field_path, "not valid base64") from None
        elif body.get(file_field):
            field_path = f"{where}.{file_field}"
            pem = self.read_file(body[file_field], field_path)
        else:
            return None
        problem = check(pem)
        if problem:
            raise self.error(field_path, problem)
        return pem

    def read_file(self, value, field_path: str) -> bytes:
        path = self.base_dir / Path(str(value)).expanduser()
        try:
            return path.read_bytes()
        except OSError as error:
            raise self.error(field_path, f"cannot read {path}: {error.strerror or error}") from None

    def credentials(self, user: dict, where: str) -> dict:
        for unsupported, why in (("exec", "exec credential plugins are not supported by kpy"),
                                 ("auth-provider", "auth-provider plugins are not supported by kpy"),
                                 ("username", "basic authentication was removed from Kubernetes in 1.19"),
                                 ("password", "basic authentication was removed from Kubernetes in 1.19")):
            if user.get(unsupported):
                raise self.error(f"{where}.{unsupported}", why)
        cert = self.pem(user, where, "client-certificate", _check_certs)
        key = self.pem(user, where, "client-key", _check_key)
        if bool(cert) != bool(key):
            missing = "client-key(-data)" if cert else "client-certificate(-data)"
            raise self.error(f"{where}.{missing}", "required with "
                             + ("client-certificate(-data)" if cert else "client-key(-data)"))
        token = user.get("token")
        if token is not None and not isinstance(token, str):
            raise self.error(f"{where}.token", "must be a string")
        token_file = None
        if user.get("tokenFile"):
            token_file = self.base_dir / Path(str(user["tokenFile"])).expanduser()
            if not token and not token_file.is_file():
                raise self.error(f"{where}.tokenFile", f"cannot read {token_file}: no such file")
        return {"cert_pem": cert, "key_pem": key, "token": token or None, "token_file": token_file}


def _check_certs(pem: bytes) -> str | None:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        return "not a PEM certificate"
    return None


def _check_key(pem: bytes) -> str | None:
    try:
        load_pem_private_key(pem, None)
    except (ValueError, TypeError):
        return "not an unencrypted PEM private key"
    return None


# --- in-cluster --------------------------------------------------------------------------------------------------

def in_cluster(environ: Mapping[str, str] | None = None,
               service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> ClientConfig:
    """The config of a pod: KUBERNETES_SERVICE_HOST/PORT and the mounted service account (token, ca.crt,
    namespace). The token stays a file so the REST client picks up rotated tokens."""
    environ = os.environ if environ is None else environ
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError("in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both "
                              "be set")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    token_file = service_account_dir / "token"
    if not token_file.is_file():
        raise KubeconfigError(f"in-cluster config: {token_file}: no service-account token mounted")
    reader = _Reader("in-cluster config", service_account_dir)
    ca_file = service_account_dir / "ca.crt"
    ca = reader.read_file(ca_file, str(ca_file))
    problem = _check_certs(ca)
    if problem:
        raise reader.error(str(ca_file), problem)
    namespace_file = service_account_dir / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else "default"
    return ClientConfig(server=f"https://{host}:{port}", ca_pem=ca, token_file=token_file,
                        namespace=namespace or "default", source="in-cluster config")
