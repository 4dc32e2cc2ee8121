"""Kubeconfig files with the CA, client certificate and key embedded, so each is one self-contained file."""
import base64
import ipaddress

import yaml

API_PORT = 6443
# Control-plane components talk to the API server on their own host, so they keep working while a load balancer
# in front of the API servers is down.
LOCAL_SERVER = f"https://127.0.0.1:{API_PORT}"


def server_url(endpoint: str) -> str:
    """https://<endpoint>:6443, with an IPv6 address in brackets."""
    try:
        host = f"[{endpoint}]" if ipaddress.ip_address(endpoint).version == 6 else endpoint
    except ValueError:
        host = endpoint
    return f"https://{host}:{API_PORT}"


def render(cluster_name: str, user: str, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> bytes:
    """The kubeconfig as bytes; the same inputs always give the same bytes (so an unchanged file stays unchanged)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {"name": user, "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}}
        ],
        "contexts": [{"name": "default", "context": {"cluster": cluster_name, "user": user}}],
        "current-context": "default",
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
