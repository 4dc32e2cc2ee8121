"""API server benchmark: two real `kpy-apiserver` processes, one on SQLite (`--dev`) and one on a real single-member
etcd (mutual TLS on 127.0.0.1, started here), driven over HTTPS with the admin client certificate.

Prints, per server: create / get / update / list latency p50/p99 at 20 requests per second (the issue's target:
single-object p99 <= 100 ms), create throughput with concurrent clients and its ratio to raw etcd puts/s measured
through the same etcd client in the same run (target >= 50%), and how long a write takes to reach 100 watch
streams (target p99 <= 50 ms), and creates/s of a custom resource (a CRD with a typed schema) against ConfigMaps of
the same size in alternating slices (target >= 0.8x), and the p99 one validating webhook adds to a create beyond the
webhook's own time (target <= 10 ms). Bounded in time (about a minute), loopback only.

Where the time goes: the API server's CPU time per call in every phase (from /proc; robust to a busy machine,
where wall-clock latencies are not), and this process's CPU per API create and per raw etcd put (etcd's counts
etcd and its kpy-etcd supervisor). The 100 watch streams are read by a separate process, so that reading and
decoding 100 TLS streams does not queue behind the writer (or the writer behind them) in one event loop: what is
measured is the server's delivery.

The floor: bench/bare_front.py, a bare Python HTTPS front doing one etcd create txn per POST and nothing else, is
driven through the same throughput phase, so the creates/s ratio can be read against what no Python server on
this etcd client can exceed. etcd's and SQLite's files live in memory unless --disk is given (bench/storage.py's
MEMORY says why).

Usage: .venv/bin/python bench/apiserver.py [--samples 60] [--seconds 2] [--writers 16] [--disk]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import http.server
import importlib.util
import itertools
import json
import multiprocessing
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "tests" / "integration"))  # the integration tests' helpers, shared with the benches

from kpy_components.apiserver import dev  # noqa: E402
from kpy_components.etcd import AsyncEtcdClient  # noqa: E402
from processes import stop_process  # noqa: E402

RATE = 20.0  # requests per second for the latency phases
WATCHERS, FANOUT_WRITES = 100, 40
LIST_SIZE = 100
PHASE_SLICES = 4  # creates and raw puts alternate this many times
TARGET_P99_MS, TARGET_FANOUT_P99_MS, TARGET_CREATE_RATIO, TARGET_CUSTOM_RATIO = 100.0, 50.0, 0.5, 0.8
TARGET_WEBHOOK_MS = 10.0  # p99 a validating webhook call may add to a create, beyond the webhook's own time
START_TIMEOUT = 30.0
IDLE_SECONDS = 2.0  # the server's CPU while idle (TTL sweeps, leases, timers), measured before the phases
LOG_LEVEL = "info"  # as deployed (kube_apiserver_log_level): what each request logs is part of its cost
TICKS = os.sysconf("SC_CLK_TCK")
FLOOR = "bare front"  # bench/bare_front.py's results


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The storage bench's percentiles and the integration tests' etcd launcher (throwaway CA, `kpy-etcd run`).
storage_bench = _load("kpy_bench_storage", REPO / "bench" / "storage.py")
percentiles = storage_bench.percentiles


def admin_ssl_context(directory: Path) -> ssl.SSLContext:
    """TLS with the admin client certificate of a dev PKI directory."""
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    context.load_cert_chain(directory / "admin.crt", directory / "admin.key")
    return context


def admin_session(directory: Path) -> aiohttp.ClientSession:
    """An HTTPS session with the admin client certificate of a dev PKI directory."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=admin_ssl_context(directory), limit=0))


class Server:
    """A kpy-apiserver process and an HTTPS session speaking to it as the admin."""

    def __init__(self, label: str, directory: Path, port: int, command: list[str]):
        self.label, self.directory, self.port = label, directory, port
        self.log = directory / "apiserver.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        self.base = f"https://127.0.0.1:{port}"
        self.session: aiohttp.ClientSession | None = None

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    async def open(self) -> None:
        self.session = admin_session(self.directory)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label}: kpy-apiserver exited:\n{self.log.read_text()}")
            try:
                async with self.session.get(self.base + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: not ready after {START_TIMEOUT}s:\n{self.log.read_text()}")
            await asyncio.sleep(0.1)

    async def call(self, method: str, path: str, body: dict | None = None,
                   content_type: str = "application/json") -> dict:
        data = json.dumps(body).encode() if body is not None else None
        async with self.session.request(method, self.base + path, data=data,
                                        headers={"Content-Type": content_type}) as response:
            payload = await response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
            return json.loads(payload)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        stop_process(self.process, timeout=15)


def config_map(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "x" * 200}}


# A custom resource of the ConfigMap's size, its CRD with a typed schema (pruning, defaulting, validation all run).
BLOB_CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "blobs.bench.kpy.dev"},
            "spec": {"group": "bench.kpy.dev", "scope": "Namespaced", "names": {"plural": "blobs", "kind": "Blob"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {"spec": {"type": "object", "properties": {
                             "v": {"type": "string", "maxLength": 1000},
                             "size": {"type": "integer", "minimum": 0, "default": 1}}}}}}}]}}


def blob(name: str) -> dict:
    return {"apiVersion": "bench.kpy.dev/v1", "kind": "Blob", "metadata": {"name": name}, "spec": {"v": "x" * 200}}


class _Webhook(http.server.BaseHTTPRequestHandler):
    """Allows everything; records how long it took itself to answer each review (its own time). Keeps connections
    open (HTTP/1.1) and sends without Nagle's delay, as webhook servers (Go's net/http) do."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 - http.server's name
        started = time.perf_counter()
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": {"uid": review["request"]["uid"], "allowed": True}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.own.append(time.perf_counter() - started)

    def log_message(self, *args):
        pass


async def webhook_latency(server: Server, directory: Path, samples: int) -> tuple[float, float, float, float]:
    """Create p99 without and with one validating webhook (a TLS server in a thread of this process, matched by
    namespace), and the webhook's own p99 time: (plain p99, hooked p99, own p99, added p99) in ms."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = storage_bench.etcd_test_harness().ThrowawayCA(directory)
    cert, key = ca.issue("webhook", server=True)
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    hook.own = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    hook.socket = context.wrap_socket(hook.socket, server_side=True)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        for namespace in ("plain", "hooked"):
            await server.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                              "metadata": {"name": namespace}})
        bundle = base64.b64encode(ca.ca_file.read_bytes()).decode()
        await server.call("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "bench"}, "webhooks": [{
                "name": "bench.kpy.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"url": f"https://127.0.0.1:{hook.server_address[1]}/", "caBundle": bundle},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "hooked"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["configmaps"]}]}]})
        plain = await paced(samples, lambda n: server.call("POST", "/api/v1/namespaces/plain/configmaps",
                                                           config_map(f"w{n}")))
        hooked = await paced(samples, lambda n: server.call("POST", "/api/v1/namespaces/hooked/configmaps",
                                                            config_map(f"w{n}")))
        own = percentiles(hook.own[-samples:])
    finally:
        hook.shutdown()
    return plain[1], hooked[1], own[1], hooked[1] - plain[1] - own[1]


async def custom_vs_config_maps(server: Server, namespace: str, seconds: float, writers: int) -> dict:
    """Creates/s of a custom resource and of a ConfigMap, alternating in slices (target: CRs >= 0.8x)."""
    await server.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", BLOB_CRD)
    deadline = time.monotonic() + START_TIMEOUT
    while not any(c["type"] == "Established" and c["status"] == "True" for c in (await server.call(
            "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/blobs.bench.kpy.dev")).get(
            "status", {}).get("conditions", [])):
        if time.monotonic() > deadline:
            raise RuntimeError("the bench CRD was not established")
        await asyncio.sleep(0.05)
    names = itertools.count()
    paths = {"custom": (f"/apis/bench.kpy.dev/v1/namespaces/{namespace}/blobs", blob),
             "configmap": (f"/api/v1/namespaces/{namespace}/configmaps", config_map)}
    rates: dict[str, list[float]] = {kind: [] for kind in paths}
    for _ in range(PHASE_SLICES):
        for kind, (path, make) in paths.items():
            rates[kind].append(await storage_bench.rate(seconds / PHASE_SLICES, writers, lambda w, n, path=path,
                                                        make=make: server.call("POST", path, make(f"x{next(names)}"))))
    return {kind: statistics.mean(values) for kind, values in rates.items()}


async def paced(samples: int, operation) -> tuple[float, float]:
    """p50/p99 of `samples` calls started at RATE per second (a call that overruns delays the next)."""
    durations, interval = [], 1.0 / RATE
    next_start = time.perf_counter()
    for n in range(samples):
        await asyncio.sleep(max(0.0, next_start - time.perf_counter()))
        started = time.perf_counter()
        await operation(n)
        durations.append(time.perf_counter() - started)
        next_start += interval
    return percentiles(durations)


async def throughput(server: Server, namespace: str, seconds: float, writers: int, raw_put, etcd_pids: list[int]
                     ) -> dict:
    """API creates/s and raw etcd puts/s (0 without `raw_put`), alternating in slices so that load changes hit
    both alike; with the CPU ms each process (API server, this client, etcd) spends per create and per raw put."""
    names = itertools.count()
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    value = json.dumps(config_map("raw")).encode()
    rates: dict[str, list[float]] = {"creates": [], "puts": []}
    counts = {"creates": 0.0, "puts": 0.0}
    cpu = {(kind, process): 0.0 for kind in counts for process in ("server", "client", "etcd")}

    def cpu_now() -> dict[str, float]:
        return {"server": server.cpu(), "client": time.process_time(),
                "etcd": sum(cpu_seconds(pid) for pid in etcd_pids)}

    async def timed(kind: str, operation) -> None:
        before, started = cpu_now(), time.perf_counter()
        per_second = await storage_bench.rate(seconds / PHASE_SLICES, writers, operation)
        counts[kind] += per_second * (time.perf_counter() - started)
        rates[kind].append(per_second)
        for process, value_now in cpu_now().items():
            cpu[kind, process] += value_now - before[process]

    for _ in range(PHASE_SLICES if raw_put else 1):
        await timed("creates", lambda w, n: server.call("POST", path, config_map(f"t{next(names)}")))
        if raw_put:
            await timed("puts", lambda w, n: raw_put(f"/bench-raw/{w}-{n}", value))
    return {"creates/s": statistics.mean(rates["creates"]),
            "raw puts/s": statistics.mean(rates["puts"]) if rates["puts"] else 0.0,
            "cpu ms": {key: spent * 1000 / counts[key[0]] if counts[key[0]] else 0.0 for key, spent in cpu.items()}}


class RawWatchStream(asyncio.Protocol):
    """One watch stream read as bytes over TLS: each received piece is kept with its arrival time, nothing is
    parsed until the end (an HTTP client's parsing of 2,000 lines/s cost as much CPU as the server's sending)."""

    def __init__(self, request: bytes, opened: asyncio.Future, done: asyncio.Future):
        self.request, self.opened, self.done = request, opened, done
        self.pieces: list[tuple[bytes, float]] = []
        self.added = 0

    def connection_made(self, transport) -> None:
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.pieces.append((data, time.monotonic()))
        if not self.opened.done():
            self.opened.set_result(data.split(b"\r\n", 1)[0])  # the status line
        self.added += data.count(b'"type":"ADDED"')
        if self.added >= FANOUT_WRITES and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, error) -> None:
        for waiter in (self.opened, self.done):
            if not waiter.done():
                waiter.set_exception(RuntimeError(f"watch stream closed early: {error}"))

    def events(self) -> list[tuple[dict, float]]:
        """Each JSON line of the chunked body with the arrival time of the piece that completed it (the server
        writes one chunk per event; chunk-size and header lines do not start with '{')."""
        found, pending = [], b""
        for data, arrived in self.pieces:
            pending += data
            *complete, pending = pending.split(b"\n")
            found += [(json.loads(line), arrived) for line in complete if line.startswith(b"{")]
        return found


def read_watch_streams(directory: Path, url: str, connection) -> None:
    """The watchers' process: WATCHERS streams of `url`; sends "ready" once all are open, then the arrival times
    (time.monotonic, the same clock system-wide) of the first FANOUT_WRITES ADDED events of each, by name, and
    the CPU seconds this process spent reading them."""
    async def read() -> tuple[list[tuple[str, float]], float]:
        loop = asyncio.get_running_loop()
        parsed = urllib.parse.urlsplit(url)
        request = (f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
                   "Accept: application/json\r\n\r\n").encode()
        context = admin_ssl_context(directory)
        streams, transports = [], []
        for _ in range(WATCHERS):
            stream = RawWatchStream(request, loop.create_future(), loop.create_future())
            transport, _ = await loop.create_connection(lambda: stream, parsed.hostname, parsed.port, ssl=context)
            streams.append(stream)
            transports.append(transport)
        try:
            for stream in streams:
                status = await asyncio.wait_for(stream.opened, START_TIMEOUT)
                if b" 200 " not in status + b" ":
                    raise RuntimeError(f"watch {url}: {status!r}")
            connection.send("ready")
            cpu = time.process_time()
            await asyncio.wait_for(asyncio.gather(*(stream.done for stream in streams)), 60)
            cpu = time.process_time() - cpu
        finally:
            for transport in transports:
                transport.close()
        arrivals = [(event["object"]["metadata"]["name"], arrived) for stream in streams
                    for event, arrived in stream.events() if event["type"] == "ADDED"
                    and event["object"]["metadata"]["name"].startswith("f")]
        return arrivals, cpu

    try:
        connection.send(asyncio.run(read()))
    except Exception as error:  # reported by the parent, which would otherwise wait for nothing
        connection.send(f"watchers failed: {type(error).__name__}: {error}")


async def fanout(server: Server, namespace: str) -> tuple[float, float, float, float]:
    """p50/p99 from the start of a create to its ADDED event on each of WATCHERS watch streams (read by another
    process), the server's CPU ms per write (the create and its delivery to every stream) and the watchers'."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    listed = await server.call("GET", path + "?limit=1")
    version = listed["metadata"]["resourceVersion"]
    url = f"{server.base}{path}?watch=true&resourceVersion={version}&timeoutSeconds=60"
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    reader = context.Process(target=read_watch_streams, args=(server.directory, url, theirs), daemon=True)
    reader.start()

    async def receive(timeout: float):
        if not await asyncio.to_thread(ours.poll, timeout):
            raise RuntimeError(f"{server.label}: the watchers' process did not answer within {timeout:g} s")
        message = ours.recv()
        if isinstance(message, str) and message.startswith("watchers failed"):
            raise RuntimeError(f"{server.label}: {message}")
        return message

    try:
        await receive(START_TIMEOUT)
        await asyncio.sleep(0.2)  # every stream is registered with the server
        began: dict[str, float] = {}

        async def write(n: int) -> None:
            began[f"f{n}"] = time.monotonic()
            await server.call("POST", path, config_map(f"f{n}"))

        cpu_before = server.cpu()
        await paced(FANOUT_WRITES, write)
        arrivals, reader_cpu = await receive(60)
        cpu = (server.cpu() - cpu_before) * 1000 / FANOUT_WRITES
    finally:
        reader.join(timeout=5)
        if reader.is_alive():
            reader.kill()
    return (*percentiles([arrived - began[name] for name, arrived in arrivals]), cpu,
            reader_cpu * 1000 / FANOUT_WRITES)


async def measure(server: Server, samples: int, seconds: float, writers: int, etcd_pids: list[int], raw_put=None
                  ) -> dict:
    await server.open()
    namespace = "bench"
    await server.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": namespace}})
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    phases = {
        "create": (samples, lambda n: server.call("POST", path, config_map(f"c{n}"))),
        "get": (samples, lambda n: server.call("GET", f"{path}/c{n}")),
        "update": (samples, lambda n: server.call("PATCH", f"{path}/c{n}", {"data": {"v": "y"}},
                                                  "application/merge-patch+json")),
        "list": (samples // 2, lambda n: server.call("GET", f"{path}?limit={LIST_SIZE}")),
    }
    before = server.cpu()
    await asyncio.sleep(IDLE_SECONDS)
    results = {"idle": (server.cpu() - before) * 1000 / IDLE_SECONDS}
    for label, (count, operation) in phases.items():
        before = server.cpu()
        results[label] = (*await paced(count, operation), (server.cpu() - before) * 1000 / count)
    results.update(await throughput(server, namespace, seconds, writers, raw_put, etcd_pids))
    results["fan-out"] = await fanout(server, namespace)
    results["custom"] = await custom_vs_config_maps(server, namespace, seconds, writers)
    results["webhook"] = await webhook_latency(server, server.directory / "webhook", samples)
    return results


def etcd_config(directory: Path, port: int, cluster) -> Path:
    """A --config file for a server on `cluster`, with the dev PKI of `directory` for serving and clients."""
    prepared = dev.prepare(directory, port)
    tls = cluster.tls
    config = {"bind_address": "127.0.0.1", "secure_port": port, "advertise_address": "127.0.0.1",
              "tls": {"cert_file": str(prepared.tls.cert_file), "key_file": str(prepared.tls.key_file),
                      "client_ca_file": str(prepared.tls.client_ca_file)},
              "storage": {"backend": "etcd", "etcd_servers": list(cluster.endpoints),
                          "etcd_ca_file": str(tls.ca_file), "etcd_cert_file": str(tls.cert_file),
                          "etcd_key_file": str(tls.key_file)},
              "service_account": {"key_files": [str(directory / "sa.pub")],
                                  "signing_key_file": str(directory / "sa.key")},
              "log_level": LOG_LEVEL}
    path = directory / "apiserver.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def bare_front(directory: Path, port: int, cluster) -> Server:
    """bench/bare_front.py on `cluster`: the floor under any Python API server's creates (see its docstring)."""
    dev.prepare(directory, port)
    tls = cluster.tls
    return Server("bare front", directory, port, [sys.executable, str(REPO / "bench" / "bare_front.py"),
                                                  str(directory), str(port), cluster.endpoints[0],
                                                  str(tls.ca_file), str(tls.cert_file), str(tls.key_file)])


async def run(args, directory: Path, cluster) -> dict[str, dict]:
    """Results per kpy-apiserver, and under FLOOR the bare front's creates (throughput only)."""
    binary = str(Path(sys.executable).parent / "kpy-apiserver")
    ports = storage_bench.etcd_test_harness().free_ports(3)
    sqlite_dir, etcd_dir = directory / "sqlite", directory / "etcd-server"
    dev.prepare(sqlite_dir, ports[0])  # the PKI the bench's client uses; the --dev server keeps it
    servers = {
        "sqlite (--dev)": Server("sqlite", sqlite_dir, ports[0], [binary, "--dev", str(sqlite_dir), "--secure-port",
                                                                  str(ports[0]), "--log-level", LOG_LEVEL]),
        "etcd (TLS)": Server("etcd", etcd_dir, ports[1], [binary, "--config", str(etcd_config(etcd_dir, ports[1],
                                                                                             cluster))]),
    }
    results = {}
    async with AsyncEtcdClient(cluster.endpoints, cluster.tls) as raw:
        for label, server in servers.items():
            try:
                raw_put = raw.put if label.startswith("etcd") else None
                results[label] = await measure(server, args.samples, args.seconds, args.writers,
                                               cluster.pids("m0"), raw_put)
            finally:
                await server.close()
        floor = bare_front(directory / "bare-front", ports[2], cluster)
        try:
            await floor.open()
            results[FLOOR] = await throughput(floor, "bench", args.seconds, args.writers, raw.put, cluster.pids("m0"))
        finally:
            await floor.close()
    return results


def report(results: dict[str, dict], args) -> str:
    floor = results.pop(FLOOR)
    names = list(results)
    raw = results["etcd (TLS)"]["raw puts/s"]
    lines = [f"apiserver bench: latencies at {RATE:g} req/s ({args.samples} creates/gets/updates, "
             f"{args.samples // 2} lists of up to {LIST_SIZE}); throughput: {args.writers} concurrent clients for "
             f"{args.seconds:g} s (creates alternate with raw etcd puts in {PHASE_SLICES} slices); fan-out: "
             f"{FANOUT_WRITES} creates at {RATE:g}/s to {WATCHERS} watch streams (read by another process)",
             f"{'':40}" + "".join(f"{name:>20}" for name in names)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"{label:40}" + "".join(f"{cell:>20}" for cell in cells))

    for label in ("create", "get", "update", "list"):
        row(f"{label} p50/p99 ms", [f"{results[n][label][0]:.1f} / {results[n][label][1]:.1f}" for n in names])
    row("  server CPU ms per create/get/update", [" / ".join(f"{results[n][k][2]:.1f}" for k in (
        "create", "get", "update")) for n in names])
    row("  server CPU ms per list", [f"{results[n]['list'][2]:.1f}" for n in names])
    row("  (idle server CPU ms/s, in the above)", [f"{results[n]['idle']:.0f}" for n in names])
    row("creates/s (API, concurrent)", [f"{results[n]['creates/s']:.0f}" for n in names])
    row("raw etcd puts/s (same run)", [f"{raw:.0f}"] * len(names))
    row("API creates / raw etcd puts (>= 50%)", [f"{results[n]['creates/s'] / raw:.0%}" for n in names])
    row("  CPU ms per create: server/client/etcd", [" / ".join(f"{results[n]['cpu ms']['creates', p]:.2f}" for p in (
        "server", "client", "etcd")) for n in names])
    row("  CPU ms per raw put: client/etcd", [" / ".join(f"{results['etcd (TLS)']['cpu ms']['puts', p]:.2f}" for p in (
        "client", "etcd"))] * len(names))
    row("write -> 100 watchers p50/p99 ms", [f"{results[n]['fan-out'][0]:.1f} / {results[n]['fan-out'][1]:.1f}"
                                             for n in names])
    row("  CPU ms per write: server / watchers", [f"{results[n]['fan-out'][2]:.1f} / {results[n]['fan-out'][3]:.1f}"
                                                  for n in names])
    row("CR creates/s vs ConfigMap (>= 0.8x)", [f"{results[n]['custom']['custom']:.0f} / "
                                                f"{results[n]['custom']['configmap']:.0f} = "
                                                f"{results[n]['custom']['custom'] / results[n]['custom']['configmap']:.2f}x"
                                                for n in names])
    row("create p99 ms: plain / 1 webhook / its own", [" / ".join(f"{v:.1f}" for v in results[n]["webhook"][:3])
                                                       for n in names])
    row("  added by the webhook call, p99 ms (<= 10)", [f"{results[n]['webhook'][3]:.1f}" for n in names])
    floor_cpu = " / ".join(f"{floor['cpu ms']['creates', p]:.2f}" for p in ("server", "client", "etcd"))
    lines.append("floor: bench/bare_front.py, a bare Python HTTPS front on the same etcd (one create txn per POST, "
                 "no Kubernetes work):")
    lines.append(f"  {floor['creates/s']:.0f} creates/s = {floor['creates/s'] / floor['raw puts/s']:.0%} of the "
                 f"{floor['raw puts/s']:.0f} raw etcd puts/s of its slices; CPU ms per create front/client/etcd "
                 f"{floor_cpu}")
    etcd = results["etcd (TLS)"]
    misses = [f"{n}: single-object p99 above {TARGET_P99_MS:g} ms" for n in names
              if max(results[n][k][1] for k in ("create", "get", "update")) > TARGET_P99_MS]
    misses += [f"{n}: fan-out p99 above {TARGET_FANOUT_P99_MS:g} ms" for n in names
               if results[n]["fan-out"][1] > TARGET_FANOUT_P99_MS]
    misses += [f"{n}: custom resource creates below {TARGET_CUSTOM_RATIO:g}x ConfigMap creates" for n in names
               if results[n]["custom"]["custom"] < TARGET_CUSTOM_RATIO * results[n]["custom"]["configmap"]]
    misses += [f"{n}: one webhook call adds more than {TARGET_WEBHOOK_MS:g} ms at p99" for n in names
               if results[n]["webhook"][3] > TARGET_WEBHOOK_MS]
    if etcd["creates/s"] < TARGET_CREATE_RATIO * raw:
        misses.append("etcd: API creates/s below 50% of raw etcd puts/s")
    lines.append("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60, help="requests per latency phase (at 20/s)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the throughput phase")
    parser.add_argument("--writers", type=int, default=16, help="concurrent clients in the throughput phase")
    storage_bench.add_data_argument(parser)
    args = parser.parse_args()
    if not 10 <= args.samples <= 600 or not 0 < args.seconds <= 10 or not 0 < args.writers <= 256:
        parser.error("--samples must be in 10..600, --seconds in (0, 10], --writers in 1..256")
    harness = storage_bench.etcd_test_harness()
    with tempfile.TemporaryDirectory(prefix="kpy-bench-apiserver-", dir=storage_bench.data_root(args)) as tmp:
        directory = Path(tmp)
        cluster = harness.EtcdCluster(directory / "etcd", harness.ThrowawayCA(directory), 1, token="kpy-bench")
        started = time.perf_counter()
        cluster.start()
        try:
            results = asyncio.run(run(args, directory, cluster))
        finally:
            cluster.stop()
        print(report(results, args))
        print(storage_bench.data_label(args))
        print(f"(ran {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
