"""etcd 3.4's own configuration file (`etcd --config-file`), rendered from the model.

With --config-file etcd ignores its flags and ETCD_* variables, and its defaults differ from the flags' defaults:
the JSON gateway, for one, is only served when `enable-grpc-gateway: true` is written out.
"""
from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from kpy_components.etcd.model import EtcdModel, url

HEADER = "# Rendered by kpy-etcd from its model; edit the kpy-etcd config instead.\n"


def _transport_security(cert_file: Path, key_file: Path, ca_file: Path) -> dict[str, Any]:
    # Mutual TLS: etcd accepts only clients (or peers) whose certificate our etcd CA signed.
    return {"cert-file": str(cert_file), "key-file": str(key_file), "client-cert-auth": True,
            "trusted-ca-file": str(ca_file), "auto-tls": False}


def etcd_config(model: EtcdModel) -> dict[str, Any]:
    """etcd's configuration for the local member, as a mapping of etcd config-file keys."""
    local = model.local
    listen_client = [local.client_url]
    if not local.ip.is_loopback:  # local tools (kpy-etcd health, etcdctl) reach the member on loopback too
        loopback = ipaddress.ip_address("127.0.0.1" if local.ip.version == 4 else "::1")
        listen_client.append(url("https", loopback, local.client_port))
    tls = model.tls
    config: dict[str, Any] = {
        "name": local.name,
        "data-dir": str(model.data_dir),
        "listen-client-urls": ",".join(listen_client),
        "advertise-client-urls": local.client_url,
        "listen-peer-urls": local.peer_url,
        "initial-advertise-peer-urls": local.peer_url,
        "initial-cluster": model.initial_cluster,
        "initial-cluster-state": model.initial_cluster_state,
        "initial-cluster-token": model.cluster_token,
        "strict-reconfig-check": True,
        "enable-v2": False,
        "enable-grpc-gateway": True,
        "client-transport-security": _transport_security(tls.server_cert_file, tls.server_key_file, tls.ca_file),
        "peer-transport-security": _transport_security(tls.peer_cert_file, tls.peer_key_file, tls.ca_file),
        "logger": "zap",
        "log-outputs": ["stderr"],
        "log-level": model.log_level,
    }
    if model.metrics_port is not None:
        config["listen-metrics-urls"] = f"http://127.0.0.1:{model.metrics_port}"
    config.update(model.extra_config)
    return config


def render(model: EtcdModel) -> str:
    return HEADER + yaml.safe_dump(etcd_config(model), sort_keys=False, default_flow_style=False)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write `text` to `path` through a temporary file and a rename; False when the content was already there."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
