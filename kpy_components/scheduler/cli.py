"""`kpy-scheduler`: schedule pods, one active replica at a time (leader election on the kube-system/kube-scheduler
Lease), serving /healthz /readyz /metrics over TLS on 10259.

    kpy-scheduler --kubeconfig /etc/kpy/scheduler.kubeconfig [--config FILE] [--leader-elect] [--secure-port 10259]
"""
from __future__ import annotations

import asyncio
import sys

from kpy_components.component import runner
from kpy_components.component.runner import Context

from . import config
from .scheduler import Scheduler


async def run(context: Context, settings: config.SchedulerConfig) -> None:
    """The scheduler's work while leading: one Scheduler over the context's client and informers."""
    synced = asyncio.Event()

    async def informers_synced() -> str | None:
        return None if synced.is_set() else "informers not synced yet"

    context.ready_checks["informer-sync"] = informers_synced
    scheduler = Scheduler(context.client, context.informers, context.recorder, settings, context.metrics)
    await scheduler.run(synced)


COMPONENT = runner.Component(
    name="kpy-scheduler", default_port=10259, lease_name=config.LEASE_NAME,
    description="Assign pods to nodes (kube-scheduler).", load_config=config.load, run=run)


def main(argv: list[str] | None = None) -> int:
    return runner.main(COMPONENT, argv)


if __name__ == "__main__":
    sys.exit(main())
