"""The etcd client against a real 1-member etcd 3.4 with client-certificate auth."""
from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from kpy_components.etcd import (
    AsyncEtcdClient,
    Compare,
    DeleteOp,
    EtcdClient,
    EtcdCompacted,
    EtcdConnectionError,
    EtcdFutureRevision,
    GetOp,
    PutOp,
    TLSFiles,
)


def test_put_get_and_range(etcd):
    client, prefix = etcd
    first = client.put(prefix + "a", b"\x00binary\xff")
    client.put(prefix + "b", "two")
    client.put(prefix + "c", "three")
    kv = client.get(prefix + "a")
    assert kv.value == b"\x00binary\xff"
    assert kv.create_revision == kv.mod_revision == first.revision and kv.version == 1
    assert client.get(prefix + "missing") is None
    everything = client.range(prefix, prefix=True)
    assert [kv.key for kv in everything.kvs] == [f"{prefix}{k}".encode() for k in "abc"]
    assert everything.count == 3 and not everything.more
    page = client.range(prefix, prefix=True, limit=2)
    assert len(page.kvs) == 2 and page.more and page.count == 3
    half_open = client.range(prefix + "a", range_end=prefix + "c", keys_only=True)
    assert [kv.key for kv in half_open.kvs] == [f"{prefix}a".encode(), f"{prefix}b".encode()]
    assert half_open.kvs[0].value == b""


def test_read_at_an_older_revision(etcd):
    client, prefix = etcd
    old = client.put(prefix + "k", "v1").revision
    client.put(prefix + "k", "v2")
    assert client.get(prefix + "k", revision=old).value == b"v1"
    assert client.get(prefix + "k").value == b"v2"
    with pytest.raises(EtcdFutureRevision):
        client.get(prefix + "k", revision=old + 10_000)


def test_txn_compare_and_swap(etcd):
    client, prefix = etcd
    key = prefix + "cas"
    created = client.txn([Compare.version(key, "=", 0)], [PutOp(key, "1")], [GetOp(key)])
    assert created.succeeded
    again = client.txn([Compare.version(key, "=", 0)], [PutOp(key, "x")], [GetOp(key)])
    assert not again.succeeded and again.responses[0].kvs[0].value == b"1"
    current = client.get(key)
    swapped = client.txn([Compare.mod_revision(key, "=", current.mod_revision)], [PutOp(key, "2")], [GetOp(key)])
    assert swapped.succeeded and swapped.revision > current.mod_revision
    stale = client.txn([Compare.mod_revision(key, "=", current.mod_revision)], [PutOp(key, "3")], [GetOp(key)])
    assert not stale.succeeded
    assert stale.responses[0].kvs[0].value == b"2"
    by_value = client.txn([Compare.value(key, "=", "2")], [DeleteOp(key, prev_kv=True)])
    assert by_value.succeeded and by_value.responses[0].prev_kvs[0].value == b"2"
    assert client.get(key) is None


def test_delete_single_and_prefix(etcd):
    client, prefix = etcd
    for name in ("x", "y", "z"):
        client.put(prefix + name, name)
    one = client.delete(prefix + "x", prev_kv=True)
    assert one.deleted == 1 and one.prev_kvs[0].value == b"x"
    assert client.delete(prefix + "x").deleted == 0
    assert client.delete(prefix, prefix=True).deleted == 2
    assert client.range(prefix, prefix=True).count == 0


def test_lease_expires_keys_with_it(etcd):
    client, prefix = etcd
    lease = client.lease_grant(60)
    assert lease.ttl == 60
    client.put(prefix + "leased", "v", lease=lease.id)
    assert client.get(prefix + "leased").lease == lease.id
    client.lease_revoke(lease.id)
    assert client.get(prefix + "leased") is None


def test_watch_sees_puts_and_deletes_from_a_revision(etcd):
    client, prefix = etcd
    start = client.put(prefix + "w1", "a").revision
    client.put(prefix + "w2", "b")
    client.delete(prefix + "w1")
    events = []
    with client.watch(prefix, prefix=True, start_revision=start, prev_kv=True) as responses:
        for response in responses:
            events.extend(response.events)
            if len(events) >= 3:
                break
    assert [(e.type, e.kv.key) for e in events] == [
        ("PUT", f"{prefix}w1".encode()), ("PUT", f"{prefix}w2".encode()), ("DELETE", f"{prefix}w1".encode())]
    assert events[2].prev_kv.value == b"a"


def test_watch_receives_a_write_made_while_watching(etcd):
    client, prefix = etcd
    with client.watch(prefix + "live") as responses:
        created = next(responses)
        assert created.created and not created.events
        writer = threading.Thread(target=lambda: client.put(prefix + "live", "now"))
        writer.start()
        event = next(responses).events[0]
        writer.join()
    assert (event.type, event.kv.value) == ("PUT", b"now")


def test_compaction_surfaces_as_etcd_compacted(etcd):
    client, prefix = etcd
    old = client.put(prefix + "h", "1").revision
    latest = client.put(prefix + "h", "2").revision
    client.compact(latest, physical=True)
    with pytest.raises(EtcdCompacted):
        client.get(prefix + "h", revision=old)
    with pytest.raises(EtcdCompacted) as raised:
        with client.watch(prefix + "h", start_revision=old) as responses:
            for _ in responses:
                pass
    assert raised.value.compact_revision == latest
    assert client.get(prefix + "h").value == b"2"


def test_status_and_members_of_one_member(etcd1, etcd):
    client, _ = etcd
    status = client.status()
    assert status.version.startswith("3.4.") and status.is_leader and status.db_size > 0
    [member] = client.members()
    assert member.name == "m0" and member.id == status.member_id
    assert member.client_urls == etcd1.endpoints


def test_health_of_a_member(etcd1, etcd):
    client, _ = etcd
    health = client.health(etcd1.endpoints[0])
    assert health.healthy, health.reason


def test_a_client_without_a_certificate_is_refused(etcd1):
    with EtcdClient(etcd1.endpoints, TLSFiles(etcd1.ca.ca_file)) as anonymous:
        with pytest.raises(EtcdConnectionError):  # the TLS alert, or a reset/broken pipe if our write races it
            anonymous.get("/anything")
        health = anonymous.health(etcd1.endpoints[0])
    assert not health.healthy and "connection failed" in health.reason


def test_a_client_with_a_certificate_of_another_ca_is_refused(etcd1, stranger_ca):
    cert, key = stranger_ca.issue("intruder", server=False)
    with EtcdClient(etcd1.endpoints, TLSFiles(etcd1.ca.ca_file, cert, key)) as intruder:
        with pytest.raises(EtcdConnectionError):
            intruder.put("/intrusion", "x")


def test_unreachable_endpoint_fails_over_to_the_next(etcd1, etcd):
    _, prefix = etcd
    dead = "https://127.0.0.1:1"
    with EtcdClient([dead, *etcd1.endpoints], etcd1.tls) as client:
        client.put(prefix + "failover", "ok")
        assert client.get(prefix + "failover").value == b"ok"
    with EtcdClient([dead], etcd1.tls) as client, pytest.raises(EtcdConnectionError, match="127.0.0.1:1"):
        client.get(prefix + "failover")


def test_async_client_put_get_txn_and_watch(etcd1, etcd):
    _, prefix = etcd

    async def scenario():
        async with AsyncEtcdClient(etcd1.endpoints, etcd1.tls) as client:
            start = (await client.put(prefix + "async", "1")).revision
            kv = await client.get(prefix + "async")
            swapped = await client.txn([Compare.mod_revision(prefix + "async", "=", kv.mod_revision)],
                                       [PutOp(prefix + "async", "2")])
            values = []
            async with client.watch(prefix + "async", start_revision=start) as responses:
                async for response in responses:
                    values.extend(event.kv.value for event in response.events)
                    if len(values) == 2:
                        break
            return swapped.succeeded, values

    assert asyncio.run(scenario()) == (True, [b"1", b"2"])


def test_async_client_health_members_and_refusal(etcd1):
    async def scenario():
        async with AsyncEtcdClient(etcd1.endpoints, etcd1.tls) as client:
            health = await client.health(etcd1.endpoints[0])
            members = await client.members()
        async with AsyncEtcdClient(etcd1.endpoints, TLSFiles(etcd1.ca.ca_file)) as anonymous:
            with pytest.raises(EtcdConnectionError):  # the alert, or a reset/broken pipe if our write races it
                await anonymous.get("/anything")
        return health, members

    health, members = asyncio.run(scenario())
    assert health.healthy and [m.name for m in members] == ["m0"]


class CountingProxy:
    """A TCP forwarder on loopback to one etcd member that counts the connections clients open through it (TLS
    passes through untouched: the member's certificate names 127.0.0.1)."""

    def __init__(self, endpoint: str):
        host_port = endpoint.split("://", 1)[1]
        self.target_host, self.target_port = host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1])
        self.accepted = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        return f"https://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc_info) -> None:
        self._server.close()

    async def _forward(self, client_reader, client_writer) -> None:
        self.accepted += 1
        member_reader, member_writer = await asyncio.open_connection(self.target_host, self.target_port)

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()
        await asyncio.gather(pipe(client_reader, member_writer), pipe(member_reader, client_writer))


WATCH_STREAMS = 32  # about as many as an API server's watch cache keeps open (one per resource prefix)


def test_unary_calls_reuse_connections_while_many_watches_are_open(etcd1, etcd):
    _, prefix = etcd
    proxy = CountingProxy(etcd1.endpoints[0])

    async def scenario() -> tuple[int, int]:
        async with proxy as endpoint, AsyncEtcdClient([endpoint], etcd1.tls) as client:
            async with contextlib.AsyncExitStack() as watches:
                for index in range(WATCH_STREAMS):
                    await watches.enter_async_context(client.watch(f"{prefix}w{index}/", prefix=True))
                for_watches = proxy.accepted
                for index in range(40):
                    await client.put(prefix + "k", str(index))
                    assert (await client.get(prefix + "k")).value == str(index).encode()
                return for_watches, proxy.accepted - for_watches

    for_watches, for_unary_calls = asyncio.run(scenario())
    assert for_watches == WATCH_STREAMS
    assert for_unary_calls <= 2, f"80 unary calls opened {for_unary_calls} connections"
