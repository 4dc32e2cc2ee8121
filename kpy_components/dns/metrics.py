"""kpy-dns's Prometheus metrics, with CoreDNS's names and labels (plugin/metrics, plugin/cache, plugin/forward), so
dashboards and alerts made for CoreDNS read them unchanged. `view` is always "" (kpy-dns has no views)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# CoreDNS: prometheus.ExponentialBuckets(0.00025, 2, 16)
DURATION_BUCKETS = tuple(0.00025 * 2 ** i for i in range(16))


class DNSMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter("coredns_dns_requests", "Counter of DNS requests made per zone, protocol and family.",
                                ["server", "zone", "view", "proto", "family", "type"], registry=registry)
        self.responses = Counter("coredns_dns_responses", "Counter of response status codes.",
                                 ["server", "zone", "view", "rcode", "plugin"], registry=registry)
        self.duration = Histogram("coredns_dns_request_duration_seconds", "Histogram of the time (in seconds) each "
                                  "request took per zone.", ["server", "zone", "view", "type"],
                                  buckets=DURATION_BUCKETS, registry=registry)
        self.cache_hits = Counter("coredns_cache_hits", "The count of cache hits.", ["server", "type", "zones",
                                  "view"], registry=registry)
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
