"""The kubelet's /exec, /attach and /portForward (kpy_components.kubelet.streaming): options read as upstream's kubelet
reads them, `resolve` asked for the runtime's URL, and the upgrade relayed byte for byte to a stand-in for
containerd's streaming server (plain HTTP on loopback that answers 101 and echoes) — or its refusal passed on."""
from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from kpy_components.api.errors import APIError
from kpy_components.kubelet import streaming
from kpy_components.kubelet.streaming import StreamOptions
from kpy_components.streaming import upgrade

pytestmark = pytest.mark.anyio
TIMEOUT = 10.0
SPDY = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v3.channel.k8s.io"), ("Authorization", "Bearer secret")]


class Runtime:
    """The runtime's streaming server: records each request head; /refuse answers 400, anything else 101 and echoes."""

    def __init__(self):
        self.heads: list[str] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        self.heads.append(head)
        if " /refuse " in head:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nno such")
        else:
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                         b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
            while data := await reader.read(65536):
                writer.write(data)
        await writer.drain()
        writer.close()


@pytest.fixture
async def kubelet():
    """(base URL of a kubelet app with add_routes, the resolve calls it made, the runtime)."""
    calls = []
    async with Runtime() as runtime:
        async def resolve(kind, namespace, pod, container, options):
            calls.append((kind, namespace, pod, container, options))
            if pod == "gone":
                raise APIError(404, "NotFound", f'container not found ("{container}")')
            return runtime.url + ("/refuse" if pod == "refused" else f"/{kind}/token")

        app = web.Application()
        streaming.add_routes(app, resolve)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", calls, runtime
        await runner.cleanup()


async def test_exec_is_resolved_and_relayed_byte_for_byte(kubelet):
    base, calls, runtime = kubelet
    async with asyncio.timeout(TIMEOUT):
        answer = await upgrade.dial(f"{base}/exec/ns/web/app?command=sh&command=-c&command=ls&input=1&output=1"
                                    "&error=1&tty=1", "POST", SPDY)
        assert answer.status == 101
        assert answer.headers["X-Stream-Protocol-Version"] == "v4.channel.k8s.io"  # the runtime's choice, relayed
        connection = answer.connection
        await connection.send(b"\x80\x03\x00\x06 any bytes at all")
        echoed = b""
        while len(echoed) < 20:
            echoed += await connection.reader.read(100)
        assert echoed == b"\x80\x03\x00\x06 any bytes at all"
        await connection.close()
    assert calls == [("exec", "ns", "web", "app", StreamOptions(("sh", "-c", "ls"), stdin=True, stdout=True,
                                                                stderr=False, tty=True))]  # no stderr with a TTY
    head = runtime.heads[-1]
    assert head.startswith("POST /exec/token HTTP/1.1\r\n")
    assert "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io" in head
    assert "Authorization" not in head  # the caller's credentials stay at the kubelet


async def test_attach_and_port_forward_options(kubelet):
    base, calls, _ = kubelet
    for path in ("/attach/ns/web/app?output=1&error=1", "/portForward/ns/web?port=80,8080"):
        answer = await upgrade.dial(base + path, "GET", SPDY)
        assert answer.status == 101
        await answer.connection.close()
    assert calls == [("attach", "ns", "web", "app", StreamOptions(stdout=True, stderr=True)),
                     ("portforward", "ns", "web", "", StreamOptions(ports=(80, 8080)))]


async def test_refusals_are_plain_text_as_the_kubelet_writes_them(kubelet):
    base, calls, _ = kubelet
    gone = await upgrade.dial(f"{base}/exec/ns/gone/app?command=ls&output=1", "POST", SPDY)
    assert (gone.status, gone.body) == (404, b'container not found ("app")')
    refused = await upgrade.dial(f"{base}/exec/ns/refused/app?command=ls&output=1", "POST", SPDY)
    assert (refused.status, refused.body) == (400, b"no such")  # the runtime's answer, passed on
    no_streams = await upgrade.dial(f"{base}/exec/ns/web/app?command=ls", "POST", SPDY)
    assert (no_streams.status, no_streams.body) == (400, b"you must specify at least 1 of stdin, stdout, stderr")
    bad_port = await upgrade.dial(f"{base}/portForward/ns/web?port=http", "POST", SPDY)
    assert bad_port.status == 400 and b'invalid port "http"' in bad_port.body
    assert [call[2] for call in calls] == ["gone", "refused"]
