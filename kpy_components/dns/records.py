"""The cluster zone as an index of names, per the Kubernetes DNS specification (schema 1.1.0):

    <svc>.<ns>.svc.<zone>                  A/AAAA ClusterIPs; headless: ready endpoints' IPs; ExternalName: CNAME
    <hostname>.<svc>.<ns>.svc.<zone>       A/AAAA of a headless Service's ready endpoint (hostname, else its
                                           address with dashes, as CoreDNS names them)
    _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV for each named port (and <svc>.<ns>.svc.<zone> SRV for every port)
    <reversed IP>.in-addr.arpa / ip6.arpa  PTR for ClusterIPs and headless endpoints
    <a-b-c-d>.<ns>.pod.<zone>              A of that address when the namespace exists (CoreDNS `pods insecure`)
    dns-version.<zone>                     TXT "1.1.0"; the apex has SOA and NS (ns.dns.<zone>), as CoreDNS's

Contract: `set_service` and `set_namespace` are called by the watch feed (feed.py) on every change; they recompute
the records one Service contributes and swap them in, so `lookup` is dict reads only: the hot negative path (pods'
search list makes most lookups miss) is one or two dict misses. `generation` changes with every change, for caches
of rendered answers. Records are refcounted per (name, type, rdata): two Services may contribute the same PTR.
Names are stored lowercased (dnspython's Name compares case-insensitively, so queries in any case match).
"""
from __future__ import annotations

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

Record = tuple[dns.name.Name, int, dns.rdata.Rdata]


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


def _rdata(rdtype: int, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, rdtype, text)


def _address_record(ip: str) -> tuple[int, dns.rdata.Rdata] | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return (A if address.version == 4 else AAAA), _rdata(A if address.version == 4 else AAAA, str(address))


def dashed(ip: str) -> str:
    """The label CoreDNS gives an address: 10.1.2.3 -> 10-1-2-3, fd00::1 -> fd00--1."""
    return ip.replace(".", "-").replace(":", "-")


class ZoneIndex:
    def __init__(self, zone: str = "cluster.local", ttl: int = 30):
        self.zone = dns.name.from_text(zone).canonicalize()
        self.ttl = ttl
        self.generation = 0
        self.serial = int(time.time())
        self._svc = dns.name.from_text("svc", self.zone)
        self._pod = dns.name.from_text("pod", self.zone)
        self._nsname = dns.name.from_text("ns.dns", self.zone)
        self._refs: dict[dns.name.Name, dict[int, Counter]] = {}  # name -> type -> rdata -> references
        self._rrsets: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}  # what lookup reads
        self._nonterminals: Counter = Counter()  # in-zone names that exist only because names below them do
        self._by_owner: dict[str, list[Record]] = {}  # "svc:<ns>/<name>" or "ns:<name>" -> its records
        self.namespaces: set[str] = set()
        self._static()

    # --- feeding (watch events) ----------------------------------------------------------------------------------
    def set_service(self, key: str, service: dict | None, slices: list[dict]) -> None:
        """Replace the records of Service `key` (namespace/name) with those of `service` and its EndpointSlices
        (None: the Service is gone)."""
        records = service_records(self.zone, service, slices) if service else []
        self._swap(f"svc:{key}", records, [])

    def set_namespace(self, name: str, exists: bool) -> None:
        """A namespace makes <ns>.svc.<zone> and <ns>.pod.<zone> exist (NODATA rather than NXDOMAIN)."""
        names = [dns.name.from_text(name, self._svc), dns.name.from_text(name, self._pod)] if exists else []
        if exists:
            self.namespaces.add(name.lower())
        else:
            self.namespaces.discard(name.lower())
        self._swap(f"ns:{name}", [], names)

    def _swap(self, owner: str, records: list[Record], nonterminals: list[dns.name.Name]) -> None:
        old = self._by_owner.pop(owner, [])
        old_names = [r for r in old if r[1] is None]
        old_records = [r for r in old if r[1] is not None]
        new = [*records, *((name, None, None) for name in nonterminals)]
        if new == old:
            self._by_owner[owner] = new
            return
        touched: set[tuple[dns.name.Name, int]] = set()
        for name, rdtype, rdata in old_records:
            self._unref(name, rdtype, rdata)
            touched.add((name, rdtype))
        for name, _, _ in old_names:
            self._unmark(name)
        for name, rdtype, rdata in records:
            self._ref(name, rdtype, rdata)
            touched.add((name, rdtype))
        for name in nonterminals:
            self._mark(name)
        if new:
            self._by_owner[owner] = new
        for name, rdtype in touched:
            self._rebuild(name, rdtype)
        self._changed()

    def _ref(self, name: dns.name.Name, rdtype: int, rdata: dns.rdata.Rdata) -> None:
        types = self._refs.get(name)
        if types is None:
            types = self._refs[name] = {}
            if name.is_subdomain(self.zone):
                self._mark(name.parent())
        types.setdefault(rdtype, Counter())[rdata] += 1

    def _unref(self, name: dns.name.Name, rdtype: int, rdata: dns.rdata.Rdata) -> None:
        types = self._refs[name]
        counts = types[rdtype]
        counts[rdata] -= 1
        if counts[rdata] <= 0:
            del counts[rdata]
        if not counts:
            del types[rdtype]
        if not types:
            del self._refs[name]
            if name.is_subdomain(self.zone):
                self._unmark(name.parent())

    def _mark(self, name: dns.name.Name) -> None:
        """Count `name` and its ancestors (below the apex) as existing non-terminals."""
        while name != self.zone and name.is_subdomain(self.zone):
            self._nonterminals[name] += 1
            name = name.parent()

    def _unmark(self, name: dns.name.Name) -> None:
        while name != self.zone and name.is_subdomain(self.zone):
            self._nonterminals[name] -= 1
            if self._nonterminals[name] <= 0:
                del self._nonterminals[name]
            name = name.parent()

    def _rebuild(self, name: dns.name.Name, rdtype: int) -> None:
        counts = self._refs.get(name, {}).get(rdtype)
        sets = self._rrsets.setdefault(name, {})
        if counts:
            sets[rdtype] = dns.rrset.from_rdata_list(name, self.ttl, list(counts))
        else:
            sets.pop(rdtype, None)
            if not sets:
                del self._rrsets[name]

    def _changed(self) -> None:
        self.generation += 1
        self.serial = max(self.serial + 1, int(time.time()))
        self._soa = self._soa_rrset()

    def _static(self) -> None:
        txt = dns.name.from_text("dns-version", self.zone)
        self._swap("static", [(self.zone, NS, _rdata(NS, self._nsname.to_text())),
                              (txt, TXT, _rdata(TXT, f'"{SCHEMA_VERSION}"'))], [])

    def _soa_rrset(self) -> dns.rrset.RRset:
        soa = _rdata(SOA, f"{self._nsname} hostmaster.{self.zone} {self.serial} {SOA_REFRESH} {SOA_RETRY} "
                          f"{SOA_EXPIRE} {self.ttl}")
        return dns.rrset.from_rdata_list(self.zone, min(self.ttl, SOA_TTL_CAP), [soa])

    # --- answering -----------------------------------------------------------------------------------------------
    @property
    def soa(self) -> dns.rrset.RRset:
        """The zone's SOA, for the authority section of negative answers."""
        return self._soa

    def in_zone(self, name: dns.name.Name) -> bool:
        return name.is_subdomain(self.zone)

    def lookup(self, qname: dns.name.Name, qtype: int) -> Result:
        sets = self._rrsets.get(qname)
        if sets is None and qname == self.zone:
            sets = {}
        if sets is not None:
            if qname == self.zone and qtype in (SOA, ANY):
                sets = {**sets, SOA: self._soa}
            return self._positive(qname, qtype, sets)
        if not self.in_zone(qname):
            return Result(authoritative=False)
        if qname in self._nonterminals:
            return Result()
        pod = self._pod_address(qname)
        if pod is not None:
            rdtype, rdata = pod
            if qtype in (rdtype, ANY):
                return Result(answer=[dns.rrset.from_rdata_list(qname, self.ttl, [rdata])])
            return Result()
        return Result(rcode=NXDOMAIN)

    def _positive(self, qname: dns.name.Name, qtype: int, sets: dict[int, dns.rrset.RRset]) -> Result:
        if qtype == ANY:
            return Result(answer=list(sets.values()))
        rrset = sets.get(qtype)
        if rrset is not None:
            return Result(answer=[rrset], additional=self._additional(rrset) if qtype == SRV else [])
        cname = sets.get(CNAME)
        if cname is None:
            return Result()  # NODATA
        result = Result(answer=[cname])
        target = cname[0].target.canonicalize()
        if self.in_zone(target) and target != qname:  # ExternalName pointing into the zone: chase it once
            chased = self.lookup(target, qtype)
            result.answer += [r for r in chased.answer if r.rdtype != CNAME]
        return result

    def _additional(self, srv: dns.rrset.RRset) -> list[dns.rrset.RRset]:
        extra, seen = [], set()
        for rdata in srv:
            target = rdata.target.canonicalize()
            if target in seen:
                continue
            seen.add(target)
            for rdtype in (A, AAAA):
                rrset = self._rrsets.get(target, {}).get(rdtype)
                if rrset is not None:
                    extra.append(rrset)
        return extra

    def _pod_address(self, qname: dns.name.Name) -> tuple[int, dns.rdata.Rdata] | None:
        """<a-b-c-d>.<ns>.pod.<zone> (or IPv6 with dashes for colons) when <ns> exists."""
        if len(qname) != len(self._pod) + 2 or qname.parent().parent() != self._pod:
            return None
        label, namespace = (part.decode("ascii", "replace").lower() for part in qname.labels[:2])
        if namespace not in self.namespaces:
            return None
        text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else label.replace("-", ":")
        return _address_record(text)


# --- what one Service contributes ----------------------------------------------------------------------------------
def service_records(zone: dns.name.Name, service: dict, slices: list[dict]) -> list[Record]:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    base = dns.name.from_text(f"{meta['name']}.{meta['namespace']}.svc", zone).canonicalize()
    if spec.get("type") == "ExternalName":
        external = (spec.get("externalName") or "").rstrip(".")
        return [(base, CNAME, _rdata(CNAME, f"{external}."))] if external else []
    cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None"]
    if cluster_ips:
        return _cluster_ip_records(base, cluster_ips, spec.get("ports") or [])
    return _headless_records(base, _ready_endpoints(slices, bool(spec.get("publishNotReadyAddresses"))))


def _cluster_ip_records(base: dns.name.Name, ips: list[str], ports: list[dict]) -> list[Record]:
    records: list[Record] = []
    for ip in ips:
        address = _address_record(ip)
        if address is not None:
            records.append((base, *address))
            records.append((dns.reversename.from_address(ip), PTR, _rdata(PTR, base.to_text())))
    named = [(p.get("name"), (p.get("protocol") or "TCP").lower(), p.get("port")) for p in ports if p.get("port")]
    records += _srv(base, named, [base])
    return records


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
                endpoints[(endpoint.get("hostname") or dashed(ip), ip)] = None
        for port in slice_.get("ports") or []:
            if port.get("port"):
                ports[(port.get("name"), (port.get("protocol") or "TCP").lower(), port["port"])] = None
    return list(endpoints), list(ports)


def _headless_records(base: dns.name.Name, ready: tuple[list[tuple[str, str]], list[tuple]]) -> list[Record]:
    endpoints, ports = ready
    records: list[Record] = []
    targets = []
    for hostname, ip in endpoints:
        address = _address_record(ip)
        if address is None:
            continue
        host = dns.name.from_text(hostname.lower(), base)
        targets.append(host)
        records.append((base, *address))
        records.append((host, *address))
        records.append((dns.reversename.from_address(ip), PTR, _rdata(PTR, host.to_text())))
    if targets:
        records += _srv(base, ports, list(dict.fromkeys(targets)))
    return records


def _srv(base: dns.name.Name, ports: list[tuple], targets: list[dns.name.Name]) -> list[Record]:
    """SRV at _<port>._<proto>.<base> for named ports and at <base> for every port, one per target; weights split
    100 over the targets as CoreDNS does (at least 1)."""
    weight = max(1, 100 // max(1, len(targets)))
    records: list[Record] = []
    for name, proto, number in ports:
        for target in targets:
            rdata = _rdata(SRV, f"0 {weight} {number} {target}")
            records.append((base, SRV, rdata))
            if name:
                records.append((dns.name.from_text(f"_{name.lower()}._{proto}", base), SRV, rdata))
    return records
