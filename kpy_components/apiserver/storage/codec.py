"""How objects and continue tokens look at rest and on the wire, shared by every backend.

Objects are stored as compact JSON without `metadata.resourceVersion` (the revision of the row or etcd key is the
truth, as in Kubernetes), passed through the optional Transformer (encryption at rest) keyed by the storage key.
Continue tokens are URL-safe base64 of {"rv": <revision>, "start": <next key relative to the listed prefix>}, so a
token can never reach outside the prefix it was issued for.
"""
from __future__ import annotations

import base64
import binascii

import orjson

from kpy_components.api.meta import deep_copy
from kpy_components.apiserver.storage.interface import InvalidContinueToken, StorageError, Transformer

dumps, loads = orjson.dumps, orjson.loads  # compact JSON bytes, and back


class CorruptObject(StorageError):
    """Stored bytes that do not decode to an object (wrong encryption key, damaged data)."""


clone = deep_copy  # storage code's name for the one deep copy of JSON data


def without_resource_version(obj: dict) -> dict:
    """A shallow copy of `obj` whose metadata lacks resourceVersion (what is stored, and what equality means)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "resourceVersion" not in metadata:
        return obj
    metadata = {name: value for name, value in metadata.items() if name != "resourceVersion"}
    return {**obj, "metadata": metadata}


def stamped(obj: dict, revision: int) -> dict:
    """What a write of `obj` stored at `revision`, without decoding it again: a copy of the top level and of the
    metadata with resourceVersion set; nested values are shared with `obj` (the writer's own object)."""
    return {**obj, "metadata": {**(obj.get("metadata") or {}), "resourceVersion": str(revision)}}


def with_resource_version(obj: dict, revision: int) -> dict:
    """`obj` (changed in place and returned) with metadata.resourceVersion set to `revision`."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = obj["metadata"] = {}
    metadata["resourceVersion"] = str(revision)
    return obj


class ObjectCodec:
    """dict <-> bytes at rest for one storage; `transformer` (optional) encrypts the JSON.

    The steps are public so a backend encodes a write's plain JSON once for what it stores and for the event it
    publishes."""

    def __init__(self, transformer: Transformer | None = None):
        self.transformer = transformer

    @staticmethod
    def plain(obj: dict) -> bytes:
        """The JSON of `obj` as stored (without resourceVersion)."""
        return dumps(without_resource_version(obj))

    def seal(self, key: str, plain: bytes) -> bytes:
        return self.transformer.to_storage(key, plain) if self.transformer else plain

    def unseal(self, key: str, data: bytes) -> bytes:
        try:
            return self.transformer.from_storage(key, data) if self.transformer else data
        except StorageError:
            raise
        except Exception as error:  # the transformer's own failure (wrong key, damaged data): name the key
            raise CorruptObject(f"the value stored at {key} cannot be decoded: {error}") from error

    @staticmethod
    def load(key: str, plain: bytes, revision: int) -> dict:
        """The object of stored JSON, stamped with `revision` as its resourceVersion."""
        try:
            obj = loads(plain)
        except ValueError as error:
            raise CorruptObject(f"the value stored at {key} is not JSON: {error}") from error
        if not isinstance(obj, dict):
            raise CorruptObject(f"the value stored at {key} is not an object")
        return with_resource_version(obj, revision)

    def encode(self, key: str, obj: dict) -> bytes:
        return self.seal(key, self.plain(obj))

    def decode(self, key: str, data: bytes, revision: int) -> dict:
        return self.load(key, self.unseal(key, data), revision)


def encode_continue(prefix: str, revision: int, next_key: str) -> str:
    """A token resuming the list of `prefix` at `revision`, from `next_key` (inclusive)."""
    payload = dumps({"rv": revision, "start": next_key[len(prefix):]})
    return base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def decode_continue(prefix: str, token: str) -> tuple[int, str]:
    """(revision, first key) of a token made by encode_continue for `prefix`; InvalidContinueToken otherwise."""
    try:
        payload = loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        revision, start = payload["rv"], payload["start"]
    except (binascii.Error, ValueError, TypeError, KeyError) as error:
        raise InvalidContinueToken(f"continue token {token[:40]!r} is not valid: it was not issued by this "
                                   "server") from error
    if not isinstance(revision, int) or isinstance(revision, bool) or revision <= 0 or not isinstance(start, str):
        raise InvalidContinueToken(f"continue token {token[:40]!r} is not valid: bad revision or key")
    return revision, prefix + start  # relative to the prefix: a token cannot reach outside it


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (code point order = UTF-8 order)."""
    if not prefix:
        raise ValueError("a storage prefix cannot be empty")
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
