"""An indexed local store of API objects, keyed `namespace/name` (or `name` for cluster-scoped objects).

Safe for asyncio by construction: no method awaits, so each call is atomic with respect to other tasks on the loop.
(Not safe across threads; kpy's components are single-threaded event loops.)

Reads return the store's own objects, not copies, because schedulers and controllers read the cache far more often
than they write: callers MUST NOT mutate what they get (deep-copy with `kpy_components.api.meta.deep_copy` before
changing an object). Only the informer that owns a store writes to it.

Indexers map an object to the index values it is filed under, e.g. pods by node:

    store = Indexer({"node": field_index("spec.nodeName")})
    pods_on_node = store.by_index("node", "worker-1")
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

IndexFunc = Callable[[dict], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def key_of(obj: dict) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKeyFunc)."""
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    if not name:
        raise ValueError("the object has no metadata.name, so it has no cache key")
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a key; namespace "" for cluster-scoped keys."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def namespace_index(obj: dict) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


def field_index(path: str) -> IndexFunc:
    """Index by the value at a dotted path (`spec.nodeName`); objects where it is missing or empty are unindexed."""
    parts = path.split(".")

    def index(obj: dict) -> list[str]:
        value = obj
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        return [str(value)] if value not in (None, "") else []
    return index


class Indexer:
    def __init__(self, indexers: dict[str, IndexFunc] | None = None):
        self._items: dict[str, dict] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexers({NAMESPACE_INDEX: namespace_index, **(indexers or {})})

    # --- reads (never mutate what they return) -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> dict | None:
        return self._items.get(key)

    def get_object(self, namespace: str | None, name: str) -> dict | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> list[str]:
        return list(self._items)

    def list(self, namespace: str | None = None) -> list[dict]:
        if namespace:
            return self.by_index(NAMESPACE_INDEX, namespace)
        return list(self._items.values())

    def by_index(self, index: str, value: str) -> list[dict]:
        return [self._items[key] for key in self.index_keys(index, value)]

    def index_keys(self, index: str, value: str) -> list[str]:
        if index not in self._indices:
            raise KeyError(f"no index named {index!r} (known: {', '.join(sorted(self._indices))})")
        return sorted(self._indices[index].get(value, ()))

    def index_values(self, index: str) -> list[str]:
        """The values filed in `index` that have objects (e.g. every node that has pods)."""
        return sorted(self._indices[index])

    # --- configuration -------------------------------------------------------------------------------------------
    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add indexers (also to a filled store: existing objects are indexed at once); a name may be added once."""
        for name, func in indexers.items():
            if name in self._indexers:
                raise ValueError(f"indexer {name!r} exists already")
            self._indexers[name] = func
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._file(name, key, obj)

    # --- writes (the owning informer only) -----------------------------------------------------------------------
    def upsert(self, obj: dict) -> dict | None:
        """Store `obj` under its key; returns the object it replaced, or None."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            self._unfile(key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._file(name, key, obj)
        return old

    def delete(self, key: str) -> dict | None:
        """Remove the object at `key`; returns it, or None if there was none."""
        old = self._items.pop(key, None)
        if old is not None:
            self._unfile(key, old)
        return old

    def replace(self, objects: Iterable[dict]) -> tuple[list[dict], list[tuple[dict, dict]], list[dict]]:
        """Make the store hold exactly `objects` (a re-list). Returns (added, updated as (old, new), deleted);
        an object counts as updated only when its resourceVersion changed."""
        fresh = {key_of(obj): obj for obj in objects}
        deleted = [self.delete(key) for key in [k for k in self._items if k not in fresh]]
        added, updated = [], []
        for obj in fresh.values():
            old = self.upsert(obj)
            if old is None:
                added.append(obj)
            elif _version(old) != _version(obj):
                updated.append((old, obj))
        return added, updated, deleted

    # --- index bookkeeping ---------------------------------------------------------------------------------------
    def _file(self, name: str, key: str, obj: dict) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            index.setdefault(value, set()).add(key)

    def _unfile(self, key: str, obj: dict) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


def _version(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")
