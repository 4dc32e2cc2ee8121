"""The WebSocket forms of exec/attach and port-forward (kpy_components.streaming.websocket): a real aiohttp WebSocket
client against `translate` / `tunnel`, whose upstream is an SPDY session on a socket pair standing in for the
kubelet."""
from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from kpy_components.streaming import spdy, websocket
from kpy_components.streaming.upgrade import Answer, from_streams

pytestmark = pytest.mark.anyio
TIMEOUT = 10.0


class Bridge:
    """An aiohttp server whose one WebSocket route runs `serve(ws, upstream)`, the upstream being one end of a socket
    pair; `kubelet` is a server SPDY session on the other end (the stand-in kubelet)."""

    def __init__(self, serve, protocols):
        self.serve, self.protocols = serve, protocols
        self.finished = asyncio.Event()

    async def __aenter__(self):
        left, right = socket.socketpair()
        self.upstream = from_streams(*await asyncio.open_connection(sock=left))
        self.kubelet = spdy.Connection(from_streams(*await asyncio.open_connection(sock=right)), client=False)
        self.serving = asyncio.ensure_future(self.kubelet.serve())

        async def handle(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(protocols=self.protocols)
            await ws.prepare(request)
            try:
                await self.serve(ws, self.upstream)
            finally:
                self.finished.set()
            return ws

        app = web.Application()
        app.router.add_get("/ws", handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/ws"
        await web.SockSite(self.runner, sock).start()
        self.session = aiohttp.ClientSession()
        return self

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        return await self.session.ws_connect(self.url, protocols=self.protocols)

    async def __aexit__(self, *exc):
        await self.session.close()
        await self.runner.cleanup()
        await self.kubelet.close()
        self.serving.cancel()


def translating(wanted: list[int]) -> Bridge:
    return Bridge(lambda ws, upstream: websocket.translate(ws, upstream, wanted), (websocket.V5,))


async def _streams(kubelet: spdy.Connection, count: int) -> dict[str, spdy.Stream]:
    streams = {}
    for _ in range(count):
        stream = await kubelet.accept()
        await stream.reply()
        streams[stream.headers["streamtype"]] = stream
    return streams


async def _read_all(stream: spdy.Stream) -> bytes:
    data = b""
    while chunk := await stream.read():
        data += chunk
    return data


def test_channels_follow_the_options():
    c = websocket
    assert c.channels(stdin=False, stdout=True, stderr=True, tty=False) == [c.ERROR, c.STDOUT, c.STDERR]
    assert c.channels(stdin=True, stdout=True, stderr=True, tty=True) == [c.ERROR, c.STDIN, c.STDOUT, c.RESIZE]


async def test_exec_channels_become_spdy_streams_and_back():
    wanted = websocket.channels(stdin=True, stdout=True, stderr=True, tty=False)
    async with translating(wanted) as bridge:
        async with asyncio.timeout(TIMEOUT):
            client = await bridge.connect()
            assert client.protocol == websocket.V5
            streams = await _streams(bridge.kubelet, 4)
            assert list(streams) == ["error", "stdin", "stdout", "stderr"]  # client-go's order
            await client.send_bytes(b"\x00hello ")
            await client.send_str("\x00world")  # a text message, as the Python client sends str
            await client.send_bytes(bytes([websocket.CLOSE, websocket.STDIN]))  # v5: stdin is done
            assert await _read_all(streams["stdin"]) == b"hello world"  # ... ended by FIN
            await streams["stdout"].write(b"out")
            await streams["stderr"].write(b"err")
            status = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
            await streams["error"].write(json.dumps(status).encode())
            await bridge.kubelet.close()  # the command is done: the kubelet ends the session
            received = [message.data async for message in client]
            assert received == [b"\x01out", b"\x02err", b"\x03" + json.dumps(status).encode()]
            assert client.close_code == aiohttp.WSCloseCode.OK  # kubectl reads a normal close as the end


async def test_resize_goes_to_the_resize_stream():
    wanted = websocket.channels(stdin=True, stdout=True, stderr=False, tty=True)
    async with translating(wanted) as bridge:
        async with asyncio.timeout(TIMEOUT):
            client = await bridge.connect()
            streams = await _streams(bridge.kubelet, 4)
            assert list(streams) == ["error", "stdin", "stdout", "resize"]
            size = json.dumps({"Width": 80, "Height": 24}).encode()
            await client.send_bytes(bytes([websocket.RESIZE]) + size)
            assert await streams["resize"].read() == size


async def test_the_client_going_away_ends_the_kubelet_session():
    wanted = websocket.channels(stdin=False, stdout=True, stderr=False, tty=False)
    async with translating(wanted) as bridge:
        async with asyncio.timeout(TIMEOUT):
            client = await bridge.connect()
            streams = await _streams(bridge.kubelet, 2)
            await client.close()
            await bridge.kubelet.done.wait()  # GOAWAY and the connection closed
            assert await streams["stdout"].read() == b""
            await bridge.finished.wait()


async def test_a_refused_upgrade_is_a_status_on_the_error_channel():
    refused = Answer(404, "Not Found", CIMultiDict(), b'container not found ("app")')
    status = websocket.failure_status(refused)
    assert status["message"] == 'Internal error occurred: unable to upgrade connection: container not found ("app")'
    assert (status["code"], status["reason"]) == (500, "InternalError")
    kubelet_status = {"kind": "Status", "status": "Failure", "message": "forbidden", "code": 403}
    assert websocket.failure_status(Answer(403, "Forbidden", CIMultiDict(), json.dumps(kubelet_status).encode())) \
        == kubelet_status

    async def serve(ws, upstream):
        await websocket.send_status(ws, status)

    async with Bridge(serve, (websocket.V5,)) as bridge:
        async with asyncio.timeout(TIMEOUT):
            client = await bridge.connect()
            assert [m.data async for m in client] == [b"\x03" + json.dumps(status).encode()]


async def test_the_tunnel_carries_spdy_bytes_unchanged():
    protocol = websocket.TUNNEL_PREFIX + "portforward.k8s.io"
    async with Bridge(websocket.tunnel, (protocol,)) as bridge:
        async with asyncio.timeout(TIMEOUT):
            client = await bridge.connect()
            codec = spdy.Codec()  # the client's side of the tunnelled session, written by hand, split anyhow
            wire = codec.encode(spdy.SynStream(1, {"streamtype": "data", "port": "80", "requestid": "0"})) + \
                codec.encode(spdy.Data(1, b"GET / HTTP/1.0\r\n\r\n"))
            for start in range(0, len(wire), 5):
                await client.send_bytes(wire[start:start + 5])
            stream = await bridge.kubelet.accept()
            assert stream.headers == {"streamtype": "data", "port": "80", "requestid": "0"}
            await stream.reply()
            assert await stream.read() == b"GET / HTTP/1.0\r\n\r\n"
            await stream.write(b"HTTP/1.0 200 OK\r\n\r\n")
            back = asyncio.StreamReader()  # what the client receives, read as SPDY

            async def feed() -> None:
                async for message in client:
                    back.feed_data(message.data)

            feeding = asyncio.ensure_future(feed())
            peer = spdy.Codec()
            assert await spdy.read_frame(back, peer) == spdy.SynReply(1, {})
            assert await spdy.read_frame(back, peer) == spdy.Data(1, b"HTTP/1.0 200 OK\r\n\r\n")
            feeding.cancel()
