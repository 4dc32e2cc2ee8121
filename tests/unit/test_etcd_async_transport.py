"""The asyncio etcd client's HTTP layer (aiohttp): its errors become kpy's etcd exceptions naming the endpoint, and
streams of any line length, failover and timeouts behave as the blocking client's — against small real HTTP
servers on loopback standing in for etcd's gateway."""
import asyncio
import json
import socket
import ssl

import aiohttp
import pytest
from aiohttp import web

from kpy_components.etcd import AsyncEtcdClient
from kpy_components.etcd.errors import EtcdConnectionError, EtcdTimeout, EtcdUnavailable
from kpy_components.etcd.transport import RequestNotSent, translated_aiohttp_errors

pytestmark = pytest.mark.anyio


def _refused_connection() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("e", 2379, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))


@pytest.mark.parametrize("make, expected, words", [
    (_refused_connection, RequestNotSent, "cannot connect"),
    (lambda: aiohttp.ConnectionTimeoutError("handshake"), RequestNotSent, "timed out connecting"),
    (lambda: aiohttp.SocketTimeoutError("slow"), EtcdTimeout, "no answer in time"),
    (lambda: asyncio.TimeoutError(), EtcdTimeout, "no answer in time"),
    (lambda: aiohttp.ServerDisconnectedError(), EtcdConnectionError, "connection failed"),
    (lambda: ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"), EtcdConnectionError,
     "etcd refused our client certificate"),
])
def test_aiohttp_errors_are_translated_naming_the_endpoint(make, expected, words):
    raised = make()
    with pytest.raises(expected) as caught, translated_aiohttp_errors("https://e:2379"):
        raise raised
    assert str(caught.value).startswith("https://e:2379: ") and words in str(caught.value)
    assert isinstance(caught.value, EtcdUnavailable) and caught.value.__cause__ is raised


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    """A loopback HTTP server answering etcd gateway paths with the given handler."""

    def __init__(self, handler):
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", handler)

    async def __aenter__(self) -> str:
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def __aexit__(self, *exc_info) -> None:
        await self.runner.cleanup()


async def test_unary_call_fails_over_from_a_refusing_endpoint():
    async def put(request: web.Request) -> web.Response:
        return web.json_response({"header": {"revision": "7"}})

    async with Gateway(put) as endpoint:
        async with AsyncEtcdClient([f"http://127.0.0.1:{_unused_port()}", endpoint]) as client:
            assert (await client.put("/a", "1")).revision == 7
            assert client.endpoints.candidates(None)[0] == endpoint


async def test_a_silent_member_times_out():
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async with Gateway(silent) as endpoint, AsyncEtcdClient([endpoint], timeout=0.3) as client:
        with pytest.raises(EtcdTimeout, match=endpoint):
            await client.get("/a")


async def test_watch_lines_longer_than_the_stream_buffer_arrive_whole():
    events = [{"type": "PUT", "kv": {"key": "L2E=", "value": "eHh4" * 10, "mod_revision": str(n + 2)}}
              for n in range(3000)]  # one message of ~300 KB, over aiohttp's 64 KiB read buffer
    message = json.dumps({"result": {"header": {"revision": "3001"}, "events": events}}).encode()

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(json.dumps({"result": {"header": {"revision": "1"}, "created": True}}).encode() + b"\n")
        for start in range(0, len(message), 10_000):  # split across many chunks
            await response.write(message[start:start + 10_000])
        await response.write(b"\n")
        await asyncio.sleep(5)  # a watch stays open
        return response

    async with Gateway(watch) as endpoint, AsyncEtcdClient([endpoint]) as client:
        async with client.watch("/a", prefix=True) as responses:
            created = await anext(responses)
            big = await anext(responses)
    assert created.created and len(big.events) == 3000 and big.events[-1].kv.mod_revision == 3001
