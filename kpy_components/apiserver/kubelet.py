"""The API server's client to kubelets (kube-apiserver's --kubelet-client-certificate/-key and
--kubelet-certificate-authority): mutual TLS to the node's kubelet port, for what only the node has: container
logs (pods/log) and the upgraded connections of exec, attach and port-forward.

Where a node's kubelet is: the first of its status.addresses by type InternalIP, ExternalIP, Hostname (kubeadm's
--kubelet-preferred-address-types) and status.daemonEndpoints.kubeletEndpoint.Port (default 10250).
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from kpy_components.api import errors
from kpy_components.streaming import upgrade

if TYPE_CHECKING:
    from kpy_components.apiserver.registry.api import API

DEFAULT_PORT = 10250
ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
CONNECT_TIMEOUT = 10.0
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}


@dataclass(frozen=True)
class KubeletClientConfig:
    cert_file: Path
    key_file: Path
    ca_file: Path | None = None  # verifies kubelets' serving certificates; None: not verified (as upstream)


def endpoint(node: dict) -> str:
    """https://<address>:<port> of the node's kubelet; 400 when the node reports no usable address."""
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or () if a.get("address")}
    address = next((addresses[kind] for kind in ADDRESS_TYPES if kind in addresses), None)
    name = (node.get("metadata") or {}).get("name", "")
    if address is None:
        raise errors.bad_request(f"node {name} has no address of a preferred type ({', '.join(ADDRESS_TYPES)})")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_PORT
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{port}"


async def pod_node(api: API, kubelets: KubeletClient | None, pod: dict) -> dict:
    """The Node object of the kubelet running `pod`, checked as kube-apiserver checks it
    before any call to a kubelet: the pod is scheduled, and this server has kubelet client credentials."""
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
    if kubelets is None:
        raise errors.APIError(503, "ServiceUnavailable", "this API server has no kubelet client credentials "
                              "configured (kubelet_client in its config), so it cannot reach kubelets")
    return await api.store("", "nodes").get("", node_name)


class KubeletClient:
    def __init__(self, config: KubeletClientConfig):
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(config.ca_file) if config.ca_file else None)
        if config.ca_file is None:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.load_cert_chain(config.cert_file, config.key_file)
        self._ssl = context
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT))
        return self._session

    async def get(self, node: dict, path: str, params: dict[str, str]) -> aiohttp.ClientResponse:
        """An open response from the kubelet (the caller streams and releases it); errors worded as
        kube-apiserver words a failed kubelet call (500 with the URL and the cause)."""
        url = endpoint(node) + path
        try:
            response = await self._client().get(url, params=params)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise errors.internal(f'Get "{url}": {error or type(error).__name__}') from None
        if response.status >= 400:  # passed on with the kubelet's status and words, as kube-apiserver does
            text = (await response.text())[:1024].strip()
            response.release()
            raise errors.APIError(response.status, _REASONS.get(response.status, "InternalError"),
                                  text or f"the kubelet at {url} answered {response.status}")
        return response

    async def upgrade(self, node: dict, path: str, method: str, headers: list[tuple[str, str]]) -> upgrade.Answer:
        """Send an upgrade request (SPDY/3.1, or a WebSocket the runtime serves) to the kubelet and return its answer;
        the caller relays or translates it. Unreachable kubelets are worded as kube-apiserver's proxy words them."""
        try:
            return await upgrade.dial(endpoint(node) + path, method, headers, ssl_context=self._ssl,
                                      timeout=CONNECT_TIMEOUT)
        except upgrade.UpgradeFailed as error:
            raise errors.APIError(500, "InternalError", f"error dialing backend: {error}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
