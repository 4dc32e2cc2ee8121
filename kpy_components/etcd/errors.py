"""The one exception tree of the etcd client: no exception of the HTTP library escapes it.

    EtcdError
    ├── EtcdUnavailable          retry later, possibly against another member
    │   ├── EtcdConnectionError  no connection: refused, reset, TLS handshake or certificate rejected
    │   ├── EtcdTimeout          connected, but no answer in time
    │   └── EtcdNoLeader         etcd answered: no leader / request timed out inside raft (also an EtcdServerError)
    ├── EtcdServerError          etcd answered with a gRPC error (code, message)
    │   ├── EtcdCompacted        the revision asked for was compacted (`compact_revision` is the oldest one left)
    │   └── EtcdFutureRevision   the revision asked for is newer than the store
    └── EtcdProtocolError        the answer was not what etcd's v3 gateway sends
"""
from __future__ import annotations

# gRPC status codes that etcd uses (google.golang.org/grpc/codes).
GRPC_DEADLINE_EXCEEDED = 4
GRPC_OUT_OF_RANGE = 11
GRPC_UNAVAILABLE = 14


class EtcdError(Exception):
    """Base of every error the etcd client raises."""


class EtcdUnavailable(EtcdError):
    """The request did not get an answer from a working member; it may succeed later or on another member."""


class EtcdConnectionError(EtcdUnavailable):
    """No usable connection to the endpoint (refused, reset, TLS handshake or client certificate rejected)."""


class EtcdTimeout(EtcdUnavailable):
    """The endpoint accepted the connection but did not answer in time."""


class EtcdServerError(EtcdError):
    """etcd answered the request with an error."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message


class EtcdNoLeader(EtcdServerError, EtcdUnavailable):
    """etcd could not serve the request through raft right now (no leader, or raft timed out)."""


class EtcdCompacted(EtcdServerError):
    """The requested revision was compacted away; `compact_revision` (0 when etcd did not say) is the oldest kept."""

    def __init__(self, message: str, compact_revision: int = 0):
        super().__init__(message, GRPC_OUT_OF_RANGE)
        self.compact_revision = compact_revision


class EtcdFutureRevision(EtcdServerError):
    """The requested revision is newer than the store's current revision."""


class EtcdProtocolError(EtcdError):
    """The answer could not be understood as a reply of etcd's v3 JSON gateway."""


def server_error(code: int, message: str) -> EtcdServerError:
    """The most specific exception for an error etcd reported (gRPC `code` and etcd's `message`)."""
    if code == GRPC_OUT_OF_RANGE and "compacted" in message:
        return EtcdCompacted(message)
    if code == GRPC_OUT_OF_RANGE and "future revision" in message:
        return EtcdFutureRevision(message, code)
    if code in (GRPC_UNAVAILABLE, GRPC_DEADLINE_EXCEEDED):
        return EtcdNoLeader(message, code)
    return EtcdServerError(message, code)


class SnapshotError(EtcdError):
    """A snapshot could not be saved, verified or restored."""
