"""kpy-dns's Prometheus metrics, with CoreDNS's names and labels (plugin/metrics, plugin/cache, plugin/forward), so
dashboards and alerts made for CoreDNS read them unchanged. `view` is always "" (kpy-dns has no views).

Per-query metrics (requests, responses, request duration, cache hits) are tallied in plain lists, one per label
combination, and turned into metric families only when scraped (QueryTallies, a prometheus_client Collector):
counting a cached answer through prometheus_client's locked Counter and Histogram children cost ~2 us, more than
the rest of the answer. Only the event loop's thread writes the tallies; a scrape reads them.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

ZONE_LABEL = "."  # the zone label of every metric: kpy-dns is one server block, `.:53` in Corefile terms
# CoreDNS: prometheus.ExponentialBuckets(0.00025, 2, 16)
DURATION_BUCKETS = tuple(0.00025 * 2 ** i for i in range(16))
_LE = [floatToGoString(bound) for bound in DURATION_BUCKETS] + ["+Inf"]

# A tally: [queries, seconds in total, then queries per duration bucket (the last one past every bound)]
Tally = list
COUNT, SECONDS, BUCKETS = 0, 1, 2


def count(tally: Tally, seconds: float) -> None:
    """One query answered in `seconds`."""
    tally[COUNT] += 1
    tally[SECONDS] += seconds
    tally[BUCKETS + bisect_left(DURATION_BUCKETS, seconds)] += 1


class QueryTallies(Collector):
    """coredns_dns_requests_total, coredns_dns_responses_total, coredns_dns_request_duration_seconds and
    coredns_cache_hits_total from one tally per (server, proto, family, type, rcode, plugin, cache hit type)."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str, str, str, str, str, str], Tally] = {}

    def tally(self, server: str, proto: str, family: str, qtype: str, rcode: str, plugin: str,
              hit: str = "") -> Tally:
        """The tally of queries with these labels; `hit` is the cache entry's type ("success", "denial") for
        answers from the cache, "" otherwise. Keep it: the same labels always give the same list."""
        key = (server, proto, family, qtype, rcode, plugin, hit)
        found = self._tallies.get(key)
        if found is None:
            found = self._tallies[key] = [0, 0.0] + [0] * len(_LE)
        return found

    def _families(self) -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily,
                                 CounterMetricFamily]:
        return (CounterMetricFamily("coredns_dns_requests", "Counter of DNS requests made per zone, protocol and "
                                    "family.", labels=["server", "zone", "view", "proto", "family", "type"]),
                CounterMetricFamily("coredns_dns_responses", "Counter of response status codes.",
                                    labels=["server", "zone", "view", "rcode", "plugin"]),
                HistogramMetricFamily("coredns_dns_request_duration_seconds", "Histogram of the time (in seconds) "
                                      "each request took per zone.", labels=["server", "zone", "view", "type"]),
                CounterMetricFamily("coredns_cache_hits", "The count of cache hits.",
                                    labels=["server", "type", "zones", "view"]))

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        requests, responses, duration, hits = (defaultdict(int) for _ in range(4))
        for (server, proto, family, qtype, rcode, plugin, hit), tally in list(self._tallies.items()):
            tally = list(tally)  # one consistent reading
            requests[server, proto, family, qtype] += tally[COUNT]
            responses[server, rcode, plugin] += tally[COUNT]
            if hit:
                hits[server, hit] += tally[COUNT]
            into = duration.setdefault((server, qtype), [0.0] * (1 + len(_LE)))  # seconds, then per bound
            into[0] += tally[SECONDS]
            below = 0
            for i, queries in enumerate(tally[BUCKETS:], 1):  # cumulative: queries up to each bound, +Inf last
                below += queries
                into[i] += below
        requests_f, responses_f, duration_f, hits_f = self._families()
        for (server, proto, family, qtype), value in requests.items():
            requests_f.add_metric([server, ZONE_LABEL, "", proto, family, qtype], value)
        for (server, rcode, plugin), value in responses.items():
            responses_f.add_metric([server, ZONE_LABEL, "", rcode, plugin], value)
        for (server, qtype), into in duration.items():
            duration_f.add_metric([server, ZONE_LABEL, "", qtype], list(zip(_LE, into[1:])), into[0])
        for (server, hit), value in hits.items():
            hits_f.add_metric([server, hit, ZONE_LABEL, ""], value)
        return iter((requests_f, responses_f, duration_f, hits_f))


class DNSMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.queries = QueryTallies()
        registry.register(self.queries)
        self.cache_misses = Counter("coredns_cache_misses", "The count of cache misses.", ["server", "zones", "view"],
                                    registry=registry)
        self.cache_entries = Gauge("coredns_cache_entries", "The number of elements in the cache.",
                                   ["server", "type", "zones", "view"], registry=registry)
        self.forward_requests = Counter("coredns_forward_requests", "Counter of requests made per upstream.",
                                        ["to"], registry=registry)
        self.forward_responses = Counter("coredns_forward_responses", "Counter of responses received per upstream.",
                                         ["to", "rcode"], registry=registry)
        self.build_info = Gauge("coredns_build_info", "A metric with a constant '1' value labeled by version, "
                                "revision, and goversion from which CoreDNS was built.",
                                ["version", "revision", "goversion"], registry=registry)
