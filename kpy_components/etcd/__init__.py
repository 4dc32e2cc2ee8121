"""kpy's etcd wrapper: the cluster model, etcd's rendered configuration, a v3 client, snapshots and the `kpy-etcd` CLI.

Other kpy components import the client from here:

    from kpy_components.etcd import EtcdClient, TLSFiles
"""
from kpy_components.etcd.client import AsyncEtcdClient, EtcdClient
from kpy_components.etcd.errors import (
    EtcdCompacted,
    EtcdConnectionError,
    EtcdError,
    EtcdFutureRevision,
    EtcdNoLeader,
    EtcdProtocolError,
    EtcdServerError,
    EtcdTimeout,
    EtcdUnavailable,
)
from kpy_components.etcd.calls import Compare, DeleteOp, GetOp, PutOp
from kpy_components.etcd.transport import TLSFiles

__all__ = [
    "AsyncEtcdClient",
    "Compare",
    "DeleteOp",
    "EtcdClient",
    "EtcdCompacted",
    "EtcdConnectionError",
    "EtcdError",
    "EtcdFutureRevision",
    "EtcdNoLeader",
    "EtcdProtocolError",
    "EtcdServerError",
    "EtcdTimeout",
    "EtcdUnavailable",
    "GetOp",
    "PutOp",
    "TLSFiles",
]
