"""The kubelet's parts wired together: the Node (node.py), the pod network (network.py), the pods (pods.py), and
what the kubelet API serves from them (/pods, /containerLogs, the URLs exec/attach/port-forward stream to).

The network follows a watch on Nodes: this node's spec.podCIDR becomes the CNI configuration (until then the node is
NotReady: "network plugin not ready"), every other node's pod CIDR a route via its InternalIP.
"""
from __future__ import annotations

import asyncio
import logging

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from kpy_components.api.errors import APIError
from kpy_components.client import EventRecorder, RESTClient, SharedInformerFactory, ignore_not_found

from . import logs, network, streaming
from .config import KubeletConfig
from .cri.client import CRIError, RuntimeClient
from .node import NodeAgent, Readiness, node_ip
from .pods import PodManager

log = logging.getLogger(__name__)
KUBE_PROXY_VERSION_URL = "http://127.0.0.1:10256/version"  # kpy-proxy's health server (healthzBindAddress)
NETWORK_RETRY = 5.0  # seconds before a failed route or CNI write is tried again


class APIObjectSource:
    """model.ObjectSource over the API server: what the Node authorizer lets a kubelet read for its pods."""

    def __init__(self, client: RESTClient):
        self.client = client
        self._info = {plural: client.resource(plural) for plural in
                      ("configmaps", "secrets", "persistentvolumeclaims", "persistentvolumes", "serviceaccounts")}

    async def configmap(self, namespace: str, name: str) -> dict | None:
        return await ignore_not_found(self.client.get(self._info["configmaps"], name, namespace))

    async def secret(self, namespace: str, name: str) -> dict | None:
        return await ignore_not_found(self.client.get(self._info["secrets"], name, namespace))

    async def claim(self, namespace: str, name: str) -> dict | None:
        return await ignore_not_found(self.client.get(self._info["persistentvolumeclaims"], name, namespace))

    async def volume(self, name: str) -> dict | None:
        return await ignore_not_found(self.client.get(self._info["persistentvolumes"], name))

    async def service_account_token(self, namespace: str, service_account: str, *, audience: str | None,
                                    expiration_seconds: int, pod: dict) -> dict:
        spec = {"expirationSeconds": expiration_seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                   "uid": pod["metadata"]["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        review = await self.client.create(self._info["serviceaccounts"],
                                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                           "spec": spec}, namespace, name=service_account, subresource="token")
        return review.get("status") or {}


class ProxyVersion:
    """nodeInfo.kubeProxyVersion: what this node's kpy-proxy reports on its health port (the kube-proxy default,
    loopback), "" while it does not answer. Read each round, so the Node shows a kpy-proxy upgrade, over one client
    (one kept-alive connection) for the kubelet's life; `aclose` when the kubelet stops."""

    def __init__(self, url: str = KUBE_PROXY_VERSION_URL):
        self.url = url
        self._http = httpx.AsyncClient(timeout=1.0, trust_env=False)  # loopback: never through an HTTP_PROXY

    async def __call__(self) -> str:
        try:
            response = await self._http.get(self.url)
            return response.json().get("gitVersion", "") if response.status_code == 200 else ""
        except (httpx.HTTPError, ValueError, AttributeError):
            return ""

    async def aclose(self) -> None:
        await self._http.aclose()


class Agent:
    def __init__(self, client: RESTClient, informers: SharedInformerFactory, runtime: RuntimeClient,
                 config: KubeletConfig, node_name: str, recorder: EventRecorder, metrics: CollectorRegistry):
        self.client, self.informers, self.runtime, self.config = client, informers, runtime, config
        self.node_name, self.recorder, self.metrics = node_name, recorder, metrics
        self.address = node_ip(config)
        self.proxy_version = ProxyVersion()
        self.nodes = informers.informer(client.resource("nodes"))
        self.node = NodeAgent(client, config, node_name, self.address, self.readiness, self.runtime_version,
                              self.proxy_version)
        self.pods = PodManager(client, informers, runtime, config, node_name, recorder, APIObjectSource(client),
                               self.address, lambda: ((self.node.node or {}).get("status") or {}).get("allocatable"))
        self._network_error = "no pod CIDR assigned to this node yet"
        self._runtime_version = ""

    # --- readiness ---------------------------------------------------------------------------------------------
    async def runtime_version(self) -> str:
        if not self._runtime_version:
            version = await self.runtime.version()
            self._runtime_version = f"{version.runtime_name}://{version.runtime_version}"
        return self._runtime_version

    async def readiness(self) -> Readiness:
        """The runtime's RuntimeReady and NetworkReady conditions, and whether this node's pod network is wired."""
        try:
            conditions = {c.type: c for c in await self.runtime.status()}
        except CRIError as error:
            return Readiness(False, False, f"container runtime is down: {error.message}")
        problems = [f"{kind}=false reason:{c.reason} message:{c.message}" for kind in ("RuntimeReady", "NetworkReady")
                    if (c := conditions.get(kind)) is not None and not c.status]
        runtime = conditions.get("RuntimeReady")
        network_ready = conditions.get("NetworkReady") is None or conditions["NetworkReady"].status
        if self._network_error:
            return Readiness(runtime is None or runtime.status, False, self._network_error)
        return Readiness(runtime is None or runtime.status, network_ready, "; ".join(problems))

    def health_checks(self) -> dict:
        async def syncloop() -> str | None:
            return None if self.pods.pods.has_synced else "the pod informer has not synced yet"
        return {"ping": _ok, "syncloop": syncloop}

    # --- network -----------------------------------------------------------------------------------------------
    def _on_nodes(self, *_args) -> None:
        self._network_changed.set()

    async def _network_loop(self) -> None:
        self._network_changed = asyncio.Event()
        self.nodes.add_handler(self._on_nodes, self._on_nodes, self._on_nodes)
        await self.nodes.wait_for_sync()
        if self.config.cluster_cidr:
            await asyncio.to_thread(network.sync_masquerade, self.config.cluster_cidr)
        while True:
            self._network_changed.clear()
            try:
                await self._sync_network()
            except network.NetworkError as error:
                self._network_error = f"pod network: {error}"
                log.warning("Pod network sync failed: %s", error)
                await asyncio.sleep(NETWORK_RETRY)
                continue
            await self._network_changed.wait()

    async def _sync_network(self) -> None:
        nodes = self.nodes.store.list()
        own = self.nodes.store.get(self.node_name) or {}
        spec = own.get("spec") or {}
        cidr = spec.get("podCIDR") or next(iter(spec.get("podCIDRs") or ()), "")
        if cidr:
            await asyncio.to_thread(network.write_cni_config, self.config.cni_conf_dir, cidr)
            if self._network_error:  # the node turns Ready now: report it without waiting for the next round
                self._network_error = ""
                self.node.changed.set()
        changes = await asyncio.to_thread(network.sync_routes, network.wanted_routes(nodes, self.node_name))
        if changes:
            log.info("Synced pod routes changes=%s", ", ".join(changes))

    # --- the API's view ----------------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/pods", self._pods)
        app.router.add_get("/pods/", self._pods)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._container_logs)

    async def _pods(self, _request: web.Request) -> web.Response:
        return web.json_response(self.pods.pod_list())

    async def _container_logs(self, request: web.Request) -> web.StreamResponse:
        namespace, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        pod = self.pods.find(namespace, name)
        if pod is None:
            return web.Response(status=404, text=f'pod "{name}" in namespace "{namespace}" not found\n')
        try:
            options = logs.LogOptions.from_query(request.query)
        except ValueError as error:
            return web.Response(status=400, text=f"{error}\n")
        folder = logs.pod_log_dir(self.config.pod_logs_dir, namespace, name, pod["metadata"]["uid"])
        path = logs.log_file(folder, container, options.previous)
        if path is None:  # upstream's words for both cases
            text = (f'previous terminated container "{container}" in pod "{name}" not found' if options.previous
                    else f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
            return web.Response(status=400, text=text + "\n")
        uid = pod["metadata"]["uid"]

        async def running() -> bool:
            if options.previous:
                return False
            latest = (await self.pods.observe(uid)).latest(container)
            return latest is not None and latest.state == "running"

        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        async for chunk in logs.stream(path, options, running):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def stream_url(self, kind: str, namespace: str, name: str, container: str,
                         options: streaming.StreamOptions) -> str:
        """The runtime's streaming URL for exec/attach/portforward; APIError 404 when the pod or container is not
        here or not running (upstream's words)."""
        pod = self.pods.find(namespace, name)
        if pod is None:
            raise APIError(404, "NotFound", f'pod "{name}" not found')
        observation = await self.pods.observe(pod["metadata"]["uid"])
        try:
            if kind == "portforward":
                if observation.sandbox is None or not observation.sandbox.ready:
                    raise APIError(404, "NotFound", f'pod "{name}" has no running sandbox')
                return await self.runtime.port_forward(observation.sandbox.id, list(options.ports))
            latest = observation.latest(container)
            if latest is None or latest.state != "running":
                raise APIError(404, "NotFound", f'container not found ("{container}")')
            if kind == "exec":
                return await self.runtime.exec(latest.id, list(options.command), tty=options.tty,
                                               stdin=options.stdin, stdout=options.stdout, stderr=options.stderr)
            return await self.runtime.attach(latest.id, tty=options.tty, stdin=options.stdin,
                                             stdout=options.stdout, stderr=options.stderr)
        except CRIError as error:
            raise APIError(500, "InternalError", error.message) from None

    # --- life --------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        await self._wait_for_runtime()
        self.informers.start()
        await asyncio.gather(self.node.run(), self._network_loop(), self.pods.run())

    async def close(self) -> None:
        await self.proxy_version.aclose()

    async def _wait_for_runtime(self) -> None:
        while True:
            try:
                await self.runtime_version()
                return
            except CRIError as error:
                log.warning("Container runtime not reachable yet endpoint=%s: %s", self.config.runtime_endpoint,
                            error.message)
                await asyncio.sleep(2)


async def _ok() -> str | None:
    return None
