"""Pod start-up benchmark: kpy-kubelet through containerd on a lab cluster, create → Running seen by a watch, for a
burst of 30 pods per worker and for a steady 5 pods/s, each pod's time split into its phases; and the kubelet's RSS
at 0, 30 and 60 pods per worker. Targets beside the numbers as ratios (performance-anchors.md): p99 ≤ 2 s with the
image present (Kubernetes' SLO: 5 s), kubelet RSS ≤ 100 MB at 60 pods.

Usage (root, after ./scripts/setup):  .venv/bin/python bench/pods.py [--per-worker 30] [--rate 5]
    [--inventory DIR --lab NAME]   (a running lab provisioned by site.yml instead of a fresh one)
By default it boots lab `bench` (10.213.25.0/24: 1 control-plane host, 2 workers), provisions it with site.yml and
takes it down at the end. Pods: busybox:1.35 `sleep 3600` (imagePullPolicy IfNotPresent, pulled on every worker
first), terminationGracePeriodSeconds 1, in a namespace of their own that is deleted at the end.

Runs, in order: RSS at 0 pods; the burst (30 per worker at once) and RSS at 30 per worker; the pods deleted; the
steady rate (the same count at --rate pods/s), kept running while a second burst lands on top (30 more per worker,
so the nodes already run pods) and RSS at 60 per worker; then those pods deleted and, while they stop, 2 new pods per
worker started (how long a new pod waits behind pods that are stopping); everything deleted, RSS at 0 pods again.

Where each number comes from (every clock is this machine's: lab hosts are containers on its kernel):
- create: this process's time just before the POST; seen scheduled / seen Running: when the watch delivered the
  first version with spec.nodeName / with phase Running;
- the CRI calls: when containerd received and answered RunPodSandbox, CreateContainer and StartContainer, from its
  own log on the worker (nanoseconds; crilog.py). "kubelet queue" is seen bound → RunPodSandbox received (the
  kubelet's watch, its work queue, volumes); "sandbox" is RunPodSandbox (pod network, pause container), so the
  sandbox is ready at its answer; "container" is its answer → StartContainer answered (the image check,
  CreateContainer, StartContainer); "status seen" is → Running seen by the watch (the kubelet's status PATCH);
- image: the kubelet's Pulled event (its message gives the pull time to the millisecond; "already present" = 0).
So scheduling + kubelet queue + sandbox + container + status seen = the total. The API's own timestamps (conditions'
lastTransitionTime, startedAt, events) have one-second resolution: they are printed as a cross-check only.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crilog import PodCalls, most_in_flight, pod_calls  # noqa: E402
from labcluster import LabCluster, lab_cluster  # noqa: E402

IMAGE = "busybox:1.35"
TARGET_P99_S, SLO_P99_S = 2.0, 5.0  # the issue's target with the image present; Kubernetes' pod start-up SLO
TARGET_RSS_MB = 100.0
RUNNING_DEADLINE_S = 180.0  # a pod not Running by then is reported as never Running
GONE_DEADLINE_S = 180.0
NODES_DEADLINE_S = 120.0  # for the workers of a fresh cluster to be Ready
JOURNAL_DEADLINE_S = 20.0  # for containerd's log lines of the pods seen Running to reach the host's journal
RETRIES = 5
CREATORS = 16  # concurrent create calls (and HTTP connections)
# CPU time (µs) of the kubelet, of containerd with its shims and the runc they run, and of the whole host, from the
# host's cgroup v2 tree (/sys/fs/cgroup/unified on hybrid hosts such as the lab's).
NODE_CPU = ('d=/sys/fs/cgroup/unified; [ -f $d/cpu.stat ] || d=/sys/fs/cgroup; cd $d && '
            'grep -h usage_usec system.slice/kpy-kubelet.service/cpu.stat system.slice/containerd.service/cpu.stat '
            'cpu.stat')
KUBELET_MEMORY = 'grep -E "^(VmRSS|VmHWM):" /proc/$(systemctl show -p MainPID --value kpy-kubelet)/status'
PULLED_IN = re.compile(r"Successfully pulled image .* in ([0-9.]+)s")  # the kubelet writes seconds


@dataclass
class PodTimes:
    name: str
    created: float = 0.0  # just before the POST
    seen_scheduled: float | None = None
    seen_running: float | None = None
    node: str = ""
    calls: PodCalls | None = None  # containerd's log of the pod's CRI calls
    image_s: float | None = None  # from the Pulled event
    api: dict = field(default_factory=dict)  # the API's own one-second timestamps, by name


class PodWatch:
    """One watch on the namespace's pods, in a thread: when each pod was first seen bound and first seen Running."""

    def __init__(self, api: client.CoreV1Api, namespace: str):
        self.api, self.namespace = api, namespace
        self.pods: dict[str, PodTimes] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.restarts = 0
        self._watch = watch.Watch()
        self._stopping = False
        listed = api.list_namespaced_pod(namespace, _preload_content=False)
        self._version = json.loads(listed.data)["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True, name="pod-watch")
        self._thread.start()

    def track(self, name: str) -> PodTimes:
        with self.lock:
            return self.pods.setdefault(name, PodTimes(name))

    def _run(self) -> None:
        while not self._stopping:
            try:
                for event in self._watch.stream(self.api.list_namespaced_pod, self.namespace, deserialize=False,
                                                resource_version=self._version, timeout_seconds=300):
                    arrived, pod = time.time(), event["object"]
                    self._version = pod["metadata"].get("resourceVersion") or self._version
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._seen(pod, arrived)
            except Exception as error:  # noqa: BLE001 - resumed from the last version; counted and printed
                if self._stopping:
                    return
                self.restarts += 1
                print(f"  (pod watch restarted: {error})", file=sys.stderr)
                time.sleep(0.5)

    def _seen(self, pod: dict, arrived: float) -> None:
        name = pod["metadata"]["name"]
        with self.changed:
            times = self.pods.setdefault(name, PodTimes(name))
            if pod.get("spec", {}).get("nodeName") and times.seen_scheduled is None:
                times.seen_scheduled, times.node = arrived, pod["spec"]["nodeName"]
            if (pod.get("status") or {}).get("phase") == "Running" and times.seen_running is None:
                times.seen_running = arrived
            self.changed.notify_all()

    def wait_running(self, names: list[str], deadline_s: float) -> list[str]:
        """Wait until every pod named was seen Running or the deadline passed; the names never seen Running."""
        deadline = time.monotonic() + deadline_s
        with self.changed:
            while (late := [n for n in names if self.pods[n].seen_running is None]) and \
                    (left := deadline - time.monotonic()) > 0:
                self.changed.wait(left)
        return late

    def stop(self) -> None:
        self._stopping = True
        self._watch.stop()


class RetryingAPI:
    """A CoreV1Api whose calls are tried again (RETRIES times, a second apart) when the API answers 429 or 5xx: the
    lab's single etcd member on a busy machine sometimes times out ("storage is unavailable": 503). A create answered
    409 or a delete answered 404 on a second try counts as done (the first try did it)."""

    def __init__(self, api: client.CoreV1Api):
        self._api = api

    def __getattr__(self, name: str):
        method = getattr(self._api, name)

        def call(*args, **kwargs):
            for attempt in range(RETRIES):
                try:
                    return method(*args, **kwargs)
                except ApiException as error:
                    done = (error.status == 409 and name.startswith("create")) or \
                        (error.status == 404 and name.startswith("delete"))
                    if attempt and done:
                        return None
                    if error.status not in (429, 500, 502, 503, 504) or attempt == RETRIES - 1:
                        raise
                time.sleep(1)
        return call


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: of 60 values p50 is the 30th and p99 the 60th (the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def pod_body(name: str, phase: str, node: str = "") -> dict:
    spec = {"terminationGracePeriodSeconds": 1,
            "containers": [{"name": "sleep", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                            "command": ["sleep", "3600"]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench-phase": phase}},
            "spec": spec}


class Bench:
    def __init__(self, cluster: LabCluster):
        self.cluster = cluster
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = CREATORS + 4
        self.raw_api = client.CoreV1Api(client.ApiClient(configuration))
        self.api = RetryingAPI(self.raw_api)
        self.namespace = f"bench-pods-{uuid.uuid4().hex[:6]}"
        self.pool = concurrent.futures.ThreadPoolExecutor(CREATORS)
        self.workers = self._ready_workers()

    def _ready_workers(self) -> list[str]:
        """The worker nodes' names once every one is Ready (a fresh cluster's kubelets take a moment)."""
        deadline = time.monotonic() + NODES_DEADLINE_S
        while True:
            nodes = self.api.list_node().items
            workers = sorted(n.metadata.name for n in nodes
                             if "node-role.kubernetes.io/control-plane" not in (n.metadata.labels or {}))
            not_ready = [n.metadata.name for n in nodes if n.metadata.name in workers and not any(
                c.type == "Ready" and c.status == "True" for c in n.status.conditions or ())]
            if workers and not not_ready:
                return workers
            if time.monotonic() > deadline:
                sys.exit(f"the cluster needs Ready workers: workers {workers or 'none'}, not Ready after "
                         f"{NODES_DEADLINE_S:.0f} s: {not_ready}")
            time.sleep(1)

    # --- the namespace -------------------------------------------------------------------------------------------
    def open(self) -> None:
        self.api.create_namespace({"metadata": {"name": self.namespace}})
        deadline = time.monotonic() + 30
        while not self.api.list_namespaced_service_account(self.namespace,
                                                           field_selector="metadata.name=default").items:
            if time.monotonic() > deadline:
                sys.exit(f"namespace {self.namespace}: no default ServiceAccount after 30 s")
            time.sleep(0.2)
        self.watch = PodWatch(self.raw_api, self.namespace)

    def close(self) -> float:
        """Delete the namespace and wait until it is gone; how long that took."""
        started = time.monotonic()
        self.watch.stop()
        self.delete_pods()
        self.api.delete_namespace(self.namespace)
        while time.monotonic() - started < GONE_DEADLINE_S:
            try:
                self.api.read_namespace(self.namespace)
            except ApiException as error:
                if error.status == 404:
                    return time.monotonic() - started
                raise
            time.sleep(0.5)
        sys.exit(f"namespace {self.namespace} still there after {GONE_DEADLINE_S:.0f} s")

    # --- pods ----------------------------------------------------------------------------------------------------
    def _create(self, name: str, phase: str, node: str = "") -> None:
        self.watch.track(name).created = time.time()
        self.api.create_namespaced_pod(self.namespace, pod_body(name, phase, node))

    def create(self, names: list[str], phase: str, rate: float | None = None) -> None:
        """Create the pods all at once (as fast as CREATORS connections go), or one every 1/rate s."""
        started = time.monotonic()
        futures = []
        for i, name in enumerate(names):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            futures.append(self.pool.submit(self._create, name, phase))
        for future in futures:
            future.result()

    def delete_pods(self) -> float:
        """Delete every pod of the namespace and wait until none is left; how long that took."""
        started = time.monotonic()
        self.wait_gone(self.delete())
        return time.monotonic() - started

    def delete(self) -> list[str]:
        """Ask for every pod of the namespace to be deleted (without waiting); their names."""
        names = [p.metadata.name for p in self.api.list_namespaced_pod(self.namespace).items]
        list(self.pool.map(lambda n: self.api.delete_namespaced_pod(n, self.namespace), names))
        return names

    def wait_gone(self, names: list[str]) -> None:
        deadline = time.monotonic() + GONE_DEADLINE_S
        while {p.metadata.name for p in self.api.list_namespaced_pod(self.namespace).items} & set(names):
            if time.monotonic() > deadline:
                sys.exit(f"pods of {self.namespace} still there after {GONE_DEADLINE_S:.0f} s")
            time.sleep(0.5)

    def prepull(self) -> None:
        """One pod per worker, so the image is present everywhere; then deleted."""
        names = [f"prepull-{worker}" for worker in self.workers]
        for name, worker in zip(names, self.workers):
            self._create(name, "prepull", worker)
        late = self.watch.wait_running(names, RUNNING_DEADLINE_S)
        if late:
            sys.exit(f"pre-pull pods never Running: {late}")
        self.delete_pods()

    def run_phase(self, prefix: str, label: str, count: int, rate: float | None = None) -> dict:
        """Create `count` pods named prefix-NNN (at once, or at `rate` per second) and wait until they run."""
        names = [f"{prefix}-{i:03d}" for i in range(count)]
        load, cpu, machine = os.getloadavg()[0], self.node_cpu(), machine_cpu()
        begun, started = time.time(), time.monotonic()
        self.create(names, prefix, rate)
        late = self.watch.wait_running(names, RUNNING_DEADLINE_S)
        wall, machine_after, cpu_after = time.monotonic() - started, machine_cpu(), self.node_cpu()
        in_flight = self.collect(names, since=begun - 1)
        used = {w: tuple(after - before for before, after in zip(cpu[w], cpu_after[w])) for w in self.workers}
        busy = 1 - (machine_after[1] - machine[1]) / max(1, machine_after[0] - machine[0])
        return {"label": label, "names": names, "late": late, "load": load, "wall": wall, "cpu": used,
                "machine_busy": busy, "in_flight": in_flight}

    # --- what the runtime and the API recorded -------------------------------------------------------------------
    def collect(self, names: list[str], since: float) -> int:
        """Fill in what containerd, the pods and their events recorded; the most pod starts (RunPodSandbox asked →
        StartContainer answered) one worker had in flight at once."""
        pods = {n: self.watch.pods[n] for n in names}
        in_flight = 0
        for worker in self.workers:
            here = {n for n, p in pods.items() if p.node == worker and p.seen_running}
            deadline = time.monotonic() + JOURNAL_DEADLINE_S
            while True:  # the host's journald may lag behind containerd on a busy machine
                journal = self.cluster.ssh(worker, f"journalctl -u containerd -o cat --no-pager --since @{since:.0f}")
                calls = {n: c for n, c in pod_calls(journal, self.namespace).items() if n in pods and c.complete}
                if here <= set(calls) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            for name, found in calls.items():
                pods[name].calls = found
            in_flight = max(in_flight, most_in_flight([(c.sandbox_asked, c.start_done) for c in calls.values()]))
        listed = json.loads(self.api.list_namespaced_pod(self.namespace, _preload_content=False).data)["items"]
        for pod in listed:
            times = pods.get(pod["metadata"]["name"])
            if times is None:
                continue
            status = pod.get("status") or {}
            conditions = {c["type"]: c.get("lastTransitionTime") for c in status.get("conditions") or ()}
            running = [s["state"]["running"].get("startedAt") for s in status.get("containerStatuses") or ()
                       if "running" in (s.get("state") or {})]
            times.api = {"created": pod["metadata"].get("creationTimestamp"),
                         "PodScheduled": conditions.get("PodScheduled"),
                         "PodReadyToStartContainers": conditions.get("PodReadyToStartContainers"),
                         "startedAt": running[0] if running else None, "Ready": conditions.get("Ready")}
        events = json.loads(self.api.list_namespaced_event(self.namespace, _preload_content=False).data)["items"]
        for event in events:
            times = pods.get(event.get("involvedObject", {}).get("name"))
            if times is None or event.get("reason") != "Pulled":
                continue
            if "already present" in event.get("message", ""):
                times.image_s = 0.0
            elif match := PULLED_IN.search(event.get("message", "")):
                times.image_s = float(match.group(1))
        return in_flight

    def node_cpu(self) -> dict[str, tuple[float, float, float]]:
        """CPU seconds used so far by kpy-kubelet, by containerd (shims and runc included) and by the whole host."""
        return {w: tuple(int(line.split()[1]) / 1e6 for line in self.cluster.ssh(w, NODE_CPU).splitlines())
                for w in self.workers}

    # --- the kubelets' memory ------------------------------------------------------------------------------------
    def kubelet_memory(self) -> dict[str, tuple[float, float]]:
        """VmRSS and VmHWM (peak) of kpy-kubelet on each worker, in MB."""
        found = {}
        for worker in self.workers:
            fields = dict(line.split(":", 1) for line in self.cluster.ssh(worker, KUBELET_MEMORY).splitlines())
            found[worker] = tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
        return found


def machine_cpu() -> tuple[int, int]:
    """This machine's CPU time so far, in ticks: (all, idle + iowait), from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


# --- printing --------------------------------------------------------------------------------------------------------
def _parse(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _p(values: list[float]) -> str:
    if not values:
        return "      n/a      "
    return f"{percentile(values, 0.5):6.2f} {percentile(values, 0.99):6.2f}  "


def print_latency(bench: Bench, phases: list[dict]) -> None:
    print("\nstart-up latency, create → Running seen by the watch (s; nearest rank: of 100 pods or fewer, p99 is the "
          "slowest)")
    print(f"{'run':34} {'pods':>5} {'per node':>10} {'p50':>6} {'p99':>6} {'max':>6}   "
          f"p99/target {TARGET_P99_S:.0f} s   p99/SLO {SLO_P99_S:.0f} s   load")
    for phase in phases:
        pods = [bench.watch.pods[n] for n in phase["names"]]
        totals = [p.seen_running - p.created for p in pods if p.seen_running]
        nodes = {}
        for p in pods:
            nodes[p.node or "unbound"] = nodes.get(p.node or "unbound", 0) + 1
        split = "/".join(str(nodes[n]) for n in sorted(nodes))
        if not totals:
            print(f"{phase['label']:34} {len(pods):5} {split:>10}   no pod reached Running")
            continue
        p99 = percentile(totals, 0.99)
        print(f"{phase['label']:34} {len(pods):5} {split:>10} {percentile(totals, 0.5):6.2f} {p99:6.2f} "
              f"{max(totals):6.2f}   {p99 / TARGET_P99_S:13.2f}   {p99 / SLO_P99_S:10.2f}   {phase['load']:4.1f}"
              + (f"   NEVER Running: {len(phase['late'])} ({', '.join(phase['late'][:3])}...)" if phase["late"]
                 else ""))
    print("\nwhere the time goes, p50 p99 (s): scheduling = create → seen bound; kubelet queue = → RunPodSandbox "
          "received;\nsandbox = RunPodSandbox; container = → StartContainer answered (image check, create, start); "
          "status seen = → Running seen by the watch")
    print(f"{'run':34} {'scheduling':>14} {'kubelet queue':>14} {'sandbox':>14} {'container':>14} "
          f"{'status seen':>14} {'image (Pulled)':>15}   starts in flight")
    for phase in phases:
        pods = [p for p in (bench.watch.pods[n] for n in phase["names"]) if p.seen_running and p.calls]
        present = sum(1 for p in pods if p.image_s == 0.0)
        images = [p.image_s for p in pods if p.image_s is not None]
        print(f"{phase['label']:34} {_p([p.seen_scheduled - p.created for p in pods])}"
              f"{_p([p.calls.sandbox_asked - p.seen_scheduled for p in pods])}"
              f"{_p([p.calls.sandbox_done - p.calls.sandbox_asked for p in pods])}"
              f"{_p([p.calls.start_done - p.calls.sandbox_done for p in pods])}"
              f"{_p([p.seen_running - p.calls.start_done for p in pods])}"
              f"{_p(images)}{present}/{len(pods)} present, at most {phase['in_flight']} per worker"
              + (f" ({len(phase['names']) - len(pods)} pods not in containerd's log)"
                 if len(pods) < len(phase["names"]) else ""))
    print(f"\nCPU seconds used per worker from the first create to the last pod Running (mean of the workers), "
          f"and this machine's ({os.cpu_count()} cores) busy share")
    print(f"{'run':34} {'wall':>6} {'kubelet':>8} {'containerd+shims+runc':>22} {'whole host':>11} "
          f"{'machine busy':>13}")
    for phase in phases:
        used = [sum(cpu[i] for cpu in phase["cpu"].values()) / len(phase["cpu"]) for i in range(3)]
        print(f"{phase['label']:34} {phase['wall']:6.1f} {used[0]:8.1f} {used[1]:22.1f} {used[2]:11.1f} "
              f"{phase['machine_busy']:12.0%}")
    print("\nthe API's own timestamps (one-second resolution, p50 p99 in whole seconds from creationTimestamp):")
    print(f"{'run':34} {'PodScheduled':>14} {'ReadyToStart':>14} {'startedAt':>14} {'Ready':>14}")
    for phase in phases:
        pods = [bench.watch.pods[n].api for n in phase["names"]]
        row = ""
        for key in ("PodScheduled", "PodReadyToStartContainers", "startedAt", "Ready"):
            row += _p([_parse(a[key]) - _parse(a["created"]) for a in pods if a.get(key) and a.get("created")])
        print(f"{phase['label']:34} {row}")


def print_memory(bench: Bench, samples: list[tuple[str, dict]]) -> None:
    print(f"\nkpy-kubelet memory on the workers (VmRSS, MB; peak = VmHWM)   target {TARGET_RSS_MB:.0f} MB at 60 pods")
    print(f"{'when':34} " + " ".join(f"{w:>16}" for w in bench.workers) + "   worst/target")
    for label, memory in samples:
        worst = max(rss for rss, _ in memory.values())
        print(f"{label:34} " + " ".join(f"{rss:7.1f} (pk {hwm:5.1f})" for rss, hwm in memory.values())
              + f"   {worst / TARGET_RSS_MB:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-worker", type=int, default=30, help="pods per worker in each burst (default 30)")
    parser.add_argument("--rate", type=float, default=5.0, help="pods/s of the steady run (default 5)")
    parser.add_argument("--inventory", type=Path,
                        help="a running lab's inventory folder (provisioned by site.yml) instead of a fresh lab")
    parser.add_argument("--lab", default="bench", help="the lab's name (default bench)")
    parser.add_argument("--subnet-index", type=int, default=25, help="N of a fresh lab's 10.213.N.0/24 (default 25)")
    args = parser.parse_args()
    if args.per_worker < 1 or args.rate <= 0:
        sys.exit("--per-worker must be at least 1 and --rate above 0")
    provisioned = time.monotonic()
    with lab_cluster(args.lab, args.subnet_index, control_plane=1, workers=2, inventory=args.inventory) as cluster:
        provisioned = time.monotonic() - provisioned
        bench = Bench(cluster)
        count = args.per_worker * len(bench.workers)
        print(f"kpy-kubelet pod start-up: lab {cluster.lab}, workers {', '.join(bench.workers)}, image {IMAGE} "
              f"present, {os.cpu_count()} cores on this machine, load average {os.getloadavg()[0]:.1f} at start"
              + ("" if args.inventory else f" (lab booted and provisioned in {provisioned:.0f} s)"))
        memory = [("0 pods (before any)", bench.kubelet_memory())]
        bench.open()
        try:
            bench.prepull()
            phases = [bench.run_phase("burst", f"burst {count} at once", count)]
            memory.append((f"{args.per_worker} pods each (after the burst)", bench.kubelet_memory()))
            deleted = bench.delete_pods()
            steady = f"steady {args.rate:g}/s ({count} in {count / args.rate:.0f} s)"
            phases.append(bench.run_phase("steady", steady, count, args.rate))
            phases.append(bench.run_phase("onto-busy", f"burst {count} onto {args.per_worker} running each", count))
            memory.append((f"{2 * args.per_worker} pods each", bench.kubelet_memory()))
            # Pods stopping hold the kubelet's sync workers for their grace period: what a new pod waits then.
            deleting, started = bench.delete(), time.monotonic()
            few = 2 * len(bench.workers)
            phases.append(bench.run_phase("while-deleting", f"{few} while the {len(deleting)} are deleted", few))
            bench.wait_gone(deleting)
            deleted_all = time.monotonic() - started
        finally:
            gone = bench.close()
        memory.append(("0 pods (after deleting all)", bench.kubelet_memory()))
        print_latency(bench, phases)
        print_memory(bench, memory)
        print(f"\ndeleting pods until gone (terminationGracePeriodSeconds 1; the kubelet gives at least 2 s, and "
              f"`sleep` ignores SIGTERM): {count} pods {deleted:.1f} s, {2 * count} pods {deleted_all:.1f} s; "
              f"the namespace {gone:.1f} s"
              + (f"; the pod watch restarted {bench.watch.restarts} times" if bench.watch.restarts else "")
              + f"; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
