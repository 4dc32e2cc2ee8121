"""Scheduler benchmark: a real `kpy-apiserver --dev` and the real `kpy-scheduler` (two processes), Node objects
created through the API (no kubelets: nothing else writes while the scheduler works), pods created through the API
by this process while the scheduler runs.

Per cluster size (100, 500, 1,000 nodes; nodes are added between rounds): 1,000 pods created by `--writers`
concurrent clients; throughput = pods / (first create sent -> last binding seen on a watch), latency per pod =
create sent -> its binding seen. Then a Deployment-like burst: 100 pods created at once, time until all are bound.
Then the same 1,000 pods created while the scheduler process is stopped (SIGSTOP) and timed from its resumption:
the rate at which it drains a full queue with no creates competing. Targets (issue 4): >= 300 pods/s at 1,000
nodes; a 100-replica burst scheduled in <= 2 s.

Inter-pod affinity (issue 11): the cluster then grows to `--affinity-nodes` (5,000; nodes carry a zone label, 100
zones), and three rounds of 1,000 pods run side by side: plain pods, pods with required anti-affinity on
kubernetes.io/hostname against each other (one per node), and pods with preferred affinity (weight 100) to each other
on the zone. Target: >= 100 pods/s for each.

Where the time goes: CPU seconds of the API server, the scheduler and this process (pod creation + the watch) over
each round, from /proc; the scheduler's own time in its algorithm (scheduler_scheduling_algorithm_duration_seconds)
from its /metrics; and the same algorithm alone, in this process over a hand-filled cache with no API at all (CPU
time). On a 2-core box the three processes share the cores.

Usage: .venv/bin/python bench/scheduler.py [--nodes 100,500,1000] [--pods 1000] [--burst 100] [--writers 16]
                                          [--affinity-nodes 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "tests" / "integration"))  # the integration tests' helpers, shared with the benches

from prometheus_client import CollectorRegistry  # noqa: E402

from kpy_components.apiserver import dev  # noqa: E402
from kpy_components.client import (ClientConfig, EventRecorder, RESTClient, SharedInformerFactory,  # noqa: E402
                                   load_kubeconfig)
from kpy_components.scheduler import config  # noqa: E402
from kpy_components.scheduler.podinfo import PodInfo  # noqa: E402
from kpy_components.scheduler.scheduler import Scheduler  # noqa: E402
from processes import stop_process  # noqa: E402

TARGET_PODS_PER_SECOND, TARGET_BURST_SECONDS = 300.0, 2.0
TARGET_AFFINITY_PODS_PER_SECOND = 100.0
HOSTNAME, ZONE, ZONES = "kubernetes.io/hostname", "topology.kubernetes.io/zone", 100
START_TIMEOUT, ROUND_TIMEOUT = 60.0, 300.0
BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Processes:
    """The API server and the scheduler, started from this source tree's console scripts."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.api_port, self.scheduler_port = free_port(), free_port()
        self.kubeconfig = directory / dev.ADMIN_KUBECONFIG
        self.apiserver = self._start("apiserver", "kpy-apiserver", "--dev", str(directory), "--secure-port",
                                     str(self.api_port))
        self._wait(f"https://127.0.0.1:{self.api_port}/readyz", self.apiserver, cert=False)
        self.scheduler = self._start("scheduler", "kpy-scheduler", "--kubeconfig", str(self.kubeconfig),
                                     "--leader-elect=false", "--secure-port", str(self.scheduler_port),
                                     "--bind-address", "127.0.0.1", "--log-level", "warning")
        self._wait(f"https://127.0.0.1:{self.scheduler_port}/readyz", self.scheduler, cert=False)

    def _start(self, label: str, command: str, *args: str) -> subprocess.Popen:
        log = (self.directory / f"{label}.log").open("wb")
        return subprocess.Popen([str(BIN / command), *args], stdout=log, stderr=subprocess.STDOUT)

    def _context(self, cert: bool) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # loopback only; the scheduler's serving certificate is self-signed
        if cert:
            context.load_cert_chain(self.directory / "admin.crt", self.directory / "admin.key")
        return context

    def _wait(self, url: str, process: subprocess.Popen, cert: bool) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited with {process.returncode}; see {self.directory}")
            try:
                with urllib.request.urlopen(url, context=self._context(cert), timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{url} not ready after {START_TIMEOUT:.0f}s")

    def scheduler_metric_sum(self, name: str) -> float:
        """The sum of every sample of `name` on the scheduler's /metrics (read with the admin certificate)."""
        url = f"https://127.0.0.1:{self.scheduler_port}/metrics"
        with urllib.request.urlopen(url, context=self._context(cert=True), timeout=5) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    def cpu(self) -> dict[str, float]:
        return {"apiserver": cpu_seconds(self.apiserver.pid), "scheduler": cpu_seconds(self.scheduler.pid),
                "bench": time.process_time()}

    def stop(self) -> None:
        for process in (self.scheduler, self.apiserver):
            stop_process(process, timeout=15)


async def in_parallel(count: int, writers: int, make) -> None:
    """Run make(i) for i in range(count) with at most `writers` at once."""
    numbers = iter(range(count))

    async def writer() -> None:
        for number in numbers:
            await make(number)
    await asyncio.gather(*(writer() for _ in range(writers)))


def node_labels(number: int) -> dict:
    name = f"node-{number:04}"
    return {HOSTNAME: name, ZONE: f"zone-{number % ZONES:03}"}


async def add_nodes(client: RESTClient, first: int, last: int, writers: int) -> None:
    nodes = client.resource("nodes")
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "100Gi"}

    async def make(number: int) -> None:
        labels = node_labels(first + number)
        created = await client.create(nodes, {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": labels[HOSTNAME], "labels": labels}})
        created["status"] = {"capacity": capacity, "allocatable": capacity,
                             "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
        await client.update(nodes, created, subresource="status")
    await in_parallel(last - first, writers, make)


def pod(name: str, scheduler_name: str = "default-scheduler", app: str = "bench", affinity: dict | None = None) -> dict:
    spec = {"schedulerName": scheduler_name,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9",
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    if affinity:
        spec["affinity"] = affinity
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}}, "spec": spec}


def spread_pod(name: str) -> dict:
    """Required anti-affinity against its own kind on the hostname: one such pod per node."""
    return pod(name, app="bench-spread", affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "bench-spread"}}, "topologyKey": HOSTNAME}]}})


def gather_pod(name: str) -> dict:
    """Preferred affinity (weight 100) to its own kind on the zone."""
    return pod(name, app="bench-gather", affinity={"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app": "bench-gather"}}, "topologyKey": ZONE}}]}})


# The rounds on the large cluster: label, pod maker.
AFFINITY_ROUNDS = (("plain pods", pod), ("required anti-affinity (hostname)", spread_pod),
                   ("preferred affinity (zone)", gather_pod))


async def new_namespace(client: RESTClient, namespace: str) -> None:
    await client.create(client.resource("namespaces"), {"metadata": {"name": namespace}})
    # no controller manager runs here: the ServiceAccount admission wants the namespace's default account
    await client.create(client.resource("serviceaccounts"), {"metadata": {"name": "default"}}, namespace)


async def create_ceiling(client: RESTClient, count: int, writers: int) -> float:
    """Pod creates/s alone (pods for a scheduler that does not exist: kpy-scheduler only files them away)."""
    await new_namespace(client, "bench-ceiling")
    pods = client.resource("pods")
    start = time.perf_counter()
    await in_parallel(count, writers, lambda number: client.create(pods, pod(f"idle-{number:05}", "nobody"),
                                                                     "bench-ceiling"))
    return count / (time.perf_counter() - start)


def algorithm_alone(nodes: int, pods: int, make=pod, before=()) -> float:
    """Pods/s of CPU time for the scheduling algorithm by itself: the real Scheduler's cycle in this process over a
    cache filled by hand (the same nodes and pods as the round, after `before`: (count, make) of pods placed first,
    the earlier rounds' on the same cluster), no API at all."""
    client = RESTClient(ClientConfig(server="https://127.0.0.1:1"))  # never contacted
    scheduler = Scheduler(client, SharedInformerFactory(client), lambda name: EventRecorder(client, name),
                          config.load(None), CollectorRegistry())
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    for number in range(nodes):
        labels = node_labels(number)
        scheduler.cache.add_node({"metadata": {"name": labels[HOSTNAME], "labels": labels},
                                  "status": {"allocatable": capacity}})
    profile, percentage = scheduler.profiles["default-scheduler"]

    def infos(count: int, maker, prefix: str) -> list[PodInfo]:
        objects = [maker(f"{prefix}-{number:05}") for number in range(count)]
        return [PodInfo.of({**obj, "metadata": {**obj["metadata"], "namespace": "a"}}) for obj in objects]

    def place(batch: list[PodInfo]) -> None:
        for info in batch:
            scheduler.cache.assume_pod(info, scheduler.schedule_pod(profile, percentage, info).name)

    for index, (count, maker) in enumerate(before):
        place(infos(count, maker, f"before{index}"))
    measured = infos(pods, make, "pod")
    start = time.process_time()
    place(measured)
    return pods / (time.process_time() - start)


async def schedule_round(client: RESTClient, namespace: str, count: int, writers: int,
                         paused: subprocess.Popen | None = None, make=pod) -> dict:
    """Create `count` pods (`make(name)`) while watching for their bindings; timings per pod. With `paused` (the
    scheduler process), it is stopped (SIGSTOP) while the pods are created and the clock starts when it is resumed:
    the time to drain a full queue."""
    pods = client.resource("pods")
    await new_namespace(client, namespace)
    listed = await client.list(pods, namespace)
    sent: dict[str, float] = {}
    bound: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        async with client.watch(pods, namespace, resource_version=listed["metadata"]["resourceVersion"],
                                timeout_seconds=int(ROUND_TIMEOUT)) as events:
            async for _, obj in events:
                name = obj["metadata"]["name"]
                if obj.get("spec", {}).get("nodeName") and name not in bound:
                    bound[name] = time.perf_counter()
                    if len(bound) == count:
                        done.set()
                        return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)  # the watch is connected

    async def create(number: int) -> None:
        name = f"pod-{number:05}"
        sent[name] = time.perf_counter()
        await client.create(pods, make(name), namespace)

    if paused is not None:
        paused.send_signal(signal.SIGSTOP)
    start = time.perf_counter()
    try:
        await in_parallel(count, writers, create)
    finally:
        if paused is not None:
            paused.send_signal(signal.SIGCONT)
    created = time.perf_counter()
    if paused is not None:
        start = created
    try:
        await asyncio.wait_for(done.wait(), ROUND_TIMEOUT)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    latencies = [bound[name] - sent[name] for name in bound]
    return {"seconds": max(bound.values()) - start, "create_seconds": created - start, "latencies": latencies}


async def measured_round(processes: Processes, *args, **options) -> tuple[dict, dict[str, float]]:
    """schedule_round, and the CPU seconds each process spent over it."""
    before = processes.cpu()
    result = await schedule_round(*args, **options)
    after = processes.cpu()
    return result, {name: after[name] - before[name] for name in after}


def cpu_per_pod(cpu: dict[str, float], pods: int) -> str:
    """CPU ms per scheduled pod of each process (this process: pod creation and the watch)."""
    return "  ".join(f"{name} {seconds / pods * 1000:.1f}" for name, seconds in cpu.items())


async def run(args, processes: Processes) -> list[str]:
    lines = []
    async with RESTClient(load_kubeconfig(processes.kubeconfig), user_agent="bench-scheduler") as client:
        ceiling = await create_ceiling(client, args.pods // 2, args.writers)
        lines.append(f"API ceiling: {ceiling:.1f} pod creates/s alone ({args.writers} writers; each scheduled pod "
                     f"also costs a binding and a Scheduled event write)")
        print(lines[-1], flush=True)
        have = 0
        for index, size in enumerate(args.nodes):
            await add_nodes(client, have, size, args.writers)
            have = size
            lines.append(await timed_round(processes, client, f"bench-{index}", size, args, "", pod,
                                           TARGET_PODS_PER_SECOND, algorithm_alone(size, args.pods)))
            print(lines[-1], flush=True)
        drain, cpu = await measured_round(processes, client, "bench-drain", args.pods, args.writers,
                                          paused=processes.scheduler)
        lines.append(f"queue drain: {args.pods} pods created while the scheduler was stopped, bound "
                     f"{args.pods / drain['seconds']:.1f} pods/s after it resumed on {have} nodes "
                     f"(x{args.pods / drain['seconds'] / TARGET_PODS_PER_SECOND:.2f} of "
                     f"{TARGET_PODS_PER_SECOND:.0f}; no creates competing)\n"
                     f"        CPU ms per pod (creates included): {cpu_per_pod(cpu, args.pods)}")
        print(lines[-1], flush=True)
        burst, cpu = await measured_round(processes, client, "bench-burst", args.burst, args.burst)
        lines.append(f"burst: {args.burst} pods created at once on {have} nodes, all bound in "
                     f"{burst['seconds']:.2f} s (target <= {TARGET_BURST_SECONDS:.0f} s: "
                     f"x{TARGET_BURST_SECONDS / burst['seconds']:.2f})\n"
                     f"        CPU ms per pod: {cpu_per_pod(cpu, args.burst)}")
        print(lines[-1], flush=True)
        if args.affinity_nodes > have:
            await add_nodes(client, have, args.affinity_nodes, args.writers)
            have = args.affinity_nodes
            for index, (label, make) in enumerate(AFFINITY_ROUNDS):
                alone = algorithm_alone(have, args.pods, make, [(args.pods, m) for _, m in AFFINITY_ROUNDS[:index]])
                lines.append(await timed_round(processes, client, f"bench-affinity-{index}", have, args,
                                               f" {label}", make, TARGET_AFFINITY_PODS_PER_SECOND, alone))
                print(lines[-1], flush=True)
    return lines


async def timed_round(processes: Processes, client: RESTClient, namespace: str, size: int, args, label: str, make,
                      target: float, alone: float) -> str:
    """One round of `args.pods` pods made by `make` on `size` nodes, as the report's lines: pods/s against `target`,
    latencies, CPU per process and the scheduler's algorithm time; `alone` is algorithm_alone's figure."""
    await asyncio.sleep(1.0)  # the scheduler's node informer catches up
    algorithm_before = processes.scheduler_metric_sum("scheduler_scheduling_algorithm_duration_seconds_sum")
    result, cpu = await measured_round(processes, client, namespace, args.pods, args.writers, make=make)
    algorithm = processes.scheduler_metric_sum("scheduler_scheduling_algorithm_duration_seconds_sum") - algorithm_before
    rate = args.pods / result["seconds"]
    return (f"{size:>5} nodes  {args.pods} pods{label}: {rate:7.1f} pods/s (x{rate / target:.2f} of {target:.0f})  "
            f"latency p50 {statistics.median(result['latencies']) * 1000:6.0f} ms  p99 "
            f"{percentile(result['latencies'], 0.99) * 1000:6.0f} ms  (creates took {result['create_seconds']:.2f} s)\n"
            f"        CPU s over {result['seconds']:.2f} s: apiserver {cpu['apiserver']:.2f}  scheduler "
            f"{cpu['scheduler']:.2f} (algorithm {algorithm:.2f}, {algorithm / args.pods * 1000:.2f} ms/pod)  bench "
            f"{cpu['bench']:.2f}\n"
            f"        CPU ms per pod: {cpu_per_pod(cpu, args.pods)}\n"
            f"        algorithm alone (in-process, no API, CPU time): {alone:.0f} pods/s "
            f"(x{alone / target:.2f} of {target:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="100,500,1000", type=lambda v: [int(n) for n in v.split(",")])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--affinity-nodes", type=int, default=5000,
                        help="cluster size of the inter-pod affinity rounds (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as name:
        processes = Processes(Path(name))
        try:
            asyncio.run(run(args, processes))
        finally:
            processes.stop()


if __name__ == "__main__":
    main()
