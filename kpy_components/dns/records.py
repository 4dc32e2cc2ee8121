"""The cluster zone as an index of names, per the Kubernetes DNS specification (schema 1.1.0):

    <svc>.<ns>.svc.<zone>                  A/AAAA ClusterIPs; headless: ready endpoints' IPs; ExternalName: CNAME
    <hostname>.<svc>.<ns>.svc.<zone>       A/AAAA of a headless Service's ready endpoint (hostname, else its
                                           address with dashes, as CoreDNS names them)
    _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV for each named port (and <svc>.<ns>.svc.<zone> SRV for every port)
    <reversed IP>.in-addr.arpa / ip6.arpa  PTR for ClusterIPs and headless endpoints
    <a-b-c-d>.<ns>.pod.<zone>              A of that address when the namespace exists (CoreDNS `pods insecure`)
    dns-version.<zone>                     TXT "1.1.0"; the apex has SOA and NS (ns.dns.<zone>), as CoreDNS's

Contract: `set_service` and `set_namespace` are called by the watch feed (feed.py) on every change; they recompute
the records one Service contributes and swap them in. `lookup` reads dicts only: the hot negative path (pods'
search list makes most lookups miss) is a join of the query's labels and one or two dict misses.

For caches of rendered answers: `generation` counts changes, and `fresh(key, since)` says whether the answer for a
name, rendered at generation `since`, still stands: neither the name (nor, for a pod name, its namespace) was
touched since. Whatever makes a name exist or not touches it (its records, or names below it); every record of a
changed Service is touched, so SRV answers and their additional addresses go stale together. (A cached negative
answer keeps the SOA serial it was rendered with, as CoreDNS's cache does.)

Records are kept as text, keyed by the owner's lowercased name (bytes, "web.demo.svc.cluster.local."), and
refcounted per (owner, type, text): two Services may contribute the same PTR. dnspython RRsets (whose rdata hash by
rendering themselves: costly) are built only when a name is asked for, once per change of that name, so indexing
10,000 Services costs string work only.
"""
from __future__ import annotations

import functools
import ipaddress
import time
from collections import Counter
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

SCHEMA_VERSION = "1.1.0"
IN = dns.rdataclass.IN
A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT, ANY = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME,
                                             dns.rdatatype.NS, dns.rdatatype.PTR, dns.rdatatype.SOA,
                                             dns.rdatatype.SRV, dns.rdatatype.TXT, dns.rdatatype.ANY)
# CoreDNS's SOA timers for the kubernetes plugin (plugin/backend_lookup.go); the SOA's own TTL is min(ttl, 300).
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, SOA_TTL_CAP = 7200, 1800, 86400, 300
NOERROR, NXDOMAIN = 0, 3

Record = tuple[bytes, int, str]  # (owner key, type, rdata text)


@dataclass
class Result:
    """What the zone says about (name, type): rcode, answer and additional RRsets; `authoritative` False means the
    name is not the index's to answer (a reverse name it does not know: forward it)."""
    rcode: int = NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    authoritative: bool = True

    @property
    def negative(self) -> bool:
        return self.rcode == NXDOMAIN or not self.answer


@functools.lru_cache(maxsize=1 << 16)
def _rdata(rdtype: int, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, rdtype, text)


def key_of(name: dns.name.Name) -> bytes:
    """The index key of a name: its labels joined with dots, lowercased ("web.demo.svc.cluster.local.")."""
    return b".".join(name.labels).lower()


def _address(ip: str) -> tuple[int, str] | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return (A if address.version == 4 else AAAA), str(address)


def _reverse(ip: str) -> bytes:
    return key_of(dns.reversename.from_address(ip))


def dashed(ip: str) -> str:
    """The label CoreDNS gives an address: 10.1.2.3 -> 10-1-2-3, fd00::1 -> fd00--1."""
    return ip.replace(".", "-").replace(":", "-")


class ZoneIndex:
    def __init__(self, zone: str = "cluster.local", ttl: int = 30):
        self.zone = dns.name.from_text(zone).canonicalize()
        self.zone_key = key_of(self.zone)
        self._suffix = b"." + self.zone_key
        self.ttl = ttl
        self.generation = 0
        self.synced = True  # False while the feed has not listed everything yet: the zone is not answered then
        self._touched: dict[bytes, int] = {}  # name -> generation of its last change
        self._floor = 0  # answers rendered before this generation are stale (the touched map was pruned)
        self.serial = int(time.time())
        self._pod_suffix = b".pod" + self._suffix
        self._refs: dict[bytes, dict[int, Counter]] = {}  # owner -> type -> rdata text -> references
        self._rrsets: dict[tuple[bytes, int], dns.rrset.RRset] = {}  # built on demand, dropped on change
        self._nonterminals: Counter = Counter()  # in-zone names that exist only because names below them do
        self._by_owner: dict[str, tuple[list[Record], list[bytes]]] = {}  # "svc:<ns>/<name>", "ns:<name>"
        self.namespaces: set[bytes] = set()
        self._soa: tuple[int, dns.rrset.RRset] | None = None
        self._swap("static", [(self.zone_key, NS, f"ns.dns.{self.zone}"),
                              (b"dns-version" + self._suffix, TXT, f'"{SCHEMA_VERSION}"')], [])

    # --- feeding (watch events) ----------------------------------------------------------------------------------
    def set_service(self, key: str, service: dict | None, slices: list[dict]) -> None:
        """Replace the records of Service `key` (namespace/name) with those of `service` and its EndpointSlices
        (None: the Service is gone)."""
        records = service_records(self.zone_key, service, slices) if service else []
        self._swap(f"svc:{key}", records, [])

    def set_namespace(self, name: str, exists: bool) -> None:
        """A namespace makes <ns>.svc.<zone> and <ns>.pod.<zone> exist (NODATA rather than NXDOMAIN)."""
        label = name.lower().encode()
        if exists:
            self.namespaces.add(label)
        else:
            self.namespaces.discard(label)
        names = [label + b".svc" + self._suffix, label + self._pod_suffix] if exists else []
        self._swap(f"ns:{name}", [], names)

    def _swap(self, owner: str, records: list[Record], nonterminals: list[bytes]) -> None:
        old_records, old_names = self._by_owner.pop(owner, ([], []))
        if (records, nonterminals) != (old_records, old_names):
            self.generation += 1
            for name, rdtype, text in old_records:
                self._unref(name, rdtype, text)
            for name in old_names:
                self._unmark(name)
            for name, rdtype, text in records:
                self._ref(name, rdtype, text)
            for name in nonterminals:
                self._mark(name)
            self.serial = max(self.serial + 1, int(time.time()))
            self._touched[self.zone_key] = self.generation  # the apex's SOA carries the serial
        if records or nonterminals:
            self._by_owner[owner] = (records, nonterminals)
        if len(self._touched) > 4 * len(self._refs) + 10_000:  # names long gone: forget them, and every answer
            self._touched.clear()
            self._floor = self.generation + 1
            self.generation += 1

    def fresh(self, key: bytes, since: int) -> bool:
        """Whether an answer about `key` rendered at generation `since` still stands: the name was not touched
        since (nor, for a pod name, its namespace's <ns>.pod name)."""
        touched = self._touched
        if since < self._floor or touched.get(key, -1) > since:
            return False
        return not key.endswith(self._pod_suffix) or touched.get(key.partition(b".")[2], -1) <= since

    def _ref(self, name: bytes, rdtype: int, text: str) -> None:
        types = self._refs.get(name)
        if types is None:
            types = self._refs[name] = {}
            self._mark(self._parent(name))
        types.setdefault(rdtype, Counter())[text] += 1
        self._rrsets.pop((name, rdtype), None)
        self._touched[name] = self.generation

    def _unref(self, name: bytes, rdtype: int, text: str) -> None:
        types = self._refs[name]
        counts = types[rdtype]
        counts[text] -= 1
        if counts[text] <= 0:
            del counts[text]
        if not counts:
            del types[rdtype]
        if not types:
            del self._refs[name]
            self._unmark(self._parent(name))
        self._rrsets.pop((name, rdtype), None)
        self._touched[name] = self.generation

    def _parent(self, name: bytes) -> bytes:
        return name.split(b".", 1)[1] if name != self.zone_key else b""

    def _mark(self, name: bytes) -> None:
        """Count `name` and its ancestors below the apex as existing (non-terminals, unless they have records)."""
        while name.endswith(self._suffix):
            self._nonterminals[name] += 1
            self._touched[name] = self.generation
            name = self._parent(name)

    def _unmark(self, name: bytes) -> None:
        while name.endswith(self._suffix):
            self._nonterminals[name] -= 1
            if self._nonterminals[name] <= 0:
                del self._nonterminals[name]
            self._touched[name] = self.generation
            name = self._parent(name)

    # --- answering -----------------------------------------------------------------------------------------------
    @property
    def soa(self) -> dns.rrset.RRset:
        """The zone's SOA (serial: the time of the last change), for the authority section of negative answers."""
        if self._soa is None or self._soa[0] != self.generation:
            soa = _rdata(SOA, f"ns.dns.{self.zone} hostmaster.{self.zone} {self.serial} {SOA_REFRESH} {SOA_RETRY} "
                              f"{SOA_EXPIRE} {self.ttl}")
            self._soa = (self.generation, dns.rrset.from_rdata_list(self.zone, min(self.ttl, SOA_TTL_CAP), [soa]))
        return self._soa[1]

    def in_zone(self, name: dns.name.Name) -> bool:
        key = key_of(name)
        return key == self.zone_key or key.endswith(self._suffix)

    def lookup(self, qname: dns.name.Name, qtype: int) -> Result:
        key = key_of(qname)
        types = self._refs.get(key)
        if types is not None:
            return self._positive(key, qtype, types)
        if not key.endswith(self._suffix):
            return Result(authoritative=False)
        if key in self._nonterminals:
            return Result()
        if key.endswith(self._pod_suffix):
            pod = self._pod_address(key)
            if pod is not None:
                if qtype in (pod[0], ANY):
                    return Result(answer=[dns.rrset.from_rdata_list(qname, self.ttl, [_rdata(*pod)])])
                return Result()
        return Result(rcode=NXDOMAIN)

    def rrset(self, key: bytes, rdtype: int) -> dns.rrset.RRset | None:
        """The RRset at (owner, type), built once per change."""
        rrset = self._rrsets.get((key, rdtype))
        if rrset is None:
            counts = self._refs.get(key, {}).get(rdtype)
            if not counts:
                return None
            rrset = dns.rrset.from_rdata_list(dns.name.from_text(key.decode()), self.ttl,
                                              [_rdata(rdtype, text) for text in counts])
            self._rrsets[(key, rdtype)] = rrset
        return rrset

    def _positive(self, key: bytes, qtype: int, types: dict[int, Counter]) -> Result:
        apex = key == self.zone_key
        if qtype == ANY:
            return Result(answer=[self.rrset(key, rdtype) for rdtype in types] + ([self.soa] if apex else []))
        if apex and qtype == SOA:
            return Result(answer=[self.soa])
        if qtype in types:
            rrset = self.rrset(key, qtype)
            return Result(answer=[rrset], additional=self._additional(rrset) if qtype == SRV else [])
        if CNAME not in types:
            return Result()  # NODATA
        cname = self.rrset(key, CNAME)
        result = Result(answer=[cname])
        target = key_of(cname[0].target)
        if target.endswith(self._suffix) and target != key and target in self._refs:  # into the zone: follow once
            result.answer += [r for r in self._positive(target, qtype, self._refs[target]).answer
                              if r.rdtype != CNAME]
        return result

    def _additional(self, srv: dns.rrset.RRset) -> list[dns.rrset.RRset]:
        extra = []
        for target in dict.fromkeys(key_of(rdata.target) for rdata in srv):
            for rdtype in (A, AAAA):
                rrset = self.rrset(target, rdtype)
                if rrset is not None:
                    extra.append(rrset)
        return extra

    def _pod_address(self, key: bytes) -> tuple[int, str] | None:
        """<a-b-c-d>.<ns>.pod.<zone> (or IPv6 with dashes for colons) when <ns> exists."""
        parts = key[:-len(self._pod_suffix)].split(b".")
        if len(parts) != 2 or parts[1] not in self.namespaces:
            return None
        label = parts[0].decode("ascii", "replace")
        text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else label.replace("-", ":")
        return _address(text)


# --- what one Service contributes ----------------------------------------------------------------------------------
def service_records(zone: bytes, service: dict, slices: list[dict]) -> list[Record]:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    base = f"{meta['name']}.{meta['namespace']}.svc.{zone.decode()}".lower()
    if spec.get("type") == "ExternalName":
        external = (spec.get("externalName") or "").rstrip(".").lower()
        return [(base.encode(), CNAME, f"{external}.")] if external else []
    cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None"]
    if cluster_ips:
        return _cluster_ip_records(base, cluster_ips, spec.get("ports") or [])
    return _headless_records(base, *_ready_endpoints(slices, bool(spec.get("publishNotReadyAddresses"))))


def _cluster_ip_records(base: str, ips: list[str], ports: list[dict]) -> list[Record]:
    records: list[Record] = []
    for ip in ips:
        address = _address(ip)
        if address is not None:
            records.append((base.encode(), *address))
            records.append((_reverse(ip), PTR, base))
    named = [(p.get("name"), (p.get("protocol") or "TCP").lower(), p.get("port")) for p in ports if p.get("port")]
    return records + _srv(base, named, [base])


def _ready_endpoints(slices: list[dict], publish_not_ready: bool) -> tuple[list[tuple[str, str]], list[tuple]]:
    """([(hostname, ip)], [(port name, proto, number)]) of the Service's ready endpoints across its slices."""
    endpoints: dict[tuple[str, str], None] = {}
    ports: dict[tuple, None] = {}
    for slice_ in slices:
        if slice_.get("addressType") not in ("IPv4", "IPv6"):
            continue
        for endpoint in slice_.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            if ready is False and not publish_not_ready:
                continue
            for ip in endpoint.get("addresses") or []:
                endpoints[((endpoint.get("hostname") or dashed(ip)).lower(), ip)] = None
        for port in slice_.get("ports") or []:
            if port.get("port"):
                ports[(port.get("name"), (port.get("protocol") or "TCP").lower(), port["port"])] = None
    return list(endpoints), list(ports)


def _headless_records(base: str, endpoints: list[tuple[str, str]], ports: list[tuple]) -> list[Record]:
    records: list[Record] = []
    targets: dict[str, None] = {}
    for hostname, ip in endpoints:
        address = _address(ip)
        if address is None:
            continue
        host = f"{hostname}.{base}"
        targets[host] = None
        records.append((base.encode(), *address))
        records.append((host.encode(), *address))
        records.append((_reverse(ip), PTR, host))
    if targets:
        records += _srv(base, ports, list(targets))
    return records


def _srv(base: str, ports: list[tuple], targets: list[str]) -> list[Record]:
    """SRV at _<port>._<proto>.<base> for named ports and at <base> for every port, one per target; weights split
    100 over the targets as CoreDNS does (at least 1)."""
    weight = max(1, 100 // max(1, len(targets)))
    records: list[Record] = []
    for name, proto, number in ports:
        for target in targets:
            text = f"0 {weight} {number} {target}"
            records.append((base.encode(), SRV, text))
            if name:
                records.append((f"_{name.lower()}._{proto}.{base}".encode(), SRV, text))
    return records
