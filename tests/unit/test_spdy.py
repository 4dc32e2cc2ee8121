"""SPDY/3.1 framing and session (kpy_components.streaming.spdy): the wire layout of each frame kind, header blocks
compressed with one zlib stream per direction and the spec's dictionary, and a client and a server session talking
over a real socket pair."""
from __future__ import annotations

import asyncio
import socket
import struct
import zlib

import pytest

from kpy_components.streaming import spdy
from kpy_components.streaming.upgrade import from_streams

EVERY_KIND = [
    spdy.SynStream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}, priority=2),
    spdy.SynStream(3, {"streamtype": "stdin"}, fin=True, associated_id=1),
    spdy.SynReply(1, {}),
    spdy.SynReply(3, {"x-note": "a\x00b"}, fin=True),
    spdy.Headers(1, {"streamtype": "error"}, fin=True),
    spdy.Data(1, b"hello"),
    spdy.Data(3, b"", fin=True),
    spdy.RstStream(5, spdy.CANCEL),
    spdy.Settings(((0, 7, 65536), (1, 4, 100)), clear=True),
    spdy.Ping(2),
    spdy.GoAway(5, 0),
    spdy.WindowUpdate(1, 4096),
]


def _split(wire: bytes) -> list[tuple[bytes, bytes]]:
    """The (head, payload) of each frame in `wire`."""
    frames, offset = [], 0
    while offset < len(wire):
        length = struct.unpack(">I", wire[offset + 4:offset + 8])[0] & spdy.MAX_LENGTH
        frames.append((wire[offset:offset + 8], wire[offset + 8:offset + 8 + length]))
        offset += 8 + length
    return frames


def test_the_dictionary_is_the_specs():
    # 1423 bytes, and the Adler-32 that a zlib stream primed with it names (DICTID) in every SPDY/3 implementation.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_every_frame_kind_round_trips_in_connection_order():
    sender, receiver = spdy.Codec(), spdy.Codec()
    wire = b"".join(sender.encode(frame) for frame in EVERY_KIND)
    assert [receiver.decode(head, payload) for head, payload in _split(wire)] == EVERY_KIND


def test_header_blocks_share_one_zlib_stream_per_direction():
    """The second block refers back to the first (same names): only the receiver that inflated the first frame
    can read the second."""
    sender = spdy.Codec()
    first = sender.encode(spdy.SynStream(1, {"streamtype": "stdout"}))
    second = sender.encode(spdy.SynStream(3, {"streamtype": "stdout"}))
    assert len(second) < len(first)  # compressed against the first block
    in_order = spdy.Codec()
    in_order.decode(first[:8], first[8:])
    assert in_order.decode(second[:8], second[8:]).headers == {"streamtype": "stdout"}
    with pytest.raises(spdy.ProtocolError):
        spdy.Codec().decode(second[:8], second[8:])


def test_reads_a_header_block_another_implementation_compressed():
    # A SYN_STREAM as node-spdy's tests record it: compressed by zlib with the SPDY/3 dictionary (DICTID e3c6a7c2).
    wire = bytes.fromhex("800300010000002c0000000100000000000078f9e3c6a7c202e50e507ab442a45a77d7105006"
                         "b32a4804974d8cfa00000000ffff")
    assert spdy.Codec().decode(wire[:8], wire[8:]) == spdy.SynStream(1, {":method": "GET", ":path": "/"})


def test_wire_layout_of_data_and_control_frames():
    codec = spdy.Codec()
    assert codec.encode(spdy.Data(1, b"hi", fin=True)) == bytes.fromhex("00000001" "01000002") + b"hi"
    assert codec.encode(spdy.Ping(7)) == bytes.fromhex("80030006" "00000004" "00000007")
    assert codec.encode(spdy.RstStream(3, spdy.CANCEL)) == bytes.fromhex("80030003" "00000008" "00000003" "00000005")
    assert codec.encode(spdy.GoAway(1)) == bytes.fromhex("80030007" "00000008" "00000001" "00000000")


def test_other_versions_are_refused_and_undefined_types_skipped():
    codec = spdy.Codec()
    with pytest.raises(spdy.ProtocolError, match="version 2"):
        codec.decode(bytes.fromhex("80020006" "00000004"), b"\x00\x00\x00\x01")
    assert codec.decode(bytes.fromhex("8003000a" "00000000"), b"") is None  # CREDENTIAL-like: ignored


@pytest.fixture
async def sockets():
    """Two ends of a real connected socket pair, as asyncio streams: ((reader, writer), (reader, writer))."""
    left, right = socket.socketpair()
    a = await asyncio.open_connection(sock=left)
    b = await asyncio.open_connection(sock=right)
    yield a, b
    for _, writer in (a, b):
        writer.close()


async def _read_raw(reader: asyncio.StreamReader, codec: spdy.Codec) -> spdy.Frame:
    async with asyncio.timeout(10):
        return await spdy.read_frame(reader, codec)


@pytest.mark.anyio
async def test_client_and_server_sessions_exchange_streams(sockets):
    (client_reader, client_writer), (server_reader, server_writer) = sockets
    client = spdy.Connection(from_streams(client_reader, client_writer), client=True)
    server = spdy.Connection(from_streams(server_reader, server_writer), client=False)
    tasks = [asyncio.ensure_future(client.serve()), asyncio.ensure_future(server.serve())]
    try:
        async with asyncio.timeout(10):
            error = await client.open({"streamtype": "error"})
            stdin = await client.open({"streamtype": "stdin"})
            await stdin.write(b"ping")
            await stdin.close()
            accepted = [await server.accept(), await server.accept()]
            assert [(s.id, s.headers) for s in accepted] == [(1, {"streamtype": "error"}), (3, {"streamtype": "stdin"})]
            for stream in accepted:
                await stream.reply()
            assert await accepted[1].read() == b"ping"
            assert await accepted[1].read() == b""  # FIN
            await accepted[0].write(b"x" * (spdy.CHUNK + 10))  # more than one data frame
            await accepted[0].reset()
            received = b""
            while chunk := await error.read():
                received += chunk
            assert received == b"x" * (spdy.CHUNK + 10)
            await server.close()
            assert await client.accept() is None  # GOAWAY, then the end of the connection
            await client.done.wait()
            assert await stdin.read() == b""
    finally:
        for task in tasks:
            task.cancel()


@pytest.fixture
async def served(sockets):
    """A server session being served on one end, and the raw other end: (session, reader, writer)."""
    (raw_reader, raw_writer), (reader, writer) = sockets
    server = spdy.Connection(from_streams(reader, writer), client=False)
    serving = asyncio.ensure_future(server.serve())
    yield server, raw_reader, raw_writer
    serving.cancel()


@pytest.mark.anyio
async def test_the_peers_pings_are_echoed_and_ours_are_not(served):
    _, raw_reader, raw_writer = served
    raw = spdy.Codec()
    raw_writer.write(raw.encode(spdy.Ping(1)) + raw.encode(spdy.Ping(2)) + raw.encode(spdy.Ping(3)))
    assert await _read_raw(raw_reader, raw) == spdy.Ping(1)  # a client's (odd) ping: echoed
    assert await _read_raw(raw_reader, raw) == spdy.Ping(3)  # 2 is the server's own: an answer, not echoed


@pytest.mark.anyio
async def test_the_end_of_the_connection_ends_every_stream(served):
    server, _, raw_writer = served
    raw = spdy.Codec()
    raw_writer.write(raw.encode(spdy.SynStream(1, {"streamtype": "data"})) + raw.encode(spdy.Data(1, b"part")))
    async with asyncio.timeout(10):
        stream = await server.accept()
        assert await stream.read() == b"part"
        raw_writer.close()
        assert await stream.read() == b""
        await server.done.wait()
        assert await server.accept() is None
