"""Storage compaction, as kube-apiserver's `--etcd-compaction-interval` does it: history older than one interval
is dropped, so etcd (or the SQLite file) does not grow with every write ever made until its quota stops the
cluster.

Each interval the compactor compacts to the revision it noted one interval earlier, then notes the current one:
history of at least one interval stays, for watches that resume and lists that continue. Several API servers on
one etcd each do this; compacting to a revision that is already compacted is a no-op, so they need no
coordination (kube-apiserver elects one per interval with a txn on a marker key to spare etcd the duplicate call).
"""
from __future__ import annotations

import asyncio
import logging

from kpy_components.apiserver.storage.interface import Storage, StorageError

log = logging.getLogger(__name__)


async def run_compactor(storage: Storage, interval: float) -> None:
    """Compact `storage` every `interval` seconds (> 0) to the revision seen one interval before; until cancelled."""
    noted: int | None = None
    while True:
        try:
            current = await storage.current_revision()
            if noted is not None and noted > 0:
                await storage.compact(noted)
                log.info("Compacted storage revision=%d", noted)
            noted = current
        except StorageError as error:  # storage away for a while: try again at the next interval
            log.warning("Storage compaction failed (%s); retrying in %.0fs", error, interval)
        await asyncio.sleep(interval)
