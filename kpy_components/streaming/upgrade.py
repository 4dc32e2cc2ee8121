"""HTTP/1.1 connection upgrades relayed byte for byte: `dial` sends an upgrade request upstream and reads the answer's
head, `switch` answers a client's request with 101 and takes its connection over from aiohttp, `relay` does both and
then pipes bytes both ways. After a 101 neither side is HTTP any more (SPDY/3.1, or a WebSocket the runtime speaks), so
a relay needs no knowledge of what flows: this is how kube-apiserver's and the kubelet's UpgradeAwareHandler proxy.
"""
from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

READ_SIZE = 64 * 1024
MAX_ERROR_BODY = 64 * 1024  # of a refused upgrade's answer, kept for the message
# The request headers an upgrade passes on: the protocol negotiation only (never credentials: the hop authenticates
# itself, as kube-apiserver's authentication filter strips Authorization before proxying).
_PASSED_ON = ("Connection", "Upgrade", "X-Stream-Protocol-Version", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
              "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Origin")
# Answer headers not relayed with a 101 (aiohttp writes its own Date and Server).
_NOT_RELAYED = frozenset({"content-length", "transfer-encoding", "date", "server"})


class UpgradeFailed(Exception):
    """The upstream could not be reached or did not answer HTTP."""


@dataclass
class Upgraded:
    """One end of an upgraded connection: what the peer sends (`reader`), how to send it bytes, how to end it.
    `response` is the 101 answer when this is a client's connection taken over from aiohttp (its handler returns it)."""
    reader: asyncio.StreamReader
    send: Callable[[bytes], Awaitable[None]]
    close: Callable[[], Awaitable[None]]
    response: web.StreamResponse | None = None


@dataclass
class Answer:
    """The upstream's answer to an upgrade request: on 101 `connection` is the upgraded connection (the caller closes
    it); otherwise `body` holds the answer's body and the connection is already closed."""
    status: int
    reason: str
    headers: CIMultiDict
    body: bytes = b""
    connection: Upgraded | None = None

    @property
    def upgraded(self) -> bool:
        return self.connection is not None


def passed_on(request: web.Request) -> list[tuple[str, str]]:
    """The upgrade negotiation headers of `request`, each value kept (X-Stream-Protocol-Version repeats)."""
    return [(name, value) for name in _PASSED_ON for value in request.headers.getall(name, ())]


async def dial(url: str, method: str, headers: list[tuple[str, str]], *, ssl_context: ssl.SSLContext | None = None,
               timeout: float = 10.0) -> Answer:
    """Send `method url` with `headers` over a new connection (TLS when `ssl_context` is given) and read the answer's
    head, all within `timeout` seconds."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n" + \
        "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                parts.hostname, port, ssl=ssl_context, server_hostname=parts.hostname if ssl_context else None,
                limit=READ_SIZE)
            upgraded = False
            try:
                writer.write(request.encode("latin-1"))
                await writer.drain()
                status, reason, answer_headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
                if status == 101:
                    upgraded = True
                    return Answer(status, reason, answer_headers, connection=from_streams(reader, writer))
                return Answer(status, reason, answer_headers, body=await _read_body(reader, answer_headers))
            finally:
                if not upgraded:
                    writer.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as error:
        raise UpgradeFailed(f"{error or type(error).__name__}") from None


def _parse_head(head: bytes) -> tuple[int, str, CIMultiDict]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers = CIMultiDict()
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
    return int(code), reason, headers


async def _read_body(reader: asyncio.StreamReader, headers: CIMultiDict) -> bytes:
    if "Content-Length" in headers:
        return await reader.readexactly(min(int(headers["Content-Length"]), MAX_ERROR_BODY))
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = b""
        while len(body) < MAX_ERROR_BODY and (size := int((await reader.readline()).split(b";")[0], 16)):
            body += await reader.readexactly(size)
            await reader.readline()
        return body
    return await reader.read(MAX_ERROR_BODY)  # until the connection closes


def from_streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Upgraded:
    """An upgraded connection over asyncio streams (a dialled upstream)."""
    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def close() -> None:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()

    return Upgraded(reader, send, close)


class _Feed:
    """What aiohttp's RequestHandler.set_parser takes (WebSocketResponse installs its reader the same way): every
    byte the client sends after the upgrade goes to `reader`, whose buffer limit pauses the transport."""

    def __init__(self, reader: asyncio.StreamReader):
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


async def switch(request: web.Request, headers) -> Upgraded:
    """Answer `request` with 101 and `headers` and take its connection over from aiohttp. The handler returns the
    result's `response` once done with the connection (after `close()`)."""
    reader = asyncio.StreamReader(limit=READ_SIZE)
    reader.set_transport(request.transport)
    request.protocol.set_parser(_Feed(reader))
    response = web.StreamResponse(status=101, headers=headers)
    response.force_close()
    await response.prepare(request)

    async def close() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await response.write_eof()
        if request.transport is not None:
            request.transport.close()

    return Upgraded(reader, response.write, close, response)


async def relay(request: web.Request, upstream: Answer) -> web.StreamResponse:
    """Relay `upstream`'s answer to `request`: a refusal as it came (status, type, body); a 101 with its headers,
    then the bytes of both connections until either side ends."""
    if not upstream.upgraded:
        return web.Response(status=upstream.status, body=upstream.body,
                            content_type=upstream.headers.get("Content-Type", "text/plain").split(";")[0])
    headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _NOT_RELAYED)
    try:
        client = await switch(request, headers)
    except BaseException:
        await upstream.connection.close()
        raise
    try:
        await splice(chunks(client.reader), client.send, upstream.connection)
    finally:
        await client.close()
    return client.response


async def chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while chunk := await reader.read(READ_SIZE):
        yield chunk


async def splice(incoming: AsyncIterator[bytes], send: Callable[[bytes], Awaitable[None]],
                 upstream: Upgraded) -> None:
    """Copy `incoming` to `upstream` and what `upstream` sends to `send` until either side ends (neither SPDY nor
    WebSocket peers half-close), then close `upstream`."""
    async def up() -> None:
        async for chunk in incoming:
            await upstream.send(chunk)

    async def down() -> None:
        async for chunk in chunks(upstream.reader):
            await send(chunk)

    tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
