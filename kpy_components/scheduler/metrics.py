"""The scheduler's Prometheus metrics (names and labels as kube-scheduler's), in the component's registry."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .queue import ACTIVE, BACKOFF, GATED, UNSCHEDULABLE, SchedulingQueue

SCHEDULED, UNSCHEDULABLE_RESULT, ERROR = "scheduled", "unschedulable", "error"
# kube-scheduler: ExponentialBuckets(0.001, 2, 15)
_DURATION_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry, queue: SchedulingQueue):
        self.attempts = Counter("scheduler_schedule_attempts", "Number of attempts to schedule pods, by the result. "
                                "'unschedulable' means a pod could not be scheduled, while 'error' means an internal "
                                "scheduler problem.", ["result", "profile"], registry=registry)
        self.attempt_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds", "Scheduling attempt latency in seconds (scheduling "
            "algorithm + binding)", ["result", "profile"], buckets=_DURATION_BUCKETS, registry=registry)
        self.algorithm_duration = Histogram(
            "scheduler_scheduling_algorithm_duration_seconds", "Scheduling algorithm latency in seconds",
            buckets=_DURATION_BUCKETS, registry=registry)
        pending = Gauge("scheduler_pending_pods", "Number of pending pods, by the queue type. 'active' means number "
                        "of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means "
                        "number of pods in unschedulablePods; 'gated' the pods held back by schedulingGates.",
                        ["queue"], registry=registry)
        for name in (ACTIVE, BACKOFF, UNSCHEDULABLE, GATED):
            pending.labels(name).set_function(lambda name=name: queue.pending()[name])

    def observe(self, result: str, profile: str, seconds: float) -> None:
        self.attempts.labels(result, profile).inc()
        self.attempt_duration.labels(result, profile).observe(seconds)
