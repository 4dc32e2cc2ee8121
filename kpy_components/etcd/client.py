"""The etcd v3 client kpy uses everywhere (health checks, members, snapshots, the API server's storage).

It speaks etcd's v3 JSON gateway over HTTPS with a client certificate, in two flavours sharing every request and
parser (calls.py, results.py, streams.py): `EtcdClient` (blocking, through httpx) and `AsyncEtcdClient` (asyncio,
through aiohttp). Every error is one of kpy_components.etcd.errors.

Endpoints: requests go to the endpoint that last worked; when no connection can be made to it (so the request was
never sent), the next endpoint is tried. Requests that reached etcd are never retried here: a caller that knows its
request is idempotent may retry on EtcdUnavailable.

    with EtcdClient(["https://10.0.0.1:2379"], TLSFiles(ca, cert, key)) as etcd:
        etcd.put("/a", "1")
        kv = etcd.get("/a")
        with etcd.watch("/", prefix=True, start_revision=kv.mod_revision) as responses:
            for response in responses: ...
"""
from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import IO, Any

import aiohttp
import httpx
import orjson

from kpy_components.etcd import calls
from kpy_components.etcd.calls import Bytes, Call, Compare, DeleteOp, GetOp, Op, PutOp
from kpy_components.etcd.errors import EtcdError, EtcdProtocolError
from kpy_components.etcd.results import Health, KeyValue, RangeResult, WatchResponse
from kpy_components.etcd.streams import snapshot_chunk, stream_result, watch_response
from kpy_components.etcd.transport import (
    RequestNotSent,
    TLSFiles,
    decode_answer,
    normalize_endpoints,
    translated_aiohttp_errors,
    translated_errors,
)

DEFAULT_TIMEOUT = 10.0  # seconds for one unary request; streams wait for data without a time limit


def _first_kv(body: dict) -> KeyValue | None:
    kvs = RangeResult.from_json(body).kvs
    return kvs[0] if kvs else None


def _health(endpoint: str, status_code: int, content: bytes) -> Health:
    """etcd's /health: 200 {"health":"true"}, or 503 {"health":"false"} without a leader or with an alarm."""
    try:
        healthy = json.loads(content).get("health") == "true"
    except (ValueError, AttributeError):
        return Health(endpoint, False, f"HTTP {status_code}: answer is not JSON: {content[:80]!r}")
    return Health(endpoint, True) if healthy else Health(
        endpoint, False, f"HTTP {status_code}: etcd reports itself unhealthy (no leader, or an alarm is raised)")


class _Operations:
    """The unary operations, written once: `_run` returns the result (sync) or an awaitable of it (async)."""

    def _run(self, call: Call, endpoint: str | None = None) -> Any:
        raise NotImplementedError

    def get(self, key: Bytes, *, revision: int = 0, serializable: bool = False):
        """The KeyValue of `key`, or None when it does not exist."""
        op = GetOp(key, revision=revision, serializable=serializable)
        return self._run(Call(calls.range_call(op).path, op.body(), _first_kv))

    def range(self, key: Bytes, **options: Any):
        """A RangeResult; options are those of GetOp (range_end, prefix, revision, limit, keys_only, ...)."""
        return self._run(calls.range_call(GetOp(key, **options)))

    def put(self, key: Bytes, value: Bytes, *, lease: int = 0, prev_kv: bool = False):
        return self._run(calls.put_call(PutOp(key, value, lease, prev_kv)))

    def delete(self, key: Bytes, **options: Any):
        """A DeleteResult; options are those of DeleteOp (range_end, prefix, prev_kv)."""
        return self._run(calls.delete_call(DeleteOp(key, **options)))

    def txn(self, compare: list[Compare], success: list[Op] = (), failure: list[Op] = ()):
        """Run `success` if every comparison holds, else `failure`, atomically; a TxnResult."""
        return self._run(calls.txn_call(list(compare), list(success), list(failure)))

    def compact(self, revision: int, *, physical: bool = False):
        """Drop history before `revision`; the header revision is returned."""
        return self._run(calls.compact_call(revision, physical))

    def lease_grant(self, ttl: int):
        return self._run(calls.lease_grant_call(ttl))

    def lease_revoke(self, lease_id: int):
        return self._run(calls.lease_revoke_call(lease_id))

    def status(self, endpoint: str | None = None):
        """The Status of one member (`endpoint`, default: the current one)."""
        return self._run(calls.status_call(), endpoint)

    def members(self):
        return self._run(calls.member_list_call())


class _Endpoints:
    def __init__(self, endpoints: str | list[str] | tuple[str, ...]):
        self.urls = normalize_endpoints(endpoints)
        self._current = 0

    def candidates(self, endpoint: str | None) -> list[str]:
        """The endpoints to try in order: the one asked for, or all starting with the one that last worked."""
        if endpoint is not None:
            return [endpoint.rstrip("/")]
        return self.urls[self._current:] + self.urls[:self._current]

    def worked(self, url: str) -> None:
        if url in self.urls:
            self._current = self.urls.index(url)


# One pool for unary calls and streams (a new watch starts on an idle connection, without a TLS handshake).
# httpcore closes an idle connection whenever the pool holds more connections *in total* than
# max_keepalive_connections, so with httpx's default of 20 the ~32 long-lived watch streams of an API server made it
# drop nearly every keep-alive connection (a new TLS connection per request). Keep-alive room for the whole pool:
# open streams plus concurrent unary calls up to POOL_CONNECTIONS; beyond that a request waits for a free connection.
POOL_CONNECTIONS = 256
POOL_LIMITS = httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS)


def _http_options(tls: TLSFiles | None, timeout: float) -> dict:
    return {"verify": tls.ssl_context() if tls else True, "timeout": timeout, "limits": POOL_LIMITS,
            "headers": {"content-type": "application/json"}}


_STREAM_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT, read=None)


def _request(http: httpx.Client | httpx.AsyncClient, url: str, body: dict, stream: bool) -> httpx.Request:
    """A POST of `body`; a stream (watch, snapshot) may wait for data as long as it takes."""
    return http.build_request("POST", url, json=body,
                              timeout=_STREAM_TIMEOUT if stream else httpx.USE_CLIENT_DEFAULT)


class EtcdClient(_Operations):
    """Blocking etcd v3 client. Use as a context manager, or call close()."""

    def __init__(self, endpoints: str | list[str] | tuple[str, ...], tls: TLSFiles | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.endpoints = _Endpoints(endpoints)
        self._http = httpx.Client(**_http_options(tls, timeout))

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call, endpoint: str | None = None) -> Any:
        url, response = self._send(call.path, call.body, endpoint)
        return call.parse(decode_answer(url, response.status_code, response.content))

    def _send(self, path: str, body: dict, endpoint: str | None = None,
              stream: bool = False) -> tuple[str, httpx.Response]:
        """POST to the first endpoint that accepts a connection; a streamed response is closed by the caller."""
        unsent: RequestNotSent | None = None
        for url in self.endpoints.candidates(endpoint):
            try:
                with translated_errors(url):
                    response = self._http.send(_request(self._http, url + path, body, stream), stream=stream)
            except RequestNotSent as error:
                unsent = error
                continue
            self.endpoints.worked(url)
            return url, response
        raise unsent

    def health(self, endpoint: str) -> Health:
        """Whether one member answers /health as healthy; never raises EtcdError (the reason is in the Health)."""
        try:
            with translated_errors(endpoint):
                response = self._http.get(endpoint.rstrip("/") + "/health")
        except EtcdError as error:
            return Health(endpoint, False, str(error))
        return _health(endpoint, response.status_code, response.content)

    @contextmanager
    def _stream(self, path: str, body: dict) -> Iterator[tuple[str, Iterator[str]]]:
        url, response = self._send(path, body, stream=True)
        try:
            with translated_errors(url):
                if response.status_code >= 400:
                    decode_answer(url, response.status_code, response.read())
            yield url, response.iter_lines()
        finally:
            response.close()

    @contextmanager
    def watch(self, key: Bytes, **options: Any) -> Iterator[Iterator[WatchResponse]]:
        """Watch `key` (options: range_end, prefix, start_revision, prev_kv, progress_notify); yields an iterator of
        WatchResponse that ends only when the block is left. A compacted start revision raises EtcdCompacted."""
        with self._stream(calls.WATCH_PATH, calls.watch_body(key, **options)) as (url, lines):
            yield self._watch_responses(url, lines)

    @staticmethod
    def _watch_responses(url: str, lines: Iterator[str]) -> Iterator[WatchResponse]:
        with translated_errors(url):
            for line in lines:
                if line.strip():
                    yield watch_response(stream_result(line))

    def snapshot(self, out: IO[bytes]) -> int:
        """Stream a snapshot of the current member's database into `out`; the number of bytes written. The last 32
        bytes are etcd's sha256 of the rest (snapshot.verify_checksum checks it)."""
        written, remaining = 0, None
        with self._stream(calls.SNAPSHOT_PATH, {}) as (url, lines), translated_errors(url):
            for line in lines:
                if line.strip():
                    blob, remaining = snapshot_chunk(stream_result(line))
                    out.write(blob)
                    written += len(blob)
        if remaining != 0:
            raise EtcdProtocolError(f"{url}: the snapshot stream ended early ({remaining} bytes announced but "
                                    "not sent)")
        return written


class AsyncEtcdClient(_Operations):
    """asyncio etcd v3 client: the same operations as EtcdClient, awaited. Use `async with`, or await aclose().

    It speaks HTTP through aiohttp rather than httpx: on the API server's hot path (every create, update and
    quorum read is one call) httpx cost 2.5-4 ms of CPU per call against a local etcd, aiohttp 0.3-0.5 ms
    (headers and body in one TLS record and one send instead of two; no failing `import sniffio` per call in
    httpcore; no scan of every pooled connection per request). The session is opened on first use, inside the
    event loop that uses it."""

    def __init__(self, endpoints: str | list[str] | tuple[str, ...], tls: TLSFiles | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.endpoints = _Endpoints(endpoints)
        self._ssl: ssl.SSLContext | bool = tls.ssl_context() if tls else True
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=None)
        self._http: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> AsyncEtcdClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise EtcdError("the etcd client is closed")
        if self._http is None:
            # Keep-alive for every connection the pool holds (aiohttp closes idle ones only after a timeout, never
            # because open watch streams fill the pool); beyond POOL_CONNECTIONS a request waits for a free one.
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=POOL_CONNECTIONS)
            self._http = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                               headers={"content-type": "application/json"})
        return self._http

    async def _run(self, call: Call, endpoint: str | None = None) -> Any:
        url, response = await self._send(call.path, call.body, endpoint)
        async with response:
            with translated_aiohttp_errors(url):
                content = await response.read()
        return call.parse(decode_answer(url, response.status, content))

    async def _send(self, path: str, body: dict, endpoint: str | None = None,
                    stream: bool = False) -> tuple[str, aiohttp.ClientResponse]:
        """POST to the first endpoint that accepts a connection; the caller reads and releases the response."""
        payload = orjson.dumps(body)
        timeout = self._stream_timeout if stream else self._timeout
        unsent: RequestNotSent | None = None
        for url in self.endpoints.candidates(endpoint):
            try:
                with translated_aiohttp_errors(url):
                    response = await self._session().post(url + path, data=payload, timeout=timeout)
            except RequestNotSent as error:
                unsent = error
                continue
            self.endpoints.worked(url)
            return url, response
        raise unsent

    async def health(self, endpoint: str) -> Health:
        """Whether one member answers /health as healthy; never raises EtcdError (the reason is in the Health)."""
        try:
            with translated_aiohttp_errors(endpoint):
                async with self._session().get(endpoint.rstrip("/") + "/health") as response:
                    status, content = response.status, await response.read()
        except EtcdError as error:
            return Health(endpoint, False, str(error))
        return _health(endpoint, status, content)

    @asynccontextmanager
    async def watch(self, key: Bytes, **options: Any) -> AsyncIterator[AsyncIterator[WatchResponse]]:
        """As EtcdClient.watch, with an async iterator."""
        url, response = await self._send(calls.WATCH_PATH, calls.watch_body(key, **options), stream=True)
        try:
            with translated_aiohttp_errors(url):
                if response.status >= 400:
                    decode_answer(url, response.status, await response.read())
            yield self._watch_responses(url, response)
        finally:
            response.close()  # the stream's connection is not reusable mid-stream

    @staticmethod
    async def _watch_responses(url: str, response: aiohttp.ClientResponse) -> AsyncIterator[WatchResponse]:
        with translated_aiohttp_errors(url):
            async for line in response.content:  # lines of any length (tested)
                if line.strip():
                    yield watch_response(stream_result(line))

