"""Stand-in kubelets for the API server's tests: `serving_context` (TLS on 127.0.0.1 with a kubelet serving
certificate from the dev cluster's CA, client certificates required) and `running`, a kubelet that serves /exec and
/portForward as the runtime's streaming server speaks them (SPDY/3.1; remotecommand v4; portforward.k8s.io) over real local processes and sockets:

- /exec/<ns>/<pod>/<container>?command=…: runs the command as a local process and relays stdin/stdout/stderr, then
  reports the exit on the error stream as a Status (NonZeroExitCode with an ExitCode cause), as the kubelet does;
  container "stopped" is answered 404 `container not found ("stopped")`, as the kubelet answers a container that
  is not running;
- /attach/<ns>/<pod>/<container>: the same with `echo attached` (then `cat` of stdin, with stdin) standing for the
  container's process;
- /portForward/<ns>/<pod>: each data stream is connected to 127.0.0.1:<its port header>.

It stands in only for the kubelet: the API server, kubectl and the SPDY on both hops are the real ones.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from kpy_components.pki import issue, keys
from kpy_components.pki.profiles import WantedCert
from kpy_components.streaming import spdy, upgrade

STREAM_TIMEOUT = 30.0  # seconds for the client to open every stream it announced


@dataclass
class Seen:
    """One request as the stand-in received it."""
    path: str
    query: list[tuple[str, str]]
    client: str  # the caller's certificate CN
    protocols: list[str]  # X-Stream-Protocol-Version values offered


@dataclass
class StandInKubelet:
    port: int = 0
    seen: list[Seen] = field(default_factory=list)


def serving_context(directory: Path, node: str) -> ssl.SSLContext:
    """A kubelet serving certificate of `node` for 127.0.0.1 from the dev cluster's CA in `directory`, requiring
    client certificates signed by it."""
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    ca_key = load_pem_private_key((directory / "ca.key").read_bytes(), None)
    wanted = WantedCert(id="kubelet", path="kubelet", ca="ca", cn=f"system:node:{node}",
                        organizations=("system:nodes",),
                        sans=frozenset({x509.IPAddress(ipaddress.ip_address("127.0.0.1"))}),
                        usages=frozenset({"server"}), key_type="ecdsa-p256", lifetime_days=1, host=None)
    cert, key = issue.issue(wanted, ca_cert, ca_key, datetime.datetime.now(datetime.timezone.utc))
    (directory / f"{node}-kubelet.crt").write_bytes(cert.public_bytes(Encoding.PEM))
    (directory / f"{node}-kubelet.key").write_bytes(keys.private_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / f"{node}-kubelet.crt", directory / f"{node}-kubelet.key")
    context.load_verify_locations(directory / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _status(code: int) -> bytes:
    if code == 0:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    return json.dumps({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                       "message": f"command terminated with non-zero exit code: exit status {code}",
                       "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}).encode()


async def _accept_all(connection: spdy.Connection, count: int) -> dict[str, spdy.Stream]:
    streams = {}
    async with asyncio.timeout(STREAM_TIMEOUT):
        while len(streams) < count:
            stream = await connection.accept()
            if stream is None:
                break
            await stream.reply()
            streams[stream.headers.get("streamtype", "")] = stream
    return streams


async def _exec(connection: spdy.Connection, request: web.Request) -> None:
    query = request.query
    wanted = [name for name, key in (("stdin", "input"), ("stdout", "output"), ("stderr", "error"))
              if query.get(key) == "1"]
    streams = await _accept_all(connection, 1 + len(wanted))
    command = query.getall("command") if request.path.startswith("/exec/") else \
        ["sh", "-c", "echo attached; cat" if "stdin" in streams else "echo attached"]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE if "stdin" in streams else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def feed() -> None:
        while data := await streams["stdin"].read():
            process.stdin.write(data)
            await process.stdin.drain()
        process.stdin.close()

    async def copy(source: asyncio.StreamReader, name: str) -> None:
        while data := await source.read(65536):
            if name in streams:
                await streams[name].write(data)

    feeding = asyncio.ensure_future(feed()) if "stdin" in streams else None
    await asyncio.gather(copy(process.stdout, "stdout"), copy(process.stderr, "stderr"))
    code = await process.wait()
    if feeding:
        feeding.cancel()
    await streams["error"].write(_status(code))
    for stream in streams.values():
        await stream.close()


async def _port_forward(connection: spdy.Connection) -> None:
    async def forward(stream: spdy.Stream) -> None:
        await stream.reply()
        if stream.headers.get("streamtype") != "data":
            return  # the error stream: nothing to report unless the dial fails
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", int(stream.headers["port"]))
        except OSError as error:
            await stream.write(str(error).encode())
            await stream.close()
            return

        async def up() -> None:
            while data := await stream.read():
                writer.write(data)
                await writer.drain()
            writer.write_eof()

        async def down() -> None:
            while data := await reader.read(65536):
                await stream.write(data)
            await stream.close()

        with contextlib.suppress(ConnectionError):
            await asyncio.gather(up(), down())
        writer.close()

    tasks = []
    while (stream := await connection.accept()) is not None:
        tasks.append(asyncio.ensure_future(forward(stream)))
    for task in tasks:
        task.cancel()


def _app(state: StandInKubelet) -> web.Application:
    async def serve(request: web.Request) -> web.StreamResponse:
        client = dict(x[0] for x in request.transport.get_extra_info("peercert")["subject"])["commonName"]
        protocols = request.headers.getall("X-Stream-Protocol-Version", [])
        state.seen.append(Seen(request.path, list(request.query.items()), client, protocols))
        forwarding = request.path.startswith("/portForward/")
        if not forwarding and request.match_info["container"] == "stopped":
            return web.Response(status=404, text='container not found ("stopped")')
        protocol = "portforward.k8s.io" if forwarding else "v4.channel.k8s.io"
        if request.headers.get("Upgrade", "").lower() != "spdy/3.1" or protocol not in protocols:
            return web.Response(status=400, text=f"expected an SPDY/3.1 upgrade offering {protocol}")
        client_side = await upgrade.switch(request, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                     "X-Stream-Protocol-Version": protocol})
        connection = spdy.Connection(client_side, client=False)
        serving = asyncio.ensure_future(connection.serve())
        try:
            await (_port_forward(connection) if forwarding else _exec(connection, request))
        finally:
            await connection.close()
            serving.cancel()
        return client_side.response

    app = web.Application()
    for path in ("/exec/{namespace}/{pod}/{container}", "/attach/{namespace}/{pod}/{container}",
                 "/portForward/{namespace}/{pod}"):
        app.router.add_post(path, serve)
    return app


@contextlib.contextmanager
def running(directory: Path):
    """The stand-in kubelet on a free port of 127.0.0.1, served from its own thread and event loop."""
    state, started, stop = StandInKubelet(), threading.Event(), None
    loop = asyncio.new_event_loop()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        runner = web.AppRunner(_app(state), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        state.port = sock.getsockname()[1]
        await web.SockSite(runner, sock, ssl_context=serving_context(directory, "stream-node")).start()
        started.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not started.wait(timeout=30):
        raise RuntimeError("the stand-in kubelet did not start")
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
