"""The etcd backend's translation of the etcd client's errors into the storage's (talking to a real etcd is the
integration contract suite's job; here nothing listens on the port, or the errors are raised directly)."""
import socket

import pytest

from kpy_components.apiserver.storage.etcd import EtcdStorage, etcd_errors
from kpy_components.apiserver.storage.interface import Compacted, FutureRevision, StorageError, Unavailable
from kpy_components.etcd import AsyncEtcdClient
from kpy_components.etcd.errors import (
    EtcdCompacted,
    EtcdFutureRevision,
    EtcdNoLeader,
    EtcdProtocolError,
    EtcdServerError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    storage = EtcdStorage(AsyncEtcdClient(f"http://127.0.0.1:{port}", timeout=2))
    yield storage
    await storage.close()


async def test_an_unreachable_etcd_is_unavailable_for_every_operation(unreachable):
    with pytest.raises(Unavailable, match="etcd is unavailable"):
        await unreachable.get("/registry/pods/ns/a")
    with pytest.raises(Unavailable):
        await unreachable.create("/registry/pods/ns/a", {"metadata": {"name": "a"}})
    with pytest.raises(Unavailable):
        await unreachable.list("/registry/pods/")
    with pytest.raises(Unavailable):
        await anext(unreachable.watch("/registry/pods/", 1))


@pytest.mark.parametrize("error, expected", [
    (EtcdCompacted("mvcc: required revision has been compacted", 8), Compacted),
    (EtcdFutureRevision("mvcc: required revision is a future revision", 11), FutureRevision),
    (EtcdNoLeader("etcdserver: no leader", 14), Unavailable),
    (EtcdServerError("etcdserver: request is too large", 3), StorageError),
    (EtcdProtocolError("not a gateway answer"), StorageError),
])
def test_etcd_errors_become_storage_errors(error, expected):
    with pytest.raises(expected) as raised:
        with etcd_errors(requested=5):
            raise error
    assert raised.value.__cause__ is error
    if expected is Compacted:
        assert (raised.value.requested, raised.value.compacted) == (5, 7)
        assert "oldest available is 8" in str(raised.value)
