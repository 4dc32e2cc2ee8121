"""The API server's Prometheus metrics; health checks and /version come from the shared component runtime."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from kpy_components.component.health import Check, component_registry, run_checks, version_info  # noqa: F401 - re-exported for app.py

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The API server's Prometheus metrics, in a registry of its own (several servers may share a process in
    tests). Names follow kube-apiserver's."""

    def __init__(self):
        self.registry = component_registry()
        self.requests = Counter("apiserver_request", "Counter of apiserver requests broken out for each verb, "
                                "resource and HTTP response code.", ["verb", "resource", "code"],
                                registry=self.registry)
        self.duration = Histogram("apiserver_request_duration_seconds", "Response latency distribution in "
                                  "seconds for each verb and resource.", ["verb", "resource"],
                                  buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.watchers = Gauge("apiserver_registered_watchers", "Number of currently registered watchers for a "
                              "given resource.", ["resource"], registry=self.registry)
        self.watch_events = Counter("apiserver_watch_events", "Number of events sent in watch clients.",
                                    ["resource"], registry=self.registry)
        self.storage = Histogram("etcd_request_duration_seconds", "Storage request latency in seconds for each "
                                 "operation and resource.", ["operation", "type"], buckets=_LATENCY_BUCKETS,
                                 registry=self.registry)
