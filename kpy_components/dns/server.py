"""DNS over UDP and TCP on asyncio (one Listener per configured address), with an answer cache in front.

The answer cache: rendering a response with dnspython costs ~200 us, far above CoreDNS's ~60 us per query per core.
So a zone answer, once rendered, is kept per transport by the query's own bytes after the ID (flags, question in
lower case, EDNS record: everything that decides the answer) with its question in lower case, and sent again with
the query's ID and question bytes (so the case a resolver chose is echoed). A query already in lower case (what stub
resolvers send) is its own key, byte for byte: one slice and one dict look-up answer it. An entry stands while its
name is unchanged in the zone (ZoneIndex.fresh), so churn elsewhere in the cluster does not cool it. Only the zone's
own answers are kept here (upstream answers have their TTL-bound cache in forward.py). Like CoreDNS's cache plugin
it is bounded (cacheSize entries, oldest out first) and counted in coredns_cache_hits/misses_total. Every answer is
counted in a plain tally (metrics.QueryTallies), which a scrape turns into CoreDNS's per-query metrics.

Contract: nothing a client sends makes a listener raise; an unanswerable datagram is dropped, a TCP connection
that sends garbage or idles `TCP_IDLE` seconds is closed.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable

import dns.rcode

from .answer import Answerer, Reply, udp_limit
from .metrics import ZONE_LABEL, DNSMetrics, count
from .records import ZoneIndex

log = logging.getLogger(__name__)
TCP_IDLE = 10.0  # seconds a TCP connection may wait between queries (CoreDNS's default idle timeout)
PORT_ATTEMPTS = 20  # for port 0: free UDP ports whose TCP twin may be taken
UDP_BATCH = 64  # datagrams answered per event-loop wake-up at most, so TCP and the watches get their turn


def question_end(wire: bytes) -> int | None:
    """Offset just past the one question of a plain query, or None. The name ends at the first zero byte: a zero
    byte inside a label could only make the case-folded part of a cache key shorter, never make two different
    queries share a key, and the question bytes spliced into a cached answer are always the query's own."""
    if len(wire) < 17 or wire[4:6] != b"\x00\x01":
        return None
    end = wire.find(b"\x00", 12) + 5
    return end if 16 < end <= len(wire) else None


def normal_key(wire: bytes, end: int) -> bytes:
    """The answer cache's key of a query whose question ends at `end`: its bytes after the ID, question in lower
    case."""
    return wire[2:12] + wire[12:end].lower() + wire[end:]


class Listener:
    def __init__(self, host: str, port: int, answerer: Answerer, metrics: DNSMetrics, cache_size: int):
        self.host, self.port = host, port
        self.answerer, self.metrics, self.cache_size = answerer, metrics, cache_size
        self.index: ZoneIndex = answerer.index
        self.family = "2" if ":" in host else "1"
        self.server = f"dns://{f'[{host}]' if ':' in host else host}:{port}"
        self._caches: dict[str, dict[bytes, tuple]] = {"udp": {}, "tcp": {}}  # by transport: UDP answers truncate
        self._udp: socket.socket | None = None
        self._pending: set[asyncio.Task] = set()
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()
        metrics.cache_entries.labels(self.server, "success", ZONE_LABEL, "").set_function(self._entries)
        self._misses = metrics.cache_misses.labels(self.server, ZONE_LABEL, "")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if self.family == "2" else socket.AF_INET
        wanted = self.port
        for attempt in range(PORT_ATTEMPTS):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp.setblocking(False)
                udp.bind((self.host, wanted))
                port = udp.getsockname()[1]  # port 0 (tests): TCP serves the port UDP was given
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port, family=family,
                                                       reuse_address=True)
            except OSError as error:
                udp.close()
                if wanted != 0 or error.errno != errno.EADDRINUSE or attempt == PORT_ATTEMPTS - 1:
                    raise
                continue  # that port's TCP side is taken: another free port
            break
        self._udp, self.port = udp, port
        loop.add_reader(udp.fileno(), self._read_udp)
        log.info("Serving DNS address=%s port=%d protocols=udp,tcp", self.host, self.port)

    async def stop(self) -> None:
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._tcp.wait_closed()

    # --- UDP: the socket read straight from the event loop -------------------------------------------------------
    def _read_udp(self) -> None:
        """Answer up to UDP_BATCH waiting datagrams per wake-up. A plain reader instead of asyncio's datagram
        transport: one event-loop turn per batch rather than per query (a third of the CPU per cached answer under
        load). A full send buffer drops the answer, as any UDP server does; the client asks again."""
        receive, send = self._udp.recvfrom, self._udp.sendto
        for _ in range(UDP_BATCH):
            try:
                data, peer = receive(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # an ICMP error for an earlier answer: nothing to do
                log.debug("UDP receive error: %s", error)
                continue
            started = time.perf_counter()
            try:
                reply = self.cached(data, "udp", started)
                if reply is not None:
                    send(reply, peer)
                    continue
                pending = self.answer(data, "udp", started, lambda out, peer=peer: self._send_udp(out, peer))
            except OSError as error:
                log.debug("UDP send error: %s", error)
                continue
            except Exception:  # a bug must cost one answer, never the listener
                log.exception("Failed answering a query from=%s", peer[0])
                continue
            if pending is not None:
                self._pending.add(pending)
                pending.add_done_callback(self._pending.discard)

    def _send_udp(self, data: bytes, peer: tuple) -> None:
        try:
            self._udp.sendto(data, peer)
        except OSError as error:
            log.debug("UDP send error: %s", error)

    # --- answering -----------------------------------------------------------------------------------------------
    def _entries(self) -> int:
        return sum(len(cache) for cache in self._caches.values())

    def cached(self, wire: bytes, proto: str, started: float) -> bytes | None:
        """The cached answer to `wire` (ID and question case set), counted; None on a miss."""
        cache = self._caches[proto]
        entry = cache.get(wire[2:])  # a query in lower case is its own key
        if entry is not None and (entry[2] == self.index.generation or self._revalidate(cache, wire[2:], entry)):
            count(entry[3], time.perf_counter() - started)
            return wire[:2] + entry[0][2:]
        end = question_end(wire)
        if end is None:
            return None
        key = normal_key(wire, end)
        entry = cache.get(key)
        if entry is None or (entry[2] != self.index.generation and not self._revalidate(cache, key, entry)):
            self._misses.inc()
            return None
        body = entry[0]
        count(entry[3], time.perf_counter() - started)
        return wire[:2] + body[2:12] + wire[12:end] + body[end:]

    def _revalidate(self, cache: dict[bytes, tuple], key: bytes, entry: tuple) -> bool:
        """Whether an entry rendered before the zone's last change still stands; if so it is marked as of now (the
        next hits skip the check until the zone changes again), if not it goes."""
        body, name, since, tally = entry
        if not self.index.fresh(name, since):
            del cache[key]
            return False
        cache[key] = (body, name, self.index.generation, tally)
        return True

    def answer(self, wire: bytes, proto: str, started: float, send: Callable[[bytes], None]) -> asyncio.Task | None:
        """Answer `wire` through `send`: at once for the zone, from a task when an upstream must be asked."""
        parsed = self.answerer.parse(wire)
        if parsed is None:
            return None
        if isinstance(parsed, Reply):
            self._done(parsed, proto, started, send)
            return None
        limit = udp_limit(parsed) if proto == "udp" else None
        reply = self.answerer.local(parsed, limit)
        if isinstance(reply, Reply):
            self._done(reply, proto, started, send, wire)
            return None
        pending = reply if reply is not None else self.answerer.forward(parsed, limit)

        async def later() -> None:
            self._done(await pending, proto, started, send)
        return asyncio.create_task(later())

    def _done(self, reply: Reply, proto: str, started: float, send: Callable[[bytes], None],
              query: bytes | None = None) -> None:
        labels = (self.server, proto, self.family, reply.qtype, dns.rcode.to_text(reply.rcode), reply.plugin)
        count(self.metrics.queries.tally(*labels), time.perf_counter() - started)
        send(reply.wire)
        if reply.cacheable and query is not None and self.cache_size > 0:
            end = question_end(query)
            if end is None:
                return
            hits = self.metrics.queries.tally(*labels, "denial" if reply.negative else "success")
            cache = self._caches[proto]
            if self._entries() >= self.cache_size:
                fullest = max(self._caches.values(), key=len)
                del fullest[next(iter(fullest))]
            body = reply.wire[:12] + reply.wire[12:end].lower() + reply.wire[end:]
            cache[normal_key(query, end)] = (body, reply.name, reply.generation, hits)

    # --- TCP -----------------------------------------------------------------------------------------------------
    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)

        def send(data: bytes) -> None:
            writer.write(len(data).to_bytes(2, "big") + data)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    wire = await reader.readexactly(size)
                started = time.perf_counter()
                reply = self.cached(wire, "tcp", started)
                if reply is not None:
                    send(reply)
                else:
                    pending = self.answer(wire, "tcp", started, send)
                    if pending is not None:
                        await pending
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
