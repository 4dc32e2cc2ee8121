"""The requests of etcd's v3 JSON gateway, built without any I/O so that the sync and async clients share them.

A `Call` is a gateway path, a JSON body and the parser of the answer. Keys and values are accepted as `bytes` or
`str` (UTF-8) and sent base64-encoded, as the gateway requires.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kpy_components.etcd.results import (
    DeleteResult,
    Json,
    LeaseGrant,
    PutResult,
    RangeResult,
    Status,
    TxnResult,
    decode_members,
    header_revision,
)

# etcd 3.4 serves the gateway under /v3/ (and the deprecated /v3beta/); checked against etcd-server 3.4.23.
PREFIX = "/v3"
Bytes = bytes | str
T = TypeVar("T")


def encode_bytes(value: Bytes) -> str:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


def prefix_range_end(prefix: Bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix` (etcd's `GetPrefixRangeEnd`)."""
    raw = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"  # every byte was 0xff (or the prefix was empty): the range runs to the end of the keyspace


def key_range(key: Bytes, range_end: Bytes | None, prefix: bool) -> Json:
    """The key/range_end fields of a range-shaped request; `prefix=True` selects every key starting with `key`."""
    if prefix and range_end is not None:
        raise ValueError("give either prefix=True or range_end, not both")
    end = prefix_range_end(key) if prefix else range_end
    if prefix and not key:
        key = b"\0"  # etcd refuses an empty key; the prefix "" means the whole keyspace, from \0 to \0
    body: Json = {"key": encode_bytes(key)}
    if end is not None:
        body["range_end"] = encode_bytes(end)
    return body


@dataclass(frozen=True)
class Call(Generic[T]):
    path: str
    body: Json
    parse: Callable[[Json], T]


# --- Operations that can run alone or inside a transaction -----------------------------------------------------

@dataclass(frozen=True)
class GetOp:
    """Read `key` (or the range from `key` to `range_end`, or every key with prefix `key`)."""

    key: Bytes
    range_end: Bytes | None = None
    prefix: bool = False
    revision: int = 0
    limit: int = 0
    keys_only: bool = False
    count_only: bool = False
    serializable: bool = False

    def body(self) -> Json:
        body = key_range(self.key, self.range_end, self.prefix)
        for name in ("revision", "limit", "keys_only", "count_only", "serializable"):
            value = getattr(self, name)
            if value:
                body[name] = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        return body


@dataclass(frozen=True)
class PutOp:
    key: Bytes
    value: Bytes
    lease: int = 0
    prev_kv: bool = False
    ignore_lease: bool = False  # keep the key's current lease, whatever it is (the key must exist)

    def body(self) -> Json:
        body: Json = {"key": encode_bytes(self.key), "value": encode_bytes(self.value)}
        if self.lease:
            body["lease"] = str(self.lease)
        if self.ignore_lease:
            body["ignore_lease"] = True
        if self.prev_kv:
            body["prev_kv"] = True
        return body


@dataclass(frozen=True)
class DeleteOp:
    key: Bytes
    range_end: Bytes | None = None
    prefix: bool = False
    prev_kv: bool = False

    def body(self) -> Json:
        body = key_range(self.key, self.range_end, self.prefix)
        if self.prev_kv:
            body["prev_kv"] = True
        return body


Op = GetOp | PutOp | DeleteOp
_TXN_OP_FIELD = {GetOp: "request_range", PutOp: "request_put", DeleteOp: "request_delete_range"}


@dataclass(frozen=True)
class Compare:
    """One comparison of a transaction, e.g. `Compare.mod_revision(key, "=", 7)` or `Compare.version(key, "=", 0)`
    (a key that does not exist has version 0)."""

    key: Bytes
    target: str  # VERSION, CREATE, MOD, VALUE, LEASE
    result: str  # EQUAL, GREATER, LESS, NOT_EQUAL
    field: str
    operand: Any

    _RESULTS = {"=": "EQUAL", "==": "EQUAL", "!=": "NOT_EQUAL", ">": "GREATER", "<": "LESS"}

    @classmethod
    def _make(cls, key: Bytes, target: str, op: str, field: str, operand: Any) -> Compare:
        if op not in cls._RESULTS:
            raise ValueError(f"comparison {op!r} is not one of {', '.join(cls._RESULTS)}")
        return cls(key, target, cls._RESULTS[op], field, operand)

    @classmethod
    def version(cls, key: Bytes, op: str, version: int) -> Compare:
        return cls._make(key, "VERSION", op, "version", str(version))

    @classmethod
    def create_revision(cls, key: Bytes, op: str, revision: int) -> Compare:
        return cls._make(key, "CREATE", op, "create_revision", str(revision))

    @classmethod
    def mod_revision(cls, key: Bytes, op: str, revision: int) -> Compare:
        return cls._make(key, "MOD", op, "mod_revision", str(revision))

    @classmethod
    def value(cls, key: Bytes, op: str, value: Bytes) -> Compare:
        return cls._make(key, "VALUE", op, "value", encode_bytes(value))

    def body(self) -> Json:
        return {"key": encode_bytes(self.key), "target": self.target, "result": self.result,
                self.field: self.operand}


# --- Calls ---------------------------------------------------------------------------------------------------

def range_call(op: GetOp) -> Call[RangeResult]:
    return Call(f"{PREFIX}/kv/range", op.body(), RangeResult.from_json)


def put_call(op: PutOp) -> Call[PutResult]:
    return Call(f"{PREFIX}/kv/put", op.body(), PutResult.from_json)


def delete_call(op: DeleteOp) -> Call[DeleteResult]:
    return Call(f"{PREFIX}/kv/deleterange", op.body(), DeleteResult.from_json)


def txn_call(compare: list[Compare], success: list[Op], failure: list[Op]) -> Call[TxnResult]:
    def ops(items: list[Op]) -> list[Json]:
        return [{_TXN_OP_FIELD[type(op)]: op.body()} for op in items]

    body = {"compare": [c.body() for c in compare], "success": ops(success), "failure": ops(failure)}
    return Call(f"{PREFIX}/kv/txn", body, TxnResult.from_json)


def compact_call(revision: int, physical: bool = False) -> Call[int]:
    """Compact history up to `revision`; `physical=True` returns only once the space is reclaimed."""
    return Call(f"{PREFIX}/kv/compaction", {"revision": str(revision), "physical": physical}, header_revision)


def lease_grant_call(ttl: int) -> Call[LeaseGrant]:
    return Call(f"{PREFIX}/lease/grant", {"TTL": str(ttl)}, LeaseGrant.from_json)


def lease_revoke_call(lease_id: int) -> Call[int]:
    return Call(f"{PREFIX}/kv/lease/revoke", {"ID": str(lease_id)}, header_revision)


def status_call() -> Call[Status]:
    return Call(f"{PREFIX}/maintenance/status", {}, Status.from_json)


def member_list_call() -> Call[list]:
    return Call(f"{PREFIX}/cluster/member/list", {}, decode_members)


WATCH_PATH = f"{PREFIX}/watch"
SNAPSHOT_PATH = f"{PREFIX}/maintenance/snapshot"


def watch_body(key: Bytes, range_end: Bytes | None = None, prefix: bool = False, start_revision: int = 0,
               prev_kv: bool = False, progress_notify: bool = False) -> Json:
    """The create request of a watch from `start_revision` (0: from now on)."""
    create = key_range(key, range_end, prefix)
    if start_revision:
        create["start_revision"] = str(start_revision)
    if prev_kv:
        create["prev_kv"] = True
    if progress_notify:
        create["progress_notify"] = True
    return {"create_request": create}
