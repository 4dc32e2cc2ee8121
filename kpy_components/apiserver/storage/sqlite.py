"""The embedded backend: etcd's MVCC model in one SQLite file (WAL mode), for `kpy-apiserver --dev` and tests.

Tables:
- `revisions`: every write of every key, one row per revision (value NULL for a deletion), with the key's previous
  revision; list-at-revision and watch-from-revision read it. One global revision counter, as in etcd.
- `current`: the live keys and their latest revision (the fast path of get and of lists at the latest revision),
  with the expiry of keys created with a TTL.
- `state`: the revision counter and the compact revision (reads before it raise Compacted).

Writes run on the event loop's thread: a single-key write is tens of microseconds of SQLite, less than handing it
to a thread costs (executor, GIL hand-offs, wake-ups: a fifth of the API server's CPU per write). Nothing can make
them wait: one process owns the file, WAL readers never block the writer, and the WAL is checkpointed (the one
slow step, with fsyncs) by the reader thread in the background instead of by the committing write. Reads, which
may be long lists or history replays, run in a reader thread with its own connection. Watches are fed in process:
each committed event is published in commit order, and a watch from an old revision first replays it from
`revisions`. One process owns the file (watchers of another process would not be told of writes).
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kpy_components.apiserver.storage.codec import (
    ObjectCodec,
    clone,
    decode_continue,
    encode_continue,
    prefix_end,
    stamped,
    with_resource_version,
)
from kpy_components.apiserver.storage.fanout import Broker
from kpy_components.apiserver.storage.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyNotFound,
    ListResult,
    StorageError,
    Transformer,
    Unavailable,
)
from kpy_components.apiserver.storage.updating import CompareAndSwapStorage, Current, Raced

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS revisions (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    value BLOB,
    prev_revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS revisions_by_key ON revisions (key, revision);
CREATE TABLE IF NOT EXISTS current (
    key TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    expires REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS current_by_expiry ON current (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO state VALUES ('revision', 1), ('compact_revision', 0);
"""

_LATEST = "SELECT c.key, c.revision, r.value FROM current c JOIN revisions r ON r.revision = c.revision"
_AT_REVISION = """SELECT key, revision, value FROM (
    SELECT key, MAX(revision) AS revision, value FROM revisions WHERE key >= ? AND key < ? AND revision <= ?
    GROUP BY key) WHERE value IS NOT NULL"""
_HISTORY = """SELECT r.revision, r.key, r.create_revision, r.value, p.revision, p.value
    FROM revisions r LEFT JOIN revisions p ON p.revision = r.prev_revision
    WHERE r.revision > ? AND r.key >= ? AND r.key < ? ORDER BY r.revision LIMIT ?"""
# Compaction at R keeps, for each key, its state at R (its latest row <= R unless that is a deletion).
_COMPACT = """DELETE FROM revisions WHERE revision < :r AND (value IS NULL OR EXISTS (
    SELECT 1 FROM revisions n WHERE n.key = revisions.key AND n.revision > revisions.revision AND n.revision <= :r))"""

log = logging.getLogger(__name__)

HISTORY_BATCH = 500  # events read per query when a watch replays history
COMPACT_BATCH = 2_000  # revisions pruned per write when compacting
CHECKPOINT_WRITES = 200  # writes between WAL checkpoints (about SQLite's default of 1,000 pages)


class SqliteStorage(CompareAndSwapStorage):
    """Storage in the SQLite file `path` (created if missing).

    watch_backlog: live events a watch may have waiting before it falls back to re-reading history.
    synchronous: SQLite's `synchronous` in WAL mode; NORMAL survives a crash of the process (not of the machine
    for the last transactions), FULL also a power loss at the cost of an fsync per write.
    ttl_sweep_interval: seconds between removals of keys whose TTL ran out."""

    def __init__(self, path: str | Path, transformer: Transformer | None = None, *, watch_backlog: int = 10_000,
                 synchronous: str = "NORMAL", ttl_sweep_interval: float = 1.0):
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self.codec = ObjectCodec(transformer)
        self._synchronous = synchronous.upper()
        self._broker = Broker(watch_backlog)
        self._ttl_sweep_interval = ttl_sweep_interval
        self._local = threading.local()  # each thread's connection
        self._pending: list[tuple[str, Event]] = []  # events of the running write transaction
        self._uncheckpointed = 0  # writes since the last WAL checkpoint was started
        with sqlite_errors(self.path):
            self._has_ttl = self._create_schema()
        self._reader = ThreadPoolExecutor(1, "kpy-sqlite-reader", initializer=self._connect)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task | None = None
        self._closed = False

    # --- threads and connections -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    def _create_schema(self) -> bool:
        """Create the tables; whether keys with a TTL exist."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._open()
        try:
            connection.executescript(SCHEMA)
            return connection.execute("SELECT 1 FROM current WHERE expires IS NOT NULL LIMIT 1").fetchone() is not None
        finally:
            connection.close()

    def _connect(self) -> None:
        self._local.connection = self._open()

    def _writer_connection(self) -> sqlite3.Connection:
        """The event loop thread's connection: writes only, and never checkpointing while it commits."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._open()
            connection.execute("PRAGMA wal_autocheckpoint=0")
        return connection

    @property
    def _db(self) -> sqlite3.Connection:
        return self._local.connection

    def _started(self) -> None:
        if self._closed:
            raise Unavailable(f"SQLite storage {self.path} is closed")
        self._loop = asyncio.get_running_loop()
        if self._has_ttl and self._sweeper is None:
            self._sweeper = self._loop.create_task(self._sweep_expired(), name="kpy-sqlite-ttl-sweeper")

    async def _run(self, job: Callable[..., T], *args: Any) -> T:
        """A read `job` in the reader thread."""
        self._started()
        return await self._loop.run_in_executor(self._reader, self._guarded, job, args)

    async def _run_write(self, job: Callable[..., T], *args: Any) -> T:
        """A write `job` in one transaction, here on the loop's thread; then its events are published, in order.
        The write stays a point where other tasks (watchers, requests) get their turn, as when it ran in a thread."""
        self._started()
        self._writer_connection()
        result = self._guarded(self._write, (job, *args))
        self._uncheckpointed += 1
        if self._uncheckpointed >= CHECKPOINT_WRITES:
            self._uncheckpointed = 0
            self._loop.run_in_executor(self._reader, self._checkpoint)
        await asyncio.sleep(0)
        return result

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database file (PASSIVE: never waits for, nor blocks, the writer)."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:
            log.warning("SQLite database %s: WAL checkpoint failed (%s); retried after more writes", self.path, error)

    def _guarded(self, job: Callable[..., T], args: tuple) -> T:
        with sqlite_errors(self.path):
            return job(*args)

    def _read_transaction(self, job: Callable[..., T], *args: Any) -> T:
        """Run `job` in one read transaction: it sees one snapshot of the database."""
        self._db.execute("BEGIN")
        try:
            return job(*args)
        finally:
            self._db.execute("COMMIT")

    def _write_transaction(self, job: Callable[..., T], *args: Any) -> T:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = job(*args)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return result

    def _state(self, name: str) -> int:
        return self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()[0]

    # --- reads -------------------------------------------------------------------------------------------

    def _current_row(self, key: str) -> tuple | None:
        """(revision, create_revision, value, expires) of a live key."""
        return self._db.execute(
            "SELECT c.revision, r.create_revision, r.value, c.expires FROM current c "
            "JOIN revisions r ON r.revision = c.revision WHERE c.key = ?", (key,)).fetchone()

    def _db_read(self, key: str, minimum_revision: int | None = None) -> Current | None:
        if minimum_revision:
            current_revision = self._state("revision")
            if minimum_revision > current_revision:
                raise FutureRevision(minimum_revision, current_revision)
        row = self._current_row(key)
        return Current(self.codec.decode(key, row[2], row[0]), row[0]) if row else None

    async def _read(self, key: str) -> Current | None:
        return await self._run(self._read_transaction, self._db_read, key)

    async def get(self, key: str, resource_version: int | None = None) -> dict:
        current = await self._run(self._read_transaction, self._db_read, key, resource_version)
        if current is None:
            raise KeyNotFound(f"{key} not found")
        return current.obj

    def _db_list(self, prefix: str, revision: int | None, start: str, limit: int) -> ListResult:
        latest, compact_revision = self._state("revision"), self._state("compact_revision")
        at = latest if revision is None else revision
        if at < compact_revision:
            raise Compacted(at, compact_revision - 1)
        if at > latest:
            raise FutureRevision(at, latest)
        end = prefix_end(prefix)
        if at == latest:
            query, args = f"{_LATEST} WHERE c.key >= ? AND c.key < ? ORDER BY c.key", (start, end)
        else:
            query, args = f"{_AT_REVISION} ORDER BY key", (start, end, at)
        rows = self._db.execute(f"{query} LIMIT ?", (*args, limit + 1 if limit else -1)).fetchall()
        page = rows[:limit or None]
        items = [self.codec.decode(key, value, row_revision) for key, row_revision, value in page]
        keys = [row[0] for row in page]
        if not limit or len(rows) <= limit:
            return ListResult(items, at, keys=keys)
        next_key = keys[-1] + "\0"
        remaining = self._db.execute(f"SELECT count(*) FROM ({query})", (next_key, *args[1:])).fetchone()[0]
        return ListResult(items, at, encode_continue(prefix, at, next_key), remaining, keys)

    async def list(self, prefix: str, *, revision: int | None = None, limit: int = 0,
                   continue_token: str | None = None) -> ListResult:
        start = prefix
        if continue_token:
            revision, start = decode_continue(prefix, continue_token)
        return await self._run(self._read_transaction, self._db_list, prefix, revision, start, limit)

    async def current_revision(self) -> int:
        return await self._run(self._read_transaction, self._state, "revision")

    # --- writes ------------------------------------------------------------------------------------------

    def _next_revision(self) -> int:
        revision = self._state("revision") + 1
        self._db.execute("UPDATE state SET value = ? WHERE name = 'revision'", (revision,))
        return revision

    def _db_swap(self, key: str, expected: int, obj: dict, previous: dict | None, ttl: int | None) -> dict | Raced:
        row = self._current_row(key)
        if (row[0] if row else 0) != expected:
            return Raced(Current(self.codec.decode(key, row[2], row[0]), row[0]) if row else None)
        plain = self.codec.plain(obj)
        revision = self._next_revision()
        create_revision = row[1] if row else revision
        expires = time.time() + ttl if ttl else (row[3] if row else None)
        self._db.execute("INSERT INTO revisions VALUES (?, ?, ?, ?, ?)",
                         (revision, key, create_revision, self.codec.seal(key, plain), expected))
        self._db.execute("INSERT OR REPLACE INTO current VALUES (?, ?, ?)", (key, revision, expires))
        event_type = "ADDED" if create_revision == revision else "MODIFIED"
        self._after_commit(key, Event(event_type, self.codec.load(key, plain, revision), revision, previous, key))
        return stamped(obj, revision)

    def _after_commit(self, key: str, event: Event) -> None:
        """Publish `event` once the running write transaction commits (a rollback raises before this runs)."""
        self._pending.append((key, event))

    def _write(self, job: Callable[..., T], *args: Any) -> T:
        """Run a write `job` in a transaction, then publish the events it produced, in order."""
        self._pending.clear()
        result = self._write_transaction(job, *args)
        for key, event in self._pending:
            self._broker.publish(key, event)
        self._pending.clear()
        return result

    async def _swap(self, key: str, current: Current | None, obj: dict, ttl: int | None = None) -> dict | Raced:
        if ttl:
            self._has_ttl = True
        return await self._run_write(self._db_swap, key, current.revision if current else 0,
                               obj, current.obj if current else None, ttl)

    def _db_tombstone(self, key: str, row: tuple, previous: dict) -> dict:
        """Delete live `key` (its current row `row`, decoded as `previous`); its last state."""
        revision = self._next_revision()
        self._db.execute("INSERT INTO revisions VALUES (?, ?, ?, NULL, ?)", (revision, key, row[1], row[0]))
        self._db.execute("DELETE FROM current WHERE key = ?", (key,))
        self._after_commit(key, Event("DELETED", with_resource_version(clone(previous), revision), revision,
                                      previous, key))
        return clone(previous)

    def _db_delete_if(self, key: str, expected: int, previous: dict) -> dict | Raced:
        row = self._current_row(key)
        if (row[0] if row else 0) != expected:
            return Raced(Current(self.codec.decode(key, row[2], row[0]), row[0]) if row else None)
        return self._db_tombstone(key, row, previous)

    async def _delete_if(self, key: str, current: Current) -> dict | Raced:
        return await self._run_write(self._db_delete_if, key, current.revision, current.obj)

    def _db_delete_expired(self, now: float) -> int:
        keys = [key for (key,) in self._db.execute("SELECT key FROM current WHERE expires <= ?", (now,))]
        for key in keys:
            row = self._current_row(key)
            self._db_tombstone(key, row, self.codec.decode(key, row[2], row[0]))
        return len(keys)

    async def _sweep_expired(self) -> None:
        """Delete keys whose TTL ran out (each deletion is an ordinary DELETED event)."""
        while True:
            await asyncio.sleep(self._ttl_sweep_interval)
            try:
                await self._run_write(self._db_delete_expired, time.time())
            except StorageError:
                continue  # a busy or failing database: try again at the next sweep

    # --- watch and compaction ----------------------------------------------------------------------------

    def _db_history(self, prefix: str, after: int) -> list[Event]:
        """Up to HISTORY_BATCH events under `prefix` after revision `after`, from the stored history."""
        compact_revision = self._state("compact_revision")
        if after < compact_revision:
            raise Compacted(after, compact_revision - 1)
        rows = self._db.execute(_HISTORY, (after, prefix, prefix_end(prefix), HISTORY_BATCH)).fetchall()
        return [self._history_event(*row) for row in rows]

    def _history_event(self, revision: int, key: str, create_revision: int, value: bytes | None,
                       prev_revision: int | None, prev_value: bytes | None) -> Event:
        previous = self.codec.decode(key, prev_value, prev_revision) if prev_value is not None else None
        if value is None:
            last = with_resource_version(clone(previous) if previous else {}, revision)
            return Event("DELETED", last, revision, previous, key)
        obj = self.codec.decode(key, value, revision)
        if create_revision == revision:
            return Event("ADDED", obj, revision, key=key)
        return Event("MODIFIED", obj, revision, previous, key)

    async def watch(self, prefix: str, revision: int) -> AsyncIterator[Event]:
        prefix_end(prefix)  # a clear error for an empty prefix
        subscriber = self._broker.subscribe(prefix)  # before reading history: no event can fall in between
        last = revision
        try:
            while not subscriber.closed:
                subscriber.resume()  # from here on live events queue up; the history covers what came before
                while True:  # replay
                    events = await self._run(self._read_transaction, self._db_history, prefix, last)
                    for event in events:
                        last = event.revision
                        yield event
                    if len(events) < HISTORY_BATCH:
                        break
                while (event := await subscriber.next()) is not None:  # live; None: closed or overflowed
                    if event.revision > last:
                        last = event.revision
                        yield event
        finally:
            self._broker.unsubscribe(subscriber)

    def _db_compact(self, revision: int) -> int | None:
        """Reads before `revision` fail from now on; the first stored revision (where pruning starts), None when
        already compacted there."""
        latest, compact_revision = self._state("revision"), self._state("compact_revision")
        if revision > latest:
            raise FutureRevision(revision, latest)
        if revision <= compact_revision:
            return None
        self._db.execute("UPDATE state SET value = ? WHERE name = 'compact_revision'", (revision,))
        return self._db.execute("SELECT min(revision) FROM revisions").fetchone()[0]

    def _db_prune(self, low: int, high: int, revision: int) -> None:
        self._db.execute(_COMPACT + " AND revision >= :low AND revision < :high",
                         {"r": revision, "low": low, "high": high})

    async def compact(self, revision: int) -> None:
        """Compaction is marked first, then the superseded rows go in batches of COMPACT_BATCH revisions (oldest
        first, so a key whose last row is a deletion never shows an older row again), each its own write: the
        event loop never waits for one long delete."""
        first = await self._run_write(self._db_compact, revision)
        if first is None:
            return
        for low in range(first, revision, COMPACT_BATCH):
            await self._run_write(self._db_prune, low, min(low + COMPACT_BATCH, revision), revision)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._broker.close_all()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._disconnect()  # the loop thread's (writer) connection
        await asyncio.get_running_loop().run_in_executor(self._reader, self._disconnect)
        self._reader.shutdown(wait=False)

    def _disconnect(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


@contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """sqlite3's errors as the storage's: a locked or failing database file is Unavailable."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise Unavailable(f"SQLite database {path}: {error}") from error
    except sqlite3.Error as error:
        raise StorageError(f"SQLite database {path}: {error}") from error
