"""kpy-proxy's metrics, under kube-proxy's names (pkg/proxy/metrics); the rule count is by kind of nft object, as
iptables mode's `kubeproxy_sync_proxy_rules_iptables_total` is by table."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# kube-proxy's buckets: 1 ms doubling up to about 16 s.
SYNC_BUCKETS = tuple(0.001 * 2 ** n for n in range(15))


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry):
        def histogram(name: str, what: str) -> Histogram:
            return Histogram(name, what, buckets=SYNC_BUCKETS, registry=registry)

        self.sync_duration = histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                       "SyncProxyRules latency in seconds")
        self.full_sync_duration = histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                            "SyncProxyRules latency in seconds for full resyncs")
        self.partial_sync_duration = histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                               "SyncProxyRules latency in seconds for partial resyncs")
        self.last_sync = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                               "The last time proxy rules were successfully synced", registry=registry)
        self.last_queued = Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                                 "The last time a sync of proxy rules was queued", registry=registry)
        self.objects = Gauge("kubeproxy_sync_proxy_rules_nftables_total",
                             "Number of nftables chains, rules and map/set elements kpy-proxy programs",
                             ["kind"], registry=registry)
        self.sync_failures = Counter("kubeproxy_sync_proxy_rules_nftables_sync_failures",
                                     "Cumulative proxy nftables sync failures", registry=registry)
        self.service_changes = Counter("kubeproxy_sync_proxy_rules_service_changes",
                                       "Cumulative proxy rules Service changes", registry=registry)
        self.endpoint_changes = Counter("kubeproxy_sync_proxy_rules_endpoint_changes",
                                        "Cumulative proxy rules Endpoint changes", registry=registry)
        self.no_local_endpoints = Gauge("kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                                        "Number of services with a Local traffic policy and no endpoints",
                                        ["traffic_policy"], registry=registry)
