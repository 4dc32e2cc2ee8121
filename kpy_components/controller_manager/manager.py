"""Runs the enabled controllers together: one shared informer factory (one list+watch per resource for all of
them), informers synced before any worker starts, every controller's workers until leadership ends."""
from __future__ import annotations

import asyncio
import logging

from kpy_components.component.runner import Context

from . import controllers
from .config import ControllerManagerConfig
from .controller import Controller, ControllerContext
from .credentials import ServiceAccountCredentials

log = logging.getLogger(__name__)
SYNC_TIMEOUT = 120.0


async def build(context: Context, config: ControllerManagerConfig,
                credentials: ServiceAccountCredentials | None) -> list[Controller]:
    """The enabled controllers, set up; each writes with its own service account's client when `credentials`."""
    built = []
    for name in config.enabled:
        controller_class = controllers.load(name)
        if not controller_class.wanted(config):
            log.info("Skipped controller %s (not wanted by this configuration)", name)
            continue
        client = await credentials.client_for(name) if credentials else context.client
        controller = controller_class(ControllerContext(client, context.informers, config, context.recorder,
                                                        context.metrics))
        controller.setup()
        built.append(controller)
    return built


async def run(context: Context, config: ControllerManagerConfig) -> None:
    credentials = ServiceAccountCredentials(context.client) if config.use_service_account_credentials else None
    try:
        await _run(context, config, credentials)
    finally:
        if credentials is not None:
            await credentials.close()


async def _run(context: Context, config: ControllerManagerConfig,
               credentials: ServiceAccountCredentials | None) -> None:
    running = await build(context, config, credentials)
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
