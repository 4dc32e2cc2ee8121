"""What the etcd client returns, parsed from etcd's v3 JSON gateway (proto3 JSON: int64 as strings, zero values
omitted, bytes as base64). Keys and values are `bytes`."""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from kpy_components.etcd.errors import EtcdProtocolError

Json = dict[str, Any]


def decode_bytes(value: str | None) -> bytes:
    """Bytes from a base64 gateway field (absent means empty)."""
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise EtcdProtocolError(f"etcd sent a bytes field that is not base64: {value[:40]!r}") from error


def decode_int(value: Any) -> int:
    """An int64 from a gateway field (a decimal string; absent means 0)."""
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise EtcdProtocolError(f"etcd sent a number field that is not a number: {value!r}") from error


def header_revision(body: Json) -> int:
    """The store revision at which etcd served the request."""
    return decode_int(body.get("header", {}).get("revision"))


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0

    @classmethod
    def from_json(cls, kv: Json) -> KeyValue:
        return cls(
            key=decode_bytes(kv.get("key")),
            value=decode_bytes(kv.get("value")),
            create_revision=decode_int(kv.get("create_revision")),
            mod_revision=decode_int(kv.get("mod_revision")),
            version=decode_int(kv.get("version")),
            lease=decode_int(kv.get("lease")),
        )


def decode_kvs(items: list[Json] | None) -> list[KeyValue]:
    return [KeyValue.from_json(kv) for kv in items or []]


@dataclass(frozen=True)
class RangeResult:
    kvs: list[KeyValue]
    count: int
    more: bool
    revision: int

    @classmethod
    def from_json(cls, body: Json) -> RangeResult:
        return cls(decode_kvs(body.get("kvs")), decode_int(body.get("count")), bool(body.get("more")),
                   header_revision(body))


@dataclass(frozen=True)
class PutResult:
    revision: int
    prev_kv: KeyValue | None = None

    @classmethod
    def from_json(cls, body: Json) -> PutResult:
        prev = body.get("prev_kv")
        return cls(header_revision(body), KeyValue.from_json(prev) if prev else None)


@dataclass(frozen=True)
class DeleteResult:
    deleted: int
    revision: int
    prev_kvs: list[KeyValue] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: Json) -> DeleteResult:
        return cls(decode_int(body.get("deleted")), header_revision(body), decode_kvs(body.get("prev_kvs")))


TxnResponse = RangeResult | PutResult | DeleteResult


def _txn_response(item: Json) -> TxnResponse:
    # Inside a txn the per-operation header carries only the revision; it equals the txn's.
    if "response_range" in item:
        return RangeResult.from_json(item["response_range"])
    if "response_put" in item:
        return PutResult.from_json(item["response_put"])
    if "response_delete_range" in item:
        return DeleteResult.from_json(item["response_delete_range"])
    raise EtcdProtocolError(f"etcd sent a txn response of an unknown kind: {sorted(item)}")


@dataclass(frozen=True)
class TxnResult:
    """`succeeded` tells whether every comparison held; `responses` are those of the branch that ran, in order."""

    succeeded: bool
    revision: int
    responses: list[TxnResponse]

    @classmethod
    def from_json(cls, body: Json) -> TxnResult:
        return cls(bool(body.get("succeeded")), header_revision(body),
                   [_txn_response(item) for item in body.get("responses", [])])


@dataclass(frozen=True)
class LeaseGrant:
    id: int
    ttl: int

    @classmethod
    def from_json(cls, body: Json) -> LeaseGrant:
        if body.get("error"):
            raise EtcdProtocolError(f"etcd refused the lease: {body['error']}")
        return cls(decode_int(body.get("ID")), decode_int(body.get("TTL")))


@dataclass(frozen=True)
class Status:
    """One member's view (`/v3/maintenance/status`)."""

    member_id: int
    version: str
    db_size: int
    db_size_in_use: int
    leader: int
    raft_index: int
    raft_term: int
    errors: list[str]

    @property
    def is_leader(self) -> bool:
        return self.leader != 0 and self.leader == self.member_id

    @classmethod
    def from_json(cls, body: Json) -> Status:
        return cls(
            member_id=decode_int(body.get("header", {}).get("member_id")),
            version=str(body.get("version", "")),
            db_size=decode_int(body.get("dbSize")),
            db_size_in_use=decode_int(body.get("dbSizeInUse")),
            leader=decode_int(body.get("leader")),
            raft_index=decode_int(body.get("raftIndex")),
            raft_term=decode_int(body.get("raftTerm")),
            errors=list(body.get("errors", [])),
        )


@dataclass(frozen=True)
class Member:
    """A cluster member as etcd lists it; `name` is empty for a member added but not started yet."""

    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str]
    is_learner: bool = False

    @classmethod
    def from_json(cls, member: Json) -> Member:
        return cls(decode_int(member.get("ID")), member.get("name", ""), list(member.get("peerURLs", [])),
                   list(member.get("clientURLs", [])), bool(member.get("isLearner")))


def decode_members(body: Json) -> list[Member]:
    return [Member.from_json(member) for member in body.get("members", [])]


@dataclass(frozen=True)
class Health:
    """An endpoint's `/health` answer; `reason` says why it is not healthy."""

    endpoint: str
    healthy: bool
    reason: str = ""


@dataclass(frozen=True)
class WatchEvent:
    type: str  # "PUT" or "DELETE"
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @classmethod
    def from_json(cls, event: Json) -> WatchEvent:
        prev = event.get("prev_kv")
        return cls(event.get("type", "PUT"), KeyValue.from_json(event.get("kv", {})),
                   KeyValue.from_json(prev) if prev else None)


@dataclass(frozen=True)
class WatchResponse:
    """One message of a watch stream. A message without events is a creation notice or a progress notification:
    `revision` then says the watcher has seen everything up to it."""

    revision: int
    events: list[WatchEvent]
    created: bool = False

    @property
    def is_progress_notify(self) -> bool:
        return not self.events and not self.created
