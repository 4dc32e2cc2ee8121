"""The gateway requests and answers, without a server: encoding, ranges, stream lines and error translation."""
from __future__ import annotations

import base64
import json
import ssl

import httpx
import pytest

from kpy_components.etcd.calls import Compare, DeleteOp, GetOp, PutOp, prefix_range_end, txn_call, watch_body
from kpy_components.etcd.errors import (
    EtcdCompacted,
    EtcdConnectionError,
    EtcdFutureRevision,
    EtcdNoLeader,
    EtcdProtocolError,
    EtcdServerError,
    EtcdTimeout,
    EtcdUnavailable,
)
from kpy_components.etcd.results import RangeResult, TxnResult
from kpy_components.etcd.streams import snapshot_chunk, stream_result, watch_response
from kpy_components.etcd.transport import RequestNotSent, decode_answer, normalize_endpoints, translated_errors


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("prefix, end", [
    (b"/registry/", b"/registry0"), (b"a\xff", b"b"), (b"\xff\xff", b"\0"), (b"", b"\0"), ("k", b"l")])
def test_prefix_range_end(prefix, end):
    assert prefix_range_end(prefix) == end


def test_get_op_body_encodes_keys_and_int64_as_strings():
    assert GetOp("/a/", prefix=True, revision=7, limit=2, keys_only=True).body() == {
        "key": b64(b"/a/"), "range_end": b64(b"/a0"), "revision": "7", "limit": "2", "keys_only": True}
    assert GetOp("", prefix=True).body() == {"key": b64(b"\0"), "range_end": b64(b"\0")}
    with pytest.raises(ValueError, match="either prefix=True or range_end"):
        GetOp("a", range_end="b", prefix=True).body()


def test_txn_body():
    call = txn_call([Compare.mod_revision("k", "=", 5), Compare.version("n", "!=", 0)],
                    [PutOp("k", b"v", lease=9)], [GetOp("k"), DeleteOp("d", prev_kv=True)])
    assert call.path == "/v3/kv/txn"
    assert call.body == {
        "compare": [{"key": b64(b"k"), "target": "MOD", "result": "EQUAL", "mod_revision": "5"},
                    {"key": b64(b"n"), "target": "VERSION", "result": "NOT_EQUAL", "version": "0"}],
        "success": [{"request_put": {"key": b64(b"k"), "value": b64(b"v"), "lease": "9"}}],
        "failure": [{"request_range": {"key": b64(b"k")}},
                    {"request_delete_range": {"key": b64(b"d"), "prev_kv": True}}]}
    with pytest.raises(ValueError, match="comparison '~'"):
        Compare.value("k", "~", "v")


def test_results_parse_proto3_json_with_omitted_zero_values():
    answer = {"header": {"revision": "12"}, "kvs": [{"key": b64(b"k"), "mod_revision": "3"}], "count": "1"}
    result = RangeResult.from_json(answer)
    assert result.revision == 12 and result.count == 1 and not result.more
    kv = result.kvs[0]
    assert (kv.key, kv.value, kv.version, kv.mod_revision, kv.lease) == (b"k", b"", 0, 3, 0)
    txn = TxnResult.from_json({"header": {"revision": "4"}, "responses": [{"response_put": {"header": {}}}]})
    assert not txn.succeeded and txn.revision == 4
    with pytest.raises(EtcdProtocolError, match="not base64"):
        RangeResult.from_json({"kvs": [{"key": "!!"}]})


def test_watch_body_and_messages():
    assert watch_body("/p/", prefix=True, start_revision=3, prev_kv=True) == {"create_request": {
        "key": b64(b"/p/"), "range_end": b64(b"/p0"), "start_revision": "3", "prev_kv": True}}
    line = json.dumps({"result": {"header": {"revision": "9"}, "events": [
        {"type": "DELETE", "kv": {"key": b64(b"/p/a"), "mod_revision": "9"}}, {"kv": {"key": b64(b"/p/b")}}]}})
    response = watch_response(stream_result(line))
    assert response.revision == 9 and [e.type for e in response.events] == ["DELETE", "PUT"]
    progress = watch_response(stream_result('{"result": {"header": {"revision": "10"}}}'))
    assert progress.is_progress_notify and progress.revision == 10


def test_cancelled_watches_raise():
    with pytest.raises(EtcdCompacted) as raised:
        watch_response(stream_result('{"result": {"canceled": true, "compact_revision": "42"}}'))
    assert raised.value.compact_revision == 42
    with pytest.raises(EtcdServerError, match="permission denied"):
        watch_response({"canceled": True, "cancel_reason": "permission denied"})


def test_stream_error_and_garbage_lines():
    with pytest.raises(EtcdNoLeader):
        stream_result('{"error": {"grpc_code": 14, "message": "etcdserver: no leader"}}')
    for garbage in ("not json", "[1]", '{"neither": 1}'):
        with pytest.raises(EtcdProtocolError):
            stream_result(garbage)
    assert snapshot_chunk({"blob": b64(b"db"), "remaining_bytes": "5"}) == (b"db", 5)


@pytest.mark.parametrize("status, body, error", [
    (400, {"error": "etcdserver: mvcc: required revision has been compacted", "code": 11}, EtcdCompacted),
    (400, {"error": "etcdserver: mvcc: required revision is a future revision", "code": 11}, EtcdFutureRevision),
    (503, {"error": "etcdserver: request timed out", "code": 14}, EtcdNoLeader),
    (400, {"error": "etcdserver: key is not provided", "code": 3}, EtcdServerError),
])
def test_error_answers_become_our_exceptions(status, body, error):
    with pytest.raises(error) as raised:
        decode_answer("https://e:2379", status, json.dumps(body).encode())
    assert raised.value.code == body["code"] and "https://e:2379" in str(raised.value)
    assert isinstance(EtcdNoLeader("x"), EtcdUnavailable)


def test_non_json_answer_hints_at_the_gateway():
    with pytest.raises(EtcdProtocolError, match="gRPC gateway enabled"):
        decode_answer("https://e:2379", 404, b"404 page not found")


def test_endpoints():
    assert normalize_endpoints("https://a:2379/, https://b:2379") == ["https://a:2379", "https://b:2379"]
    with pytest.raises(ValueError, match="no etcd endpoint"):
        normalize_endpoints([])
    with pytest.raises(ValueError, match="not an http"):
        normalize_endpoints(["a:2379"])


@pytest.mark.parametrize("raised, expected, words", [
    (httpx.ConnectError("[Errno 111] Connection refused"), RequestNotSent, "cannot connect"),
    (httpx.ConnectTimeout("handshake"), RequestNotSent, "timed out connecting"),
    (httpx.ReadTimeout("slow"), EtcdTimeout, "no answer in time"),
    (httpx.ReadError("[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"), EtcdConnectionError,
     "etcd refused our client certificate"),
    (httpx.RemoteProtocolError("server disconnected"), EtcdConnectionError, "connection failed"),
    (ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"), EtcdConnectionError,
     "etcd refused our client certificate"),
])
def test_httpx_errors_are_translated_naming_the_endpoint(raised, expected, words):
    with pytest.raises(expected) as caught, translated_errors("https://e:2379"):
        raise raised
    assert str(caught.value).startswith("https://e:2379: ") and words in str(caught.value)
    assert isinstance(caught.value, EtcdUnavailable) and caught.value.__cause__ is raised
