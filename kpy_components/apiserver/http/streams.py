"""pods/exec, pods/attach and pods/portforward (GET or POST; RBAC verbs get and create on the subresource): checked
here as kube-apiserver checks them (the container is one of the pod's own, the pod has a node), then carried to the
node's kubelet (/exec/<ns>/<pod>/<container>?command=…&input=1&output=1&error=1&tty=1, /attach/…,
/portForward/<ns>/<pod>) with the API server's kubelet-client certificate.

What each client speaks, and how it is carried:
- an SPDY/3.1 upgrade (every kubectl; the fallback of newer ones), or a WebSocket of the v1..v4 channel protocols:
  sent on to the kubelet as it came and, after its 101, piped byte for byte (streaming.upgrade);
- a WebSocket `v5.channel.k8s.io` exec/attach (kubectl >= 1.30): answered here and translated to SPDY v4 streams
  towards the kubelet (streaming.websocket.translate); a refused upgrade becomes a Status on the error channel;
- a WebSocket `SPDY/3.1+portforward.k8s.io` port-forward (kubectl >= 1.31): an SPDY upgrade to the kubelet first,
  then its SPDY bytes unwrapped from and wrapped into binary messages (streaming.websocket.tunnel).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from kpy_components.api import errors
from kpy_components.apiserver.kubelet import KubeletClient, pod_node
from kpy_components.apiserver.registry.api import API
from kpy_components.streaming import upgrade, websocket

from .logs import _container

SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
_SPDY_UPGRADE = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]


@dataclass(frozen=True)
class _Options:
    """PodExecOptions / PodAttachOptions, as the kubelet is given them."""
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    command: tuple[str, ...] = ()

    def params(self) -> list[tuple[str, str]]:
        """The kubelet's query: upstream's streamParams (input/output/error/tty = 1, command repeated)."""
        flags = (("input", self.stdin), ("output", self.stdout), ("error", self.stderr), ("tty", self.tty))
        return [(name, "1") for name, on in flags if on] + [("command", c) for c in self.command]


def _bool(query, name: str) -> bool:
    """A query flag as apimachinery's Convert_Slice_string_To_bool reads it: absent, "0" or "false" (any case) is
    false, anything else (even empty) true."""
    return name in query and query[name] != "0" and query[name].lower() != "false"


def _options(subresource: str, query) -> _Options:
    command = tuple(query.getall("command", ())) if subresource == "exec" else ()
    return _Options(*(_bool(query, name) for name in ("stdin", "stdout", "stderr", "tty")), command)


def _ports(query) -> list[tuple[str, str]]:
    ports = query.getall("ports", ())
    for port in ports:
        if not port.isdigit():
            raise errors.bad_request(f'ports: Invalid value: "{port}": must be an integer')
    return [("port", ",".join(ports))] if ports else []


async def serve(request: web.Request, api: API, kubelets: KubeletClient | None, subresource: str, namespace: str,
                name: str) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
    pod = await api.store("", "pods").get(namespace, name)
    options = None
    if subresource == "portforward":
        path, params = f"/portForward/{namespace}/{name}", _ports(request.query)
    else:
        container = _container(pod, request.query.get("container", ""))
        options = _options(subresource, request.query)
        path, params = f"/{subresource}/{namespace}/{name}/{container}", options.params()
    node = await pod_node(api, kubelets, pod)
    target = path + (f"?{urlencode(params)}" if params else "")
    if options is not None and websocket.V5 in websocket.offered_protocols(request):
        return await _translate(request, kubelets, node, target, options)
    if options is None and (tunnelled := websocket.tunnelled_protocols(request)):
        return await _tunnel(request, kubelets, node, target, tunnelled)
    answer = await kubelets.upgrade(node, target, request.method, upgrade.passed_on(request))
    return await upgrade.relay(request, answer)


async def _translate(request: web.Request, kubelets: KubeletClient, node: dict, target: str,
                     options: _Options) -> web.StreamResponse:
    failure, answer = None, None
    try:
        answer = await kubelets.upgrade(node, target, "POST", _SPDY_UPGRADE + [
            ("X-Stream-Protocol-Version", websocket.SPDY_PROTOCOL)])
    except errors.APIError as error:
        failure = websocket.error_status(error.message)
    if answer is not None and not answer.upgraded:
        failure = websocket.failure_status(answer)
    ws = web.WebSocketResponse(protocols=(websocket.V5,))
    try:
        await ws.prepare(request)
    except BaseException:
        if answer is not None and answer.upgraded:
            await answer.connection.close()
        raise
    if failure is not None:
        await websocket.send_status(ws, failure)
    else:
        await websocket.translate(ws, answer.connection, websocket.channels(options.stdin, options.stdout,
                                                                             options.stderr, options.tty))
    return ws


async def _tunnel(request: web.Request, kubelets: KubeletClient, node: dict, target: str,
                  protocols: list[str]) -> web.StreamResponse:
    answer = await kubelets.upgrade(node, target, "POST", _SPDY_UPGRADE + [
        ("X-Stream-Protocol-Version", p) for p in protocols])
    if not answer.upgraded:  # passed on as it came, as upstream's tunnelling handler does
        return await upgrade.relay(request, answer)
    chosen = answer.headers.get("X-Stream-Protocol-Version", "").strip()
    ws = web.WebSocketResponse(protocols=(websocket.TUNNEL_PREFIX + chosen,) if chosen else ())
    try:
        await ws.prepare(request)
    except BaseException:
        await answer.connection.close()
        raise
    await websocket.tunnel(ws, answer.connection)
    return ws
