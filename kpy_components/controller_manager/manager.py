"""Runs the enabled controllers together: one shared informer factory (one list+watch per resource for all of
them), informers synced before any worker starts, every controller's workers until leadership ends."""
from __future__ import annotations

import asyncio
import logging

from kpy_components.component.runner import Context

from . import controllers
from .config import ControllerManagerConfig
from .controller import Controller, ControllerContext

log = logging.getLogger(__name__)
SYNC_TIMEOUT = 120.0


def build(context: Context, config: ControllerManagerConfig) -> list[Controller]:
    shared = ControllerContext(context.client, context.informers, config, context.recorder, context.metrics)
    built = []
    for name in config.enabled:
        controller_class = controllers.load(name)
        if not controller_class.wanted(config):
            log.info("Skipped controller %s (not wanted by this configuration)", name)
            continue
        controller = controller_class(shared)
        controller.setup()
        built.append(controller)
    return built


async def run(context: Context, config: ControllerManagerConfig) -> None:
    running = build(context, config)
    context.informers.start()
    synced = asyncio.Event()

    async def informers_synced() -> str | None:
        return None if synced.is_set() else "informers not synced yet"

    context.ready_checks["informer-sync"] = informers_synced
    if not await context.informers.wait_for_sync(SYNC_TIMEOUT):
        raise RuntimeError(f"informers did not sync within {SYNC_TIMEOUT:.0f}s")
    synced.set()
    log.info("Started controllers %s", ", ".join(c.name for c in running))
    async with asyncio.TaskGroup() as group:
        for controller in running:
            group.create_task(controller.run(), name=f"controller-{controller.name}")
        await asyncio.Event().wait()  # controllers run until leadership ends, even when none is enabled
