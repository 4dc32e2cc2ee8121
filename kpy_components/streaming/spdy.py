"""SPDY/3.1 as Kubernetes streams use it, with moby/spdystream (kubectl, the kubelet, containerd's streaming server) as
the peer: frames, header blocks, and a small asyncio connection.

Frames (draft-mbelshe-httpbis-spdy-00 §2.2): a control frame is `1 | version:15 | type:16 | flags:8 | length:24`
then its payload; a data frame is `0 | stream id:31 | flags:8 | length:24` then the data. Header blocks (SYN_STREAM,
SYN_REPLY, HEADERS) are `count:32` then `name length:32, name, value length:32, value` per pair (several values of
one name joined by NUL), deflated with ONE zlib stream per direction of a connection, primed with the spec's
dictionary and sync-flushed at the end of each block: so a Codec encodes and decodes frames in connection order.

Flow control: spdystream neither sends WINDOW_UPDATE nor honours windows, so neither does this module: SETTINGS and
WINDOW_UPDATE are parsed and otherwise ignored.
"""
from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from dataclasses import dataclass, field

from .upgrade import Upgraded

VERSION = 3
FLAG_FIN = 0x01
MAX_LENGTH = (1 << 24) - 1
CHUNK = 32 * 1024  # data frames written at most this long

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6


def _dictionary() -> bytes:
    """The SPDY/3 header dictionary (§2.6.10.1): common names and values, each with a 32-bit length, then a run of
    status codes, reasons, dates and media types. 1423 bytes; zlib checks its Adler-32, so it must be exact."""
    words = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
             "accept-ranges age allow authorization cache-control connection content-base content-encoding "
             "content-language content-length content-location content-md5 content-range content-type date etag "
             "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
             "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
             "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
             "method get status").split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
                                              "keep-alive", "origin"]
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
            "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
            "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3 (wrong version, truncated frame, bad header block)."""


# --- frames ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes = b""
    fin: bool = False


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; several values NUL-joined
    fin: bool = False
    associated_id: int = 0
    priority: int = 0  # 0 (highest) .. 7


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: dict[str, str] = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class Headers:
    stream_id: int
    headers: dict[str, str] = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int = CANCEL


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)
    clear: bool = False


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int = 0
    status: int = 0  # 0 OK, 1 PROTOCOL_ERROR, 2 INTERNAL_ERROR


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = Data | SynStream | SynReply | Headers | RstStream | Settings | Ping | GoAway | WindowUpdate


class Codec:
    """Encodes and decodes the frames of one connection, in its order (the header zlib streams carry state)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            return struct.pack(">II", frame.stream_id & 0x7FFFFFFF,
                               (FLAG_FIN if frame.fin else 0) << 24 | len(frame.data)) + frame.data
        flags = 1 if getattr(frame, "fin", False) or getattr(frame, "clear", False) else 0
        match frame:
            case SynStream():
                kind, payload = SYN_STREAM, struct.pack(">IIBB", frame.stream_id, frame.associated_id,
                                                        frame.priority << 5, 0) + self._block(frame.headers)
            case SynReply():
                kind, payload = SYN_REPLY, struct.pack(">I", frame.stream_id) + self._block(frame.headers)
            case Headers():
                kind, payload = HEADERS, struct.pack(">I", frame.stream_id) + self._block(frame.headers)
            case RstStream():
                kind, payload = RST_STREAM, struct.pack(">II", frame.stream_id, frame.status)
            case Settings():
                kind, payload = SETTINGS, struct.pack(">I", len(frame.entries)) + b"".join(
                    struct.pack(">II", flags_ << 24 | id_, value) for flags_, id_, value in frame.entries)
            case Ping():
                kind, payload = PING, struct.pack(">I", frame.id)
            case GoAway():
                kind, payload = GOAWAY, struct.pack(">II", frame.last_stream_id, frame.status)
            case WindowUpdate():
                kind, payload = WINDOW_UPDATE, struct.pack(">II", frame.stream_id, frame.delta)
            case _:
                raise TypeError(f"not a SPDY frame: {frame!r}")
        return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(payload)) + payload

    def decode(self, head: bytes, payload: bytes) -> Frame | None:
        """The frame whose 8-byte head and payload these are; None for a control frame type SPDY/3 does not define
        (ignored, as the spec asks)."""
        first, second = struct.unpack(">II", head)
        flags, fin = second >> 24, bool(second >> 24 & FLAG_FIN)
        if not first & 0x80000000:
            return Data(first & 0x7FFFFFFF, payload, fin)
        version, kind = first >> 16 & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version} is not supported (only {VERSION})")
        try:
            if kind == SYN_STREAM:
                stream_id, associated, priority = struct.unpack_from(">IIB", payload)
                return SynStream(stream_id & 0x7FFFFFFF, self._headers(payload[10:]), fin,
                                 associated & 0x7FFFFFFF, priority >> 5)
            if kind in (SYN_REPLY, HEADERS):
                (stream_id,) = struct.unpack_from(">I", payload)
                return (SynReply if kind == SYN_REPLY else Headers)(stream_id & 0x7FFFFFFF,
                                                                    self._headers(payload[4:]), fin)
            if kind == RST_STREAM:
                stream_id, status = struct.unpack_from(">II", payload)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            if kind == SETTINGS:
                (count,) = struct.unpack_from(">I", payload)
                entries = tuple((word >> 24, word & 0xFFFFFF, value) for word, value in
                                (struct.unpack_from(">II", payload, 4 + 8 * i) for i in range(count)))
                return Settings(entries, bool(flags & 1))
            if kind == PING:
                return Ping(struct.unpack_from(">I", payload)[0])
            if kind == GOAWAY:
                last, status = struct.unpack_from(">II", payload) if len(payload) >= 8 else \
                    (struct.unpack_from(">I", payload)[0], 0)  # SPDY/2-style GOAWAY without a status
                return GoAway(last & 0x7FFFFFFF, status)
            if kind == WINDOW_UPDATE:
                stream_id, delta = struct.unpack_from(">II", payload)
                return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error:
            raise ProtocolError(f"SPDY control frame type {kind} is truncated ({len(payload)} bytes)") from None
        return None

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            name_bytes, value_bytes = name.lower().encode(), value.encode()
            raw += struct.pack(">I", len(name_bytes)) + name_bytes + struct.pack(">I", len(value_bytes)) + value_bytes
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _headers(self, compressed: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(compressed)
        except zlib.error as error:
            raise ProtocolError(f"SPDY header block does not inflate: {error}") from None
        try:
            (count,), offset, headers = struct.unpack_from(">I", raw), 4, {}
            for _ in range(count):
                (size,) = struct.unpack_from(">I", raw, offset)
                name, offset = raw[offset + 4:offset + 4 + size].decode(), offset + 4 + size
                (size,) = struct.unpack_from(">I", raw, offset)
                headers[name], offset = raw[offset + 4:offset + 4 + size].decode(), offset + 4 + size
        except (struct.error, UnicodeDecodeError) as error:
            raise ProtocolError(f"SPDY header block is malformed: {error}") from None
        return headers


async def read_frame(reader: asyncio.StreamReader, codec: Codec) -> Frame | None:
    """The next frame from `reader` (undefined control frame types skipped); None at a clean end of the stream."""
    while True:
        try:
            head = await reader.readexactly(8)
        except asyncio.IncompleteReadError as partial:
            if partial.partial:
                raise ProtocolError("SPDY connection ended inside a frame header") from None
            return None
        try:
            payload = await reader.readexactly(struct.unpack(">I", head[4:])[0] & MAX_LENGTH)
        except asyncio.IncompleteReadError:
            raise ProtocolError("SPDY connection ended inside a frame") from None
        frame = codec.decode(head, payload)
        if frame is not None:
            return frame


# --- connection --------------------------------------------------------------------------------------------------
class Stream:
    """One SPDY stream. `read()` returns the peer's data in order and b"" once the peer finished (FIN), reset it or
    the connection ended; `write`/`close` (half-close with FIN)/`reset` send."""

    def __init__(self, connection: Connection, stream_id: int, headers: dict[str, str]):
        self.connection, self.id, self.headers = connection, stream_id, headers
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_done = False
        self.local_done = False

    async def read(self) -> bytes:
        data = await self._incoming.get()
        if not data:
            self._incoming.put_nowait(b"")  # every later read sees the end too
        return data

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            await self.connection.send(Data(self.id, data[start:start + CHUNK]))

    async def reply(self, headers: dict[str, str] | None = None) -> None:
        await self.connection.send(SynReply(self.id, headers or {}))

    async def close(self) -> None:
        if not self.local_done:
            self.local_done = True
            await self.connection.send(Data(self.id, b"", fin=True))

    async def reset(self, status: int = CANCEL) -> None:
        self.local_done = True
        self._end()
        await self.connection.send(RstStream(self.id, status))

    def _receive(self, data: bytes, fin: bool) -> None:
        if self.remote_done:
            return
        if data:
            self._incoming.put_nowait(data)
        if fin:
            self._end()

    def _end(self) -> None:
        if not self.remote_done:
            self.remote_done = True
            self._incoming.put_nowait(b"")


class Connection:
    """An SPDY/3.1 session over an upgraded byte stream. Run `serve()` (it reads until the peer closes); open streams
    with `open()` (client side, odd ids) or take the peer's with `accept()` (server side, even ids are ours).
    Pings from the peer are echoed; a GOAWAY stops `accept()`; the end of the connection ends every stream."""

    def __init__(self, connection: Upgraded, *, client: bool):
        self._connection, self._client = connection, client
        self._codec = Codec()
        self._lock = asyncio.Lock()  # frames are encoded and written one at a time, in order
        self._next_id = 1 if client else 2
        self.streams: dict[int, Stream] = {}
        self._accepted: asyncio.Queue[Stream | None] = asyncio.Queue()
        self.done = asyncio.Event()  # set once the peer's side ended
        self.closed = False  # our side

    async def send(self, frame: Frame) -> None:
        async with self._lock:
            if self.closed:
                raise ConnectionResetError("the SPDY connection is closed")
            await self._connection.send(self._codec.encode(frame))

    async def open(self, headers: dict[str, str], *, fin: bool = False) -> Stream:
        stream = Stream(self, self._next_id, headers)
        self._next_id += 2
        self.streams[stream.id] = stream
        stream.local_done = fin
        await self.send(SynStream(stream.id, headers, fin))
        return stream

    async def accept(self) -> Stream | None:
        """The next stream the peer opened (not yet replied to), or None once the peer went away."""
        stream = await self._accepted.get()
        if stream is None:
            self._accepted.put_nowait(None)  # every later accept sees the end too
        return stream

    async def serve(self) -> None:
        """Read and dispatch frames until the connection ends (or breaks), then end every stream."""
        try:
            while (frame := await read_frame(self._connection.reader, self._codec)) is not None:
                await self._dispatch(frame)
        except (ProtocolError, ConnectionError, OSError):
            pass
        finally:
            for stream in self.streams.values():
                stream._end()
            self._accepted.put_nowait(None)
            self.done.set()

    async def _dispatch(self, frame: Frame) -> None:
        match frame:
            case Data() | SynReply() | Headers():
                stream = self.streams.get(frame.stream_id)
                if stream is not None:
                    stream._receive(frame.data if isinstance(frame, Data) else b"", frame.fin)
            case SynStream():
                stream = Stream(self, frame.stream_id, frame.headers)
                self.streams[stream.id] = stream
                if frame.fin:
                    stream._end()
                self._accepted.put_nowait(stream)
            case RstStream():
                stream = self.streams.get(frame.stream_id)
                if stream is not None:
                    stream.local_done = True
                    stream._end()
            case Ping() if frame.id % 2 != (1 if self._client else 0):  # the peer's ping: echo it
                await self.send(frame)
            case GoAway():
                self._accepted.put_nowait(None)

    async def close(self) -> None:
        """Say GOAWAY (best effort) and close the underlying connection."""
        if self.closed:
            return
        with contextlib.suppress(ConnectionError, OSError):
            await self.send(GoAway(max((i for i in self.streams if i % 2 != self._next_id % 2), default=0)))
        self.closed = True
        await self._connection.close()
