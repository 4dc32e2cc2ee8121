"""The floor under any Python API server on etcd, for bench/apiserver.py to measure beside kpy-apiserver.

An aiohttp HTTPS server doing only what every create costs whatever else a server does: TLS set up as
kpy-apiserver's (`tls_context`) with a client certificate, read and parse the JSON body, one create txn
(mod_revision == 0 → put) through kpy's etcd client, follow the etcd watch and decode every event (as a watch
cache must), answer the object as JSON. No authentication or authorization, admission, defaulting, validation,
managedFields or caching. It answers `GET /readyz` and `POST /api/v1/namespaces/{namespace}/configmaps`, the two
calls the bench's throughput phase makes, so the same measuring code drives it and kpy-apiserver.

Usage (bench/apiserver.py starts it): python bench/bare_front.py PKI_DIR PORT ETCD_URL ETCD_CA ETCD_CERT ETCD_KEY
PKI_DIR is a dev PKI (`kpy_components.apiserver.dev.prepare`): its ca.crt, apiserver.crt and apiserver.key.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kpy_components.apiserver.config import TLSConfig  # noqa: E402
from kpy_components.apiserver.server import tls_context  # noqa: E402
from kpy_components.etcd import AsyncEtcdClient  # noqa: E402
from kpy_components.etcd.calls import Compare, GetOp, PutOp  # noqa: E402
from kpy_components.etcd.transport import TLSFiles  # noqa: E402

PREFIX = "/bare-front/"


async def serve(pki: Path, port: int, etcd: AsyncEtcdClient) -> None:
    async def follow() -> None:
        async with etcd.watch(PREFIX, prefix=True, prev_kv=True) as responses:
            async for response in responses:
                for change in response.events:
                    orjson.loads(change.kv.value)

    async def create(request: web.Request) -> web.Response:
        obj = orjson.loads(await request.read())
        key = f"{PREFIX}{request.match_info['namespace']}/{obj['metadata']['name']}"
        txn = await etcd.txn([Compare.mod_revision(key, "=", 0)], [PutOp(key, orjson.dumps(obj))], [GetOp(key)])
        if not txn.succeeded:
            return web.Response(status=409, text="exists")
        return web.Response(body=orjson.dumps(obj), status=201, content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    watching = asyncio.create_task(follow())
    app = web.Application()
    app.router.add_get("/readyz", ready)
    app.router.add_post("/api/v1/namespaces/{namespace}/configmaps", create)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls = TLSConfig(pki / "apiserver.crt", pki / "apiserver.key", pki / "ca.crt")
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls_context(tls)).start()
    await watching  # runs until the bench terminates this process


async def main(pki: str, port: str, endpoint: str, ca: str, cert: str, key: str) -> None:
    async with AsyncEtcdClient([endpoint], TLSFiles(ca, cert, key)) as etcd:
        await serve(Path(pki), int(port), etcd)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
