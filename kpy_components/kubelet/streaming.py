"""The kubelet's exec, attach and port-forward endpoints, as kube-apiserver calls them (GET or POST, upgraded):

    /exec/{namespace}/{pod}/{container}?command=…&input=1&output=1&error=1&tty=1
    /attach/{namespace}/{pod}/{container}?input=1&output=1&error=1&tty=1
    /portForward/{namespace}/{pod}[?port=80,443]

Each asks `resolve` for the URL the runtime's CRI Exec/Attach/PortForward call returned (on containerd's streaming
server, plain HTTP on loopback), then relays the caller's upgrade there byte for byte (streaming.upgrade), as
upstream's kubelet proxies the stream. Authentication and authorization (nodes/proxy) run before, in server.py.

Contract of `resolve(kind, namespace, pod, container, options) -> URL`: kind is "exec", "attach" or "portforward"
(container "" then); raising APIError answers with its code and message as plain text, as upstream's
streaming.WriteError does — kubectl then prints `unable to upgrade connection: <message>`.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from kpy_components.api.errors import APIError
from kpy_components.streaming import upgrade

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 10.0  # seconds to reach the runtime's streaming server and read its answer


@dataclass(frozen=True)
class StreamOptions:
    """What the caller asked for: the streams of an exec/attach (upstream's remotecommand.NewOptions reads the same
    query: input/output/error/tty = "1"; stderr is off with a TTY) and the ports of a port-forward."""
    command: tuple[str, ...] = ()
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False
    ports: tuple[int, ...] = ()


Resolve = Callable[[str, str, str, str, StreamOptions], Awaitable[str]]


class _Refused(Exception):
    """A request answered 400 with this message."""


def _options(kind: str, query) -> StreamOptions:
    if kind == "portforward":
        ports = [p for value in query.getall("port", ()) for p in value.split(",") if p]
        for port in ports:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise _Refused(f'invalid port "{port}": must be a number between 1 and 65535')
        return StreamOptions(ports=tuple(int(p) for p in ports))
    stdin, stdout, stderr, tty = (query.get(name) == "1" for name in ("input", "output", "error", "tty"))
    if not (stdin or stdout or stderr):
        raise _Refused("you must specify at least 1 of stdin, stdout, stderr")
    command = tuple(query.getall("command", ())) if kind == "exec" else ()
    return StreamOptions(command, stdin, stdout, stderr and not tty, tty)


def add_routes(app: web.Application, resolve: Resolve) -> None:
    """Serve /exec, /attach and /portForward on `app`, relaying to the URLs `resolve` gives."""
    async def serve(request: web.Request) -> web.StreamResponse:
        kind = "portforward" if request.path.startswith("/portForward/") else request.path.split("/")[1]
        info = request.match_info
        try:
            options = _options(kind, request.query)
        except _Refused as refusal:
            return web.Response(status=400, text=str(refusal))
        try:
            url = await resolve(kind, info["namespace"], info["pod"], info.get("container", ""), options)
        except APIError as error:
            return web.Response(status=error.code, text=error.message)
        try:
            answer = await upgrade.dial(url, request.method, upgrade.passed_on(request), timeout=CONNECT_TIMEOUT)
        except upgrade.UpgradeFailed as error:
            log.warning("Streaming server unreachable url=%s: %s", url, error)
            return web.Response(status=500, text=f"error dialing the container runtime's streaming server: {error}")
        return await upgrade.relay(request, answer)

    for path in ("/exec/{namespace}/{pod}/{container}", "/attach/{namespace}/{pod}/{container}",
                 "/portForward/{namespace}/{pod}"):
        app.router.add_get(path, serve, allow_head=False)
        app.router.add_post(path, serve)
