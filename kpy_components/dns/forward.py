"""Names outside the cluster zone: asked of the configured upstream resolvers, answers cached for their TTL.

Contracts: `resolve` never waits longer than the configured timeout (all upstreams together) and never raises for
an upstream's failure: it returns the upstream's answer, or a SERVFAIL saying why (with an Extended DNS Error when
the client speaks EDNS). With no upstream configured the SERVFAIL is immediate. Upstreams are tried in order, each
with what is left of the timeout; a truncated UDP answer is asked again over TCP. Answers (NOERROR and NXDOMAIN) are
cached for the smallest TTL they carry (negative ones: the SOA's minimum), at most `max_ttl`; served from the
cache, TTLs count down.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict

import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from .config import Address
from .metrics import DNSMetrics

log = logging.getLogger(__name__)
CACHEABLE = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)


def servfail(query: dns.message.Message, reason: str, code: dns.edns.EDECode) -> dns.message.Message:
    """SERVFAIL for `query`, carrying `reason` as an Extended DNS Error (RFC 8914) when the client sent EDNS."""
    response = dns.message.make_response(query, recursion_available=True)
    response.set_rcode(dns.rcode.SERVFAIL)
    if query.edns >= 0:
        response.use_edns(0, payload=1232, options=[dns.edns.EDEOption(code, reason)])
    return response


def _ttl(response: dns.message.Message) -> int:
    ttls = [rrset.ttl for rrset in response.answer]
    if not response.answer:  # negative: the SOA's minimum bounds it (RFC 2308)
        ttls += [min(rrset.ttl, rrset[0].minimum) for rrset in response.authority
                 if rrset.rdtype == dns.rdatatype.SOA]
    return min(ttls, default=0)


class Forwarder:
    def __init__(self, upstreams: tuple[Address, ...], timeout: float, cache_size: int, max_ttl: float,
                 metrics: DNSMetrics | None = None, server: str = ""):
        self.upstreams, self.timeout = upstreams, timeout
        self.cache_size, self.max_ttl = cache_size, max_ttl
        self.metrics, self.server = metrics, server
        self._cache: OrderedDict[tuple, tuple[float, dns.message.Message]] = OrderedDict()

    async def resolve(self, query: dns.message.Message) -> tuple[dns.message.Message, str]:
        """(response, plugin that answered: "cache" or "forward")."""
        question = query.question[0]
        key = (question.name.canonicalize(), question.rdtype, question.rdclass)
        cached = self._from_cache(key, query)
        if cached is not None:
            return cached, "cache"
        if not self.upstreams:
            return servfail(query, f"kpy-dns has no upstream resolver for names outside the cluster zone "
                                   f"({question.name})", dns.edns.EDECode.NOT_SUPPORTED), "forward"
        deadline = time.monotonic() + self.timeout
        problems = []
        for host, port in self.upstreams:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            upstream = f"{host}:{port}"
            if self.metrics:
                self.metrics.forward_requests.labels(upstream).inc()
            try:
                answer = await self._ask(query, host, port, left)
            except (dns.exception.Timeout, TimeoutError):
                problems.append(f"{upstream} timed out")
                continue
            except (OSError, dns.exception.DNSException) as error:
                problems.append(f"{upstream}: {error}")
                continue
            if self.metrics:
                self.metrics.forward_responses.labels(upstream, dns.rcode.to_text(answer.rcode())).inc()
            answer.id = query.id
            self._store(key, answer)
            return answer, "forward"
        reason = "; ".join(problems) or "no time left"
        log.warning("Failed forwarding name=%s type=%s problems=%s", question.name,
                    dns.rdatatype.to_text(question.rdtype), reason)
        return servfail(query, f"upstream resolvers failed within {self.timeout:g}s: {reason}",
                        dns.edns.EDECode.NO_REACHABLE_AUTHORITY), "forward"

    async def _ask(self, query: dns.message.Message, host: str, port: int, timeout: float) -> dns.message.Message:
        outgoing = dns.message.make_query(query.question[0].name, query.question[0].rdtype,
                                          query.question[0].rdclass, use_edns=0, payload=1232)
        outgoing.flags |= dns.flags.RD
        answer = await dns.asyncquery.udp(outgoing, host, timeout=timeout, port=port)
        if answer.flags & dns.flags.TC:
            answer = await dns.asyncquery.tcp(outgoing, host, timeout=timeout, port=port)
        return answer

    def _store(self, key: tuple, answer: dns.message.Message) -> None:
        if self.cache_size <= 0 or answer.rcode() not in CACHEABLE:
            return
        ttl = min(_ttl(answer), self.max_ttl)
        if ttl <= 0:
            return
        self._cache[key] = (time.monotonic() + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _from_cache(self, key: tuple, query: dns.message.Message) -> dns.message.Message | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, answer = entry
        left = int(expires - time.monotonic())
        if left <= 0:
            del self._cache[key]
            return None
        response = dns.message.make_response(query, recursion_available=True)
        response.set_rcode(answer.rcode())
        for source, target in ((answer.answer, response.answer), (answer.authority, response.authority),
                               (answer.additional, response.additional)):
            for rrset in source:
                copy = rrset.copy()
                copy.ttl = min(rrset.ttl, left)
                target.append(copy)
        return response

    def __len__(self) -> int:
        return len(self._cache)
