"""From a query's wire bytes to a response (dnspython parses and renders everything here).

- the cluster zone, and reverse names of ClusterIPs and headless endpoints: answered from the ZoneIndex, with the
  AA bit; negative answers (NXDOMAIN, NODATA) carry the zone's SOA in the authority section;
- any other name: the Forwarder (upstream resolvers, their cached answers, or a SERVFAIL saying why);
- not a standard query: NOTIMP; not one question or undecodable: FORMERR; zone transfers and non-IN classes:
  REFUSED.
UDP answers larger than 512 bytes, or than the client's EDNS payload size, are cut at an RRset boundary with the TC
bit set, so the client asks again over TCP.
"""
from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from .forward import Forwarder
from .records import Result, ZoneIndex, key_of

OUR_PAYLOAD = 1232  # the EDNS payload size we announce (DNS flag day 2020)
UDP_MIN = 512
_REFUSED_TYPES = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}


@dataclass
class Reply:
    wire: bytes
    rcode: int
    qtype: str  # for metrics: "A", "AAAA", ... ("other" when there was no question)
    plugin: str  # who answered: "kubernetes", "forward", "cache" (upstream answers), "" (errors)
    cacheable: bool  # the same query gets the same bytes while ZoneIndex.fresh(name, generation)
    negative: bool  # NXDOMAIN or NODATA
    name: bytes = b""  # the zone answer's index key
    generation: int = -1  # the zone's generation it was rendered at


def udp_limit(query: dns.message.Message) -> int:
    return max(UDP_MIN, query.payload) if query.edns >= 0 else UDP_MIN


def render(response: dns.message.Message, limit: int | None) -> bytes:
    """Wire bytes, truncated with TC set beyond `limit` bytes (None: TCP, no limit but the 64 KiB frame)."""
    return response.to_wire(max_size=limit or 65535, prefer_truncation=True)


def _error(wire: bytes, rcode: int) -> bytes | None:
    """A bare header answering an undecodable query (None if not even a header came)."""
    if len(wire) < 12:
        return None
    response = dns.message.Message(int.from_bytes(wire[:2], "big"))
    response.flags = dns.flags.QR | (int.from_bytes(wire[2:4], "big") & (dns.flags.RD | 0x7800))
    response.set_rcode(rcode)
    return response.to_wire()


class Answerer:
    def __init__(self, index: ZoneIndex, forwarder: Forwarder):
        self.index, self.forwarder = index, forwarder

    def parse(self, wire: bytes) -> dns.message.Message | Reply | None:
        """The query, or the error Reply to send at once (None: not even a header, drop it)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.message.ShortHeader:
            return None
        except dns.exception.DNSException:
            error = _error(wire, dns.rcode.FORMERR)
            return None if error is None else Reply(error, dns.rcode.FORMERR, "other", "", False, False)
        if query.flags & dns.flags.QR:
            return None  # a response sent to us: never answer it (reflection loops)
        if query.opcode() != dns.opcode.QUERY:
            return self._reply(query, dns.rcode.NOTIMP, None)
        if len(query.question) != 1:
            return self._reply(query, dns.rcode.FORMERR, None)
        question = query.question[0]
        if question.rdtype in _REFUSED_TYPES or question.rdclass != dns.rdataclass.IN:
            return self._reply(query, dns.rcode.REFUSED, None)
        return query

    def local(self, query: dns.message.Message, limit: int | None) -> Reply | Awaitable[Reply] | None:
        """The zone's answer; an awaitable of it when an ExternalName's target outside the zone must be asked of
        the upstreams (CoreDNS does the same); None when the name is not the zone's (forward it)."""
        question = query.question[0]
        if not self.index.synced and self.index.in_zone(question.name):
            # as CoreDNS's kubernetes plugin: an empty zone would answer NXDOMAIN, which clients cache
            return self._reply(query, dns.rcode.SERVFAIL, limit, (dns.edns.EDECode.NOT_READY, "kpy-dns has not "
                               "synced its caches with the API server yet"))
        result = self.index.lookup(question.name, question.rdtype)
        if not result.authoritative:
            return None
        last = result.answer[-1] if result.answer else None
        if (last is not None and last.rdtype == dns.rdatatype.CNAME and self.forwarder.upstreams
                and question.rdtype not in (dns.rdatatype.CNAME, dns.rdatatype.ANY)
                and not self.index.in_zone(last[0].target)):
            return self._chase(query, result, last[0].target, limit)
        return self._render(query, result, limit, cacheable=True)

    async def _chase(self, query: dns.message.Message, result: Result, target: dns.name.Name,
                     limit: int | None) -> Reply:
        asked = dns.message.make_query(target, query.question[0].rdtype)
        response, _ = await self.forwarder.resolve(asked)
        result.answer += response.answer
        return self._render(query, result, limit, cacheable=False)

    def _render(self, query: dns.message.Message, result: Result, limit: int | None, cacheable: bool) -> Reply:
        response = dns.message.make_response(query, recursion_available=True, our_payload=OUR_PAYLOAD)
        response.flags |= dns.flags.AA
        response.set_rcode(result.rcode)
        response.answer = list(result.answer)
        response.additional = list(result.additional)
        if result.negative:
            response.authority = [self.index.soa]
        # an answer through a CNAME depends on its target too: not kept
        cacheable = cacheable and not any(rrset.rdtype == dns.rdatatype.CNAME for rrset in result.answer)
        return Reply(render(response, limit), result.rcode, dns.rdatatype.to_text(query.question[0].rdtype),
                     "kubernetes", cacheable, result.negative, key_of(query.question[0].name), self.index.generation)

    async def forward(self, query: dns.message.Message, limit: int | None) -> Reply:
        response, plugin = await self.forwarder.resolve(query)
        if query.edns < 0 and response.edns >= 0:
            response.use_edns(False)  # never send EDNS to a client that did not
        rcode = response.rcode()
        return Reply(render(response, limit), rcode, dns.rdatatype.to_text(query.question[0].rdtype), plugin,
                     False, rcode == dns.rcode.NXDOMAIN or not response.answer)

    def _reply(self, query: dns.message.Message, rcode: int, limit: int | None,
               error: tuple[dns.edns.EDECode, str] | None = None) -> Reply:
        response = dns.message.make_response(query, recursion_available=True, our_payload=OUR_PAYLOAD)
        response.set_rcode(rcode)
        if error is not None and query.edns >= 0:
            response.use_edns(0, payload=OUR_PAYLOAD, options=[dns.edns.EDEOption(*error)])
        qtype = dns.rdatatype.to_text(query.question[0].rdtype) if query.question else "other"
        return Reply(render(response, limit), rcode, qtype, "", False, False)
