"""The WebSocket forms of Kubernetes streams that newer kubectl speak first, served by translating them to the SPDY
the kubelet (and the runtime behind it) speaks, as kube-apiserver does.

Channel protocol (`v5.channel.k8s.io`, kubectl >= 1.30 exec/attach): binary messages whose first byte is the channel
— 0 stdin, 1 stdout, 2 stderr, 3 error (a Status JSON once the command ends), 4 resize (TerminalSize JSON) — and, new
in v5, 255 CLOSE: `[255, channel]` says the sender is done with that channel (kubectl sends it when its stdin ends).
The server closes the WebSocket normally when the command is done; kubectl reads that as the end of every channel.
Each channel maps to one SPDY stream of the v4 protocol towards the kubelet (header `streamtype`), CLOSE to FIN.

Tunnel (`SPDY/3.1+portforward.k8s.io`, kubectl >= 1.31 port-forward): binary messages carry SPDY bytes unchanged
(no channel byte), so after the kubelet's 101 the API server only unwraps and wraps messages.
"""
from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import WSMsgType, web

from . import spdy
from .upgrade import Answer, Upgraded, splice

V5 = "v5.channel.k8s.io"
SPDY_PROTOCOL = "v4.channel.k8s.io"  # what the translation asks the kubelet for (containerd serves v1..v4)
TUNNEL_PREFIX = "SPDY/3.1+"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
STREAM_TYPES = {ERROR: "error", STDIN: "stdin", STDOUT: "stdout", STDERR: "stderr", RESIZE: "resize"}
_OUTPUT = (STDOUT, STDERR, ERROR)


def offered_protocols(request: web.Request) -> list[str]:
    """The subprotocols of a WebSocket upgrade request (none for anything else)."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return []
    return [p.strip() for value in request.headers.getall("Sec-WebSocket-Protocol", ()) for p in value.split(",")
            if p.strip()]


def tunnelled_protocols(request: web.Request) -> list[str]:
    """The SPDY protocols a port-forward tunnel offers (`SPDY/3.1+portforward.k8s.io` -> `portforward.k8s.io`)."""
    return [p.removeprefix(TUNNEL_PREFIX) for p in offered_protocols(request)
            if p.startswith(TUNNEL_PREFIX) and p.endswith(".k8s.io")]


def channels(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> list[int]:
    """The channels of one exec/attach, in the order client-go opens their streams; a TTY merges stderr into stdout
    and adds resize."""
    return [ERROR] + [c for c, wanted in ((STDIN, stdin), (STDOUT, stdout), (STDERR, stderr and not tty),
                                          (RESIZE, tty)) if wanted]


def failure_status(answer: Answer) -> dict:
    """The Status kube-apiserver sends on the error channel when the kubelet refused the upgrade: the kubelet's own
    Status when it sent one, else its words as client-go's SPDY dialer reports them."""
    text = answer.body.decode(errors="replace").strip()
    with contextlib.suppress(ValueError):
        status = json.loads(text)
        if isinstance(status, dict) and status.get("kind") == "Status":
            return status
    return error_status(f"unable to upgrade connection: {text or answer.reason}")


def error_status(cause: str) -> dict:
    """An InternalError Status, as apierrors.NewInternalError words it."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"Internal error occurred: {cause}", "reason": "InternalError",
            "details": {"causes": [{"message": cause}]}, "code": 500}


async def send_status(ws: web.WebSocketResponse, status: dict) -> None:
    """Report `status` on the error channel and end the session."""
    with contextlib.suppress(ConnectionError):
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
    await ws.close()


async def translate(ws: web.WebSocketResponse, upstream: Upgraded, wanted: list[int]) -> None:
    """Bridge a prepared v5 WebSocket and a kubelet connection upgraded to SPDY (v4 remotecommand): open one stream
    per channel in `wanted` (from `channels`), relay each way, and close the WebSocket once the kubelet's side ended
    (everything it sent relayed first) or the SPDY side once the client went away."""
    connection = spdy.Connection(upstream, client=True)
    serving = asyncio.ensure_future(connection.serve())
    streams: dict[int, spdy.Stream] = {}

    async def down(channel: int, stream: spdy.Stream) -> None:
        while data := await stream.read():
            await ws.send_bytes(bytes([channel]) + data)

    async def up() -> None:
        async for message in ws:
            # A text message counts as its UTF-8 bytes, as upstream reads it (the Python client sends str so).
            payload = message.data.encode() if message.type == WSMsgType.TEXT else message.data
            if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not payload:
                continue
            channel, data = payload[0], payload[1:]
            if channel == CLOSE and data and data[0] in streams:
                await streams[data[0]].close()
            elif channel in (STDIN, RESIZE) and channel in streams and not streams[channel].local_done:
                await streams[channel].write(data)

    tasks: list[asyncio.Future] = []
    try:
        for channel in wanted:
            streams[channel] = await connection.open({"streamtype": STREAM_TYPES[channel]})
        outputs = [asyncio.ensure_future(down(c, s)) for c, s in streams.items() if c in _OUTPUT]
        client = asyncio.ensure_future(up())
        tasks = [client, *outputs]
        await asyncio.wait([serving, client], return_when=asyncio.FIRST_COMPLETED)
        if serving.done():  # the kubelet ended the session: relay the rest, then end the client's
            await asyncio.gather(*outputs, return_exceptions=True)
    except ConnectionError as error:  # the kubelet hung up before the streams were open
        await send_status(ws, error_status(f"error creating streams: {error}"))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await connection.close()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await ws.close()


async def tunnel(ws: web.WebSocketResponse, upstream: Upgraded) -> None:
    """Relay SPDY bytes between a prepared tunnelling WebSocket and a kubelet connection upgraded to SPDY."""
    async def messages():
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                yield message.data

    try:
        await splice(messages(), ws.send_bytes, upstream)
    finally:
        await ws.close()
