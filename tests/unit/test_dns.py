"""kpy-dns against a real listener on loopback, queried with dnspython over UDP and TCP: every record kind of the
Kubernetes DNS specification, NXDOMAIN vs NODATA with the zone's SOA, pod names, ExternalName, truncation, the
rendered-answer cache, and forwarding (none configured, a silent upstream, a real answering one)."""
from __future__ import annotations

import asyncio
import socket
import time

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from prometheus_client import CollectorRegistry

from kpy_components.component.config import ConfigError
from kpy_components.dns import config as dns_config
from kpy_components.dns.answer import Answerer
from kpy_components.dns.forward import Forwarder
from kpy_components.dns.metrics import DNSMetrics
from kpy_components.dns.records import ZoneIndex
from kpy_components.dns.server import Listener, question_end

pytestmark = pytest.mark.anyio
ZONE = "cluster.local"


def service(name: str, namespace: str = "demo", cluster_ip: str | None = "10.96.0.20", ports=(), **spec) -> dict:
    body = {"ports": [dict(p) for p in ports], **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    return {"metadata": {"name": name, "namespace": namespace}, "spec": body}


def endpoint_slice(service_name: str, endpoints: list[tuple[str, str | None, bool]], ports=(), family="IPv4") -> dict:
    """endpoints: (ip, hostname or None, ready)."""
    return {"metadata": {"name": f"{service_name}-x", "namespace": "demo",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": family, "ports": [dict(p) for p in ports],
            "endpoints": [{"addresses": [ip], **({"hostname": host} if host else {}),
                           "conditions": {"ready": ready}} for ip, host, ready in endpoints]}


HTTP = {"name": "http", "port": 80, "protocol": "TCP"}
UNNAMED = {"port": 8080, "protocol": "TCP"}


def populated_index() -> ZoneIndex:
    index = ZoneIndex(ZONE, ttl=30)
    for namespace in ("demo", "default"):
        index.set_namespace(namespace, True)
    index.set_service("demo/web", service("web", ports=[HTTP, UNNAMED]), [])
    index.set_service("demo/dual", service("dual", cluster_ip="10.96.0.21", clusterIPs=["10.96.0.21", "fd00::21"]),
                      [])
    index.set_service("demo/db", service("db", cluster_ip="None", ports=[{"name": "pg", "port": 5432}]),
                      [endpoint_slice("db", [("10.244.1.5", "db-0", True), ("10.244.2.6", None, True),
                                             ("10.244.3.7", "db-2", False)],
                                      ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])])
    index.set_service("demo/empty", service("empty", cluster_ip="None"), [])
    index.set_service("demo/ext", service("ext", cluster_ip=None, type="ExternalName",
                                          externalName="www.example.com"), [])
    index.set_service("demo/alias", service("alias", cluster_ip=None, type="ExternalName",
                                            externalName=f"web.demo.svc.{ZONE}"), [])
    return index


@pytest.fixture
async def serve():
    """serve(index, upstreams=(), timeout=1.0) -> a started Listener on 127.0.0.1 (stopped at the end)."""
    started: list[Listener] = []

    async def start(index: ZoneIndex, upstreams=(), timeout: float = 1.0, cache_size: int = 100) -> Listener:
        metrics = DNSMetrics(CollectorRegistry())
        forwarder = Forwarder(tuple(upstreams), timeout, 100, 3600.0, metrics)
        listener = Listener("127.0.0.1", 0, Answerer(index, forwarder), metrics, cache_size)
        await listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        await listener.stop()


async def ask(listener: Listener, name: str, rdtype: str = "A", tcp: bool = False, **query) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype, **query)
    if tcp:
        return await dns.asyncquery.tcp(message, "127.0.0.1", port=listener.port, timeout=5)
    return await dns.asyncquery.udp(message, "127.0.0.1", port=listener.port, timeout=5, ignore_trailing=True)


def addresses(response: dns.message.Message, rdtype=dns.rdatatype.A) -> set[str]:
    return {rdata.to_text() for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset}


def assert_negative(response: dns.message.Message, rcode: int) -> None:
    assert response.rcode() == rcode
    assert response.answer == []
    assert response.flags & dns.flags.AA
    [soa] = response.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.name == dns.name.from_text(ZONE)


async def test_cluster_ip_service_a_ptr_and_srv(serve):
    listener = await serve(populated_index())
    answer = await ask(listener, f"web.demo.svc.{ZONE}")
    assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AA
    assert addresses(answer) == {"10.96.0.20"}
    assert answer.answer[0].ttl == 30
    ptr = await ask(listener, "20.0.96.10.in-addr.arpa.", "PTR")
    assert addresses(ptr, dns.rdatatype.PTR) == {f"web.demo.svc.{ZONE}."}
    srv = await ask(listener, f"_http._tcp.web.demo.svc.{ZONE}", "SRV")
    assert addresses(srv, dns.rdatatype.SRV) == {f"0 100 80 web.demo.svc.{ZONE}."}
    assert {r.to_text() for rrset in srv.additional if rrset.rdtype == dns.rdatatype.A for r in rrset} == {
        "10.96.0.20"}
    plain = await ask(listener, f"web.demo.svc.{ZONE}", "SRV")  # every port, the unnamed one too
    assert addresses(plain, dns.rdatatype.SRV) == {f"0 100 80 web.demo.svc.{ZONE}.",
                                                    f"0 100 8080 web.demo.svc.{ZONE}."}
    assert_negative(await ask(listener, f"_https._tcp.web.demo.svc.{ZONE}", "SRV"), dns.rcode.NXDOMAIN)


async def test_dual_stack_service_has_a_and_aaaa(serve):
    listener = await serve(populated_index())
    assert addresses(await ask(listener, f"dual.demo.svc.{ZONE}")) == {"10.96.0.21"}
    assert addresses(await ask(listener, f"dual.demo.svc.{ZONE}", "AAAA"), dns.rdatatype.AAAA) == {"fd00::21"}
    ptr = await ask(listener, dns.name.from_text("1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f"
                                                 ".ip6.arpa").to_text(), "PTR")
    assert addresses(ptr, dns.rdatatype.PTR) == {f"dual.demo.svc.{ZONE}."}


async def test_headless_service_ready_endpoints_hostnames_srv_and_ptr(serve):
    listener = await serve(populated_index())
    assert addresses(await ask(listener, f"db.demo.svc.{ZONE}")) == {"10.244.1.5", "10.244.2.6"}  # not db-2
    assert addresses(await ask(listener, f"db-0.db.demo.svc.{ZONE}")) == {"10.244.1.5"}
    assert addresses(await ask(listener, f"10-244-2-6.db.demo.svc.{ZONE}")) == {"10.244.2.6"}
    assert_negative(await ask(listener, f"db-2.db.demo.svc.{ZONE}"), dns.rcode.NXDOMAIN)
    srv = await ask(listener, f"_pg._tcp.db.demo.svc.{ZONE}", "SRV")
    assert addresses(srv, dns.rdatatype.SRV) == {f"0 50 5432 db-0.db.demo.svc.{ZONE}.",
                                                  f"0 50 5432 10-244-2-6.db.demo.svc.{ZONE}."}
    assert {r.to_text() for rrset in srv.additional for r in rrset} == {"10.244.1.5", "10.244.2.6"}
    ptr = await ask(listener, "5.1.244.10.in-addr.arpa.", "PTR")
    assert addresses(ptr, dns.rdatatype.PTR) == {f"db-0.db.demo.svc.{ZONE}."}
    # No ready endpoints: NXDOMAIN, as the specification says.
    assert_negative(await ask(listener, f"empty.demo.svc.{ZONE}"), dns.rcode.NXDOMAIN)


async def test_publish_not_ready_addresses_lists_unready_endpoints():
    index = ZoneIndex(ZONE)
    index.set_service("demo/db", service("db", cluster_ip="None", publishNotReadyAddresses=True),
                      [endpoint_slice("db", [("10.244.3.7", "db-2", False)])])
    result = index.lookup(dns.name.from_text(f"db-2.db.demo.svc.{ZONE}"), dns.rdatatype.A)
    assert [r.to_text() for r in result.answer[0]] == ["10.244.3.7"]


async def test_external_name_is_a_cname(serve):
    listener = await serve(populated_index())
    answer = await ask(listener, f"ext.demo.svc.{ZONE}")
    assert answer.rcode() == dns.rcode.NOERROR
    [cname] = answer.answer
    assert cname.rdtype == dns.rdatatype.CNAME and cname[0].target.to_text() == "www.example.com."
    chased = await ask(listener, f"alias.demo.svc.{ZONE}")  # into the zone: followed
    assert [r.rdtype for r in chased.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert addresses(chased) == {"10.96.0.20"}


async def test_nxdomain_versus_nodata(serve):
    listener = await serve(populated_index())
    assert_negative(await ask(listener, f"nope.demo.svc.{ZONE}"), dns.rcode.NXDOMAIN)
    assert_negative(await ask(listener, f"web.demo.svc.{ZONE}", "AAAA"), dns.rcode.NOERROR)  # name exists
    assert_negative(await ask(listener, f"demo.svc.{ZONE}"), dns.rcode.NOERROR)  # an existing namespace
    assert_negative(await ask(listener, f"ghost.svc.{ZONE}"), dns.rcode.NXDOMAIN)  # no such namespace
    assert_negative(await ask(listener, f"_tcp.web.demo.svc.{ZONE}", "SRV"), dns.rcode.NOERROR)  # non-terminal
    assert_negative(await ask(listener, f"svc.{ZONE}"), dns.rcode.NOERROR)
    # pods' search list: web.demo.svc.cluster.local.demo.svc.cluster.local and friends miss
    assert_negative(await ask(listener, f"web.demo.svc.{ZONE}.demo.svc.{ZONE}"), dns.rcode.NXDOMAIN)


async def test_soa_has_corednss_values(serve):
    index = populated_index()
    listener = await serve(index)
    answer = await ask(listener, ZONE, "SOA")
    [soa] = answer.answer
    rdata = soa[0]
    assert (rdata.mname.to_text(), rdata.rname.to_text()) == (f"ns.dns.{ZONE}.", f"hostmaster.{ZONE}.")
    assert (rdata.refresh, rdata.retry, rdata.expire, rdata.minimum) == (7200, 1800, 86400, 30)
    assert soa.ttl == 30
    serial = rdata.serial
    index.set_service("demo/new", service("new", cluster_ip="10.96.0.99"), [])
    assert (await ask(listener, ZONE, "SOA")).answer[0][0].serial > serial  # the serial moves with the zone
    ns = await ask(listener, ZONE, "NS")
    assert addresses(ns, dns.rdatatype.NS) == {f"ns.dns.{ZONE}."}


async def test_dns_version_txt(serve):
    listener = await serve(populated_index())
    answer = await ask(listener, f"dns-version.{ZONE}", "TXT")
    assert addresses(answer, dns.rdatatype.TXT) == {'"1.1.0"'}


async def test_pod_names_when_the_namespace_exists(serve):
    listener = await serve(populated_index())
    assert addresses(await ask(listener, f"10-244-1-9.demo.pod.{ZONE}")) == {"10.244.1.9"}
    assert addresses(await ask(listener, f"fd00--9.demo.pod.{ZONE}", "AAAA"), dns.rdatatype.AAAA) == {"fd00::9"}
    assert_negative(await ask(listener, f"10-244-1-9.demo.pod.{ZONE}", "AAAA"), dns.rcode.NOERROR)
    assert_negative(await ask(listener, f"10-244-1-9.ghost.pod.{ZONE}"), dns.rcode.NXDOMAIN)
    assert_negative(await ask(listener, f"not-an-ip.demo.pod.{ZONE}"), dns.rcode.NXDOMAIN)
    assert_negative(await ask(listener, f"demo.pod.{ZONE}"), dns.rcode.NOERROR)


async def test_names_match_in_any_case_and_the_question_case_is_echoed(serve):
    listener = await serve(populated_index())
    # rendered for the first; the others from the rendered-answer cache, whether in lower case or not
    for name in (f"WeB.DeMo.SvC.{ZONE.upper()}", f"web.demo.svc.{ZONE}", f"WEB.demo.svc.{ZONE}",
                 f"WeB.DeMo.SvC.{ZONE.upper()}"):
        answer = await ask(listener, name)
        assert addresses(answer) == {"10.96.0.20"}
        assert answer.question[0].name.to_text() == f"{name}."
        assert {rrset.name.to_text() for rrset in answer.answer} == {f"{name}."}
    value = metric_reader(listener)
    assert value("coredns_cache_hits_total", server=listener.server, type="success", zones=".", view="") == 3


async def test_changes_are_answered_at_once_despite_the_cache(serve):
    index = populated_index()
    listener = await serve(index)
    assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.20"}
    assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.20"}
    index.set_service("demo/web", service("web", cluster_ip="10.96.0.77"), [])
    assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.77"}
    index.set_service("demo/web", None, [])
    assert_negative(await ask(listener, f"web.demo.svc.{ZONE}"), dns.rcode.NXDOMAIN)
    # a reverse name the zone no longer knows is not the zone's: forwarded (no upstream here: SERVFAIL)
    assert (await ask(listener, "77.0.96.10.in-addr.arpa.", "PTR")).rcode() == dns.rcode.SERVFAIL


def big_headless_index(count: int) -> ZoneIndex:
    index = ZoneIndex(ZONE)
    index.set_service("demo/big", service("big", cluster_ip="None"),
                      [endpoint_slice("big", [(f"10.244.9.{i}", f"pod-{i}", True) for i in range(1, count + 1)])])
    return index


async def test_udp_answers_over_512_bytes_are_truncated_and_tcp_has_them_all(serve):
    listener = await serve(big_headless_index(60))
    name = f"big.demo.svc.{ZONE}"
    small = await dns.asyncquery.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=listener.port,
                                     timeout=5, raise_on_truncation=False)
    assert small.flags & dns.flags.TC
    assert len(small.to_wire()) <= 512
    full = await ask(listener, name, tcp=True)
    assert not full.flags & dns.flags.TC and len(addresses(full)) == 60
    edns = await ask(listener, name, use_edns=0, payload=4096)  # the client's EDNS size is honoured
    assert not edns.flags & dns.flags.TC and len(addresses(edns)) == 60
    edns_small = await dns.asyncquery.udp(dns.message.make_query(name, "A", use_edns=0, payload=700), "127.0.0.1",
                                          port=listener.port, timeout=5)
    assert edns_small.flags & dns.flags.TC


async def test_no_upstream_is_an_immediate_servfail_saying_why(serve):
    listener = await serve(populated_index())
    started = time.monotonic()
    answer = await ask(listener, "example.com", use_edns=0)
    assert answer.rcode() == dns.rcode.SERVFAIL
    assert time.monotonic() - started < 5  # the query's own timeout: it did answer
    [option] = [o for o in answer.options if o.otype == dns.edns.EDE]
    assert "no upstream resolver" in option.text
    # reverse names outside the index go the same way
    assert (await ask(listener, "4.3.2.1.in-addr.arpa.", "PTR")).rcode() == dns.rcode.SERVFAIL


@pytest.fixture
def silent_upstream():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()


async def test_upstream_timeout_is_a_servfail(serve, silent_upstream):
    listener = await serve(populated_index(), upstreams=[silent_upstream], timeout=0.3)
    answer = await ask(listener, "example.com", use_edns=0)
    assert answer.rcode() == dns.rcode.SERVFAIL
    [option] = [o for o in answer.options if o.otype == dns.edns.EDE]
    assert "timed out" in option.text


class _Upstream(asyncio.DatagramProtocol):
    """A stand-in upstream resolver: example.com A 192.0.2.1 (TTL 60), anything else NXDOMAIN; counts queries."""

    def __init__(self):
        self.queries = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.queries += 1
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        if query.question[0].name == dns.name.from_text("example.com"):
            response.answer.append(dns.rrset.from_text("example.com.", 60, "IN", "A", "192.0.2.1"))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


async def test_forwarded_answers_are_cached(serve):
    loop = asyncio.get_running_loop()
    transport, upstream = await loop.create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
    try:
        listener = await serve(populated_index(), upstreams=[transport.get_extra_info("sockname")])
        first = await ask(listener, "example.com")
        assert addresses(first) == {"192.0.2.1"} and not first.flags & dns.flags.AA
        second = await ask(listener, "EXAMPLE.com")
        assert addresses(second) == {"192.0.2.1"} and second.answer[0].ttl <= 60
        assert upstream.queries == 1
        assert (await ask(listener, "nope.example.com")).rcode() == dns.rcode.NXDOMAIN
    finally:
        transport.close()


async def test_garbage_and_odd_queries(serve):
    listener = await serve(populated_index())
    notify = dns.message.make_query(f"web.demo.svc.{ZONE}", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    answer = await dns.asyncquery.udp(notify, "127.0.0.1", port=listener.port, timeout=5)
    assert answer.rcode() == dns.rcode.NOTIMP
    assert (await ask(listener, ZONE, "AXFR", tcp=True)).rcode() == dns.rcode.REFUSED
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07broken", ("127.0.0.1", listener.port))
        reply = dns.message.from_wire(await asyncio.to_thread(sock.recv, 512))
    assert reply.id == 0x1234 and reply.rcode() == dns.rcode.FORMERR
    assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.20"}  # still serving


async def test_metrics_are_counted_with_corednss_names(serve):
    listener = await serve(populated_index())
    for _ in range(3):
        await ask(listener, f"web.demo.svc.{ZONE}")
    await ask(listener, f"nope.demo.svc.{ZONE}")
    value = metric_reader(listener)
    zone = {"server": listener.server, "zone": ".", "view": ""}
    assert value("coredns_dns_requests_total", **zone, proto="udp", family="1", type="A") == 4
    assert value("coredns_dns_responses_total", **zone, rcode="NXDOMAIN", plugin="kubernetes") == 1
    assert value("coredns_dns_responses_total", **zone, rcode="NOERROR", plugin="kubernetes") == 3
    assert value("coredns_dns_request_duration_seconds_count", **zone, type="A") == 4
    assert value("coredns_dns_request_duration_seconds_bucket", **zone, type="A", le="+Inf") == 4
    assert value("coredns_cache_hits_total", server=listener.server, type="success", zones=".", view="") == 2
    assert value("coredns_cache_misses_total", server=listener.server, zones=".", view="") == 2
    assert value("coredns_cache_entries", server=listener.server, type="success", zones=".", view="") == 2


def metric_reader(listener: Listener):
    """value(sample name, **labels): the sample's value as a scrape of the listener's registry shows it."""
    return lambda name, **labels: listener.metrics.registry.get_sample_value(name, labels)


def test_question_end():
    wire = dns.message.make_query("web.demo", "A").to_wire()
    assert question_end(wire) == len(wire)
    assert question_end(wire[:-1]) is None
    assert question_end(b"\x00" * 12) is None


def test_config_defaults_and_every_problem_at_once(tmp_path):
    assert dns_config.parse({}).listen == (("0.0.0.0", 53),)
    parsed = dns_config.parse({"listen": ["10.0.0.5:53", "[fd00::5]:5353"], "upstreams": ["192.0.2.53"],
                               "upstreamTimeout": "500ms", "clusterDomain": "K8s.Test."})
    assert parsed.listen == (("10.0.0.5", 53), ("fd00::5", 5353))
    assert parsed.upstreams == (("192.0.2.53", 53),) and parsed.upstream_timeout == 0.5
    assert parsed.cluster_domain == "k8s.test"
    with pytest.raises(ConfigError) as caught:
        dns_config.parse({"listen": ["dns.example:53"], "ttl": -1, "upstreamTimeout": "soon", "colour": 1})
    problems = "\n".join(caught.value.problems)
    for field in ("listen[0]", "ttl", "upstreamTimeout", "colour"):
        assert f"{field}:" in problems


async def test_external_name_outside_the_zone_is_followed_through_the_upstream(serve):
    loop = asyncio.get_running_loop()
    transport, upstream = await loop.create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
    try:
        index = populated_index()
        index.set_service("demo/site", service("site", cluster_ip=None, type="ExternalName",
                                               externalName="example.com"), [])
        listener = await serve(index, upstreams=[transport.get_extra_info("sockname")])
        answer = await ask(listener, f"site.demo.svc.{ZONE}")
        assert [r.rdtype for r in answer.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert addresses(answer) == {"192.0.2.1"}
        cname = await ask(listener, f"site.demo.svc.{ZONE}", "CNAME")  # the CNAME itself: not followed
        assert addresses(cname, dns.rdatatype.CNAME) == {"example.com."} and upstream.queries == 1
    finally:
        transport.close()


async def test_cached_answers_outlive_changes_elsewhere_but_not_their_own(serve):
    index = populated_index()
    listener = await serve(index)
    value = metric_reader(listener)

    def hits() -> float:
        return value("coredns_cache_hits_total", server=listener.server, type="success", zones=".", view="")
    for _ in range(2):
        assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.20"}
    assert hits() == 1
    index.set_service("demo/other", service("other", cluster_ip="10.96.0.50"), [])  # churn elsewhere
    assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.20"}
    assert hits() == 2
    index.set_service("demo/web", service("web", cluster_ip="10.96.0.51"), [])  # its own change
    assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.51"}
    # a pod name's answer depends on its namespace (the parent name)
    assert addresses(await ask(listener, f"10-244-1-9.demo.pod.{ZONE}")) == {"10.244.1.9"}
    index.set_namespace("demo", False)
    assert_negative(await ask(listener, f"10-244-1-9.demo.pod.{ZONE}"), dns.rcode.NXDOMAIN)
    # a name that did not exist and comes to exist
    assert_negative(await ask(listener, f"late.demo.svc.{ZONE}"), dns.rcode.NXDOMAIN)
    index.set_service("demo/late", service("late", cluster_ip="10.96.0.52"), [])
    assert addresses(await ask(listener, f"late.demo.svc.{ZONE}")) == {"10.96.0.52"}


async def test_before_the_caches_synced_the_zone_is_a_servfail_not_an_nxdomain(serve):
    index = populated_index()
    index.synced = False
    listener = await serve(index)
    answer = await ask(listener, f"web.demo.svc.{ZONE}", use_edns=0)
    assert answer.rcode() == dns.rcode.SERVFAIL
    assert [o.code for o in answer.options if o.otype == dns.edns.EDE] == [dns.edns.EDECode.NOT_READY]
    index.synced = True
    assert addresses(await ask(listener, f"web.demo.svc.{ZONE}")) == {"10.96.0.20"}


def test_the_binary_refuses_a_bad_config_naming_each_field(tmp_path, capsys):
    from kpy_components.dns import cli
    bad = tmp_path / "dns.yaml"
    bad.write_text("listen: ['nothost:53']\nttl: -3\ncolour: red\n")
    assert cli.main(["--config", str(bad)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"kpy-dns: {bad}: ") for line in lines)
    assert {line.split(": ")[2] for line in lines} == {"colour", "listen[0]", "ttl"}
    assert cli.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_endpoints_follow_their_nodes_readiness():
    from kpy_components.dns.endpoints import judged
    endpoints = [{"addresses": ["10.0.0.1"], "nodeName": "a"}, {"addresses": ["10.0.0.2"], "nodeName": "b"},
                 {"addresses": ["10.0.0.3"], "nodeName": "gone"}, {"addresses": ["10.0.0.4"]}]
    wanted = judged(endpoints, {"a": True, "b": False})
    assert wanted[0] == endpoints[0]  # ready as written (no conditions: ready)
    assert wanted[1]["conditions"] == {"ready": False, "serving": False}
    assert wanted[2:] == endpoints[2:]  # unknown nodes, no node: as the role wrote them
    assert judged(wanted, {"a": True, "b": True})[1]["conditions"] == {"ready": True, "serving": True}
