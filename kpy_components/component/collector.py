"""Python's cyclic garbage collector, set for long-running components (one policy for every kpy binary).

Every object a request or an event allocates is freed by reference counting; the cyclic collector only finds
cycles, yet at CPython's default thresholds (700, 10, 10) it ran over a thousand times a minute under load and
took 12% of the API server's CPU and 8% of the scheduler's (bench/scheduler.py, measured with gc.callbacks).
At (20000, 20, 20) it ran 33 times for the same work, at a third of the cost, without longer watch delays
(bench/apiserver.py fan-out p99 unchanged).
"""
from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 20)


def tune() -> None:
    """Set the collector's thresholds for a long-running component (call once, at start)."""
    gc.set_threshold(*THRESHOLDS)


def freeze_startup_heap() -> None:
    """Move what start-up left alive (modules, registries, OpenAPI documents, primed caches) out of the
    collector's sight: every full collection scanned all of it, stopping every request and watch stream for
    100-250 ms on a busy 2-core host (measured with gc.callbacks under bench/apiserver.py)."""
    gc.collect()
    gc.freeze()
