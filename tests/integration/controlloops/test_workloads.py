"""The workload controllers (deployment, replicaset, job, ...) running in-process with the real scheduler against a
REAL kpy-apiserver and simulated nodes, driven by the real kubectl where users would use it:

- a Deployment of 20 replicas rolls out (`kubectl rollout status` finishes), scales, rolls to a new template while
  availability is sampled and never drops below replicas - maxUnavailable (nor the ReplicaSets' sizes above
  replicas + maxSurge), and rolls back with `kubectl rollout undo` (1.33, then 1.27 with --to-revision);
- a Job completes, and one that keeps failing stops at its backoffLimit; a finished Job with
  ttlSecondsAfterFinished is deleted with its pods once the TTL has run out; an Indexed Job runs each index once;
- a DaemonSet runs one pod per node it tolerates and rolls to a new template (`kubectl rollout status`);
- a StatefulSet creates <name>-0..N-1 in order, scales down from the highest ordinal and rolls its pods;
- a CronJob starts a Job at its next minute;
- a ReplicaSet adopts a matching orphan, releases a relabelled pod, and creates each pod once even when its pod
  cache lags behind its own creates (expectations).

kubectl runs in a thread: the controllers share this test's event loop.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from apiserver.conftest import KUBECTL_DIR, Kubectl
from conftest import cm_config, eventually, scheduled_cluster
from prometheus_client import CollectorRegistry

from kpy_components.api import meta
from kpy_components.client import EventRecorder, RESTClient, SharedInformerFactory, is_not_found, load_kubeconfig
from kpy_components.controller_manager.controller import ControllerContext
from kpy_components.controller_manager.controllers.replicaset import ReplicaSetController

pytestmark = pytest.mark.anyio
KUBECTL_VERSION = "1.33"
REPLICAS, SURGE, UNAVAILABLE = 20, 5, 5  # 25% of 20 each
_node_names = itertools.count()
WORKLOAD_CONTROLLERS = ("deployment", "replicaset", "daemonset", "statefulset", "job", "cronjob", "ttl-after-finished",
                        "garbagecollector")


@pytest.fixture
def kubectl(cluster, tmp_path) -> Kubectl:
    if not (KUBECTL_DIR / f"kubectl.{KUBECTL_VERSION}").exists():
        pytest.fail(f"kubectl {KUBECTL_VERSION} is missing: the tests need the real kubectl")
    return Kubectl(KUBECTL_VERSION, cluster.admin_kubeconfig, tmp_path / "kubectl-cache")


@pytest.fixture
async def workloads(cluster, nodes):
    """Four simulated nodes (removed afterwards: the next test's kubelets would not look after them), the
    scheduler and the workload controllers."""
    async with scheduled_cluster(cluster, nodes, list(WORKLOAD_CONTROLLERS), "worker", node_count=4) as (_, context):
        yield context


def deployment(name: str, image: str, replicas: int = REPLICAS) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "resources": {"requests": {"cpu": "10m"}}}]}}}}


async def kubectl_run(kubectl: Kubectl, *args: str, timeout: float = 90):
    return await asyncio.to_thread(kubectl, *args, timeout=timeout)


class Sampler:
    """Samples, while a rollout runs, the pods that are ready and not being deleted, and the sum of the
    Deployment's ReplicaSets' spec.replicas."""

    def __init__(self, client, namespace: str, app: str):
        self.client, self.namespace, self.app = client, namespace, app
        self.min_available, self.max_total, self.samples = None, 0, 0

    async def run(self) -> None:
        pods, replicasets = self.client.resource("pods"), self.client.resource("replicasets", "apps")
        while True:
            listed = await self.client.list(pods, self.namespace, label_selector=f"app={self.app}")
            available = sum(1 for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")
                            and any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in pod.get("status", {}).get("conditions") or ()))
            sets = await self.client.list(replicasets, self.namespace, label_selector=f"app={self.app}")
            total = sum(rs["spec"].get("replicas", 0) for rs in sets["items"])
            self.min_available = available if self.min_available is None else min(self.min_available, available)
            self.max_total = max(self.max_total, total)
            self.samples += 1
            await asyncio.sleep(0.05)


async def image_of(client, namespace: str, name: str) -> str:
    current = await client.get(client.resource("deployments", "apps"), name, namespace)
    return current["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_deployment_rolls_out_scales_updates_and_rolls_back(client, namespace, workloads, kubectl):
    deployments = client.resource("deployments", "apps")
    started = time.monotonic()
    await client.create(deployments, deployment("web", "nginx:1.25"), namespace)
    done = await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "deployment/web", "--timeout=90s")
    assert 'deployment "web" successfully rolled out' in done.stdout
    first_rollout = time.monotonic() - started
    status = (await client.get(deployments, "web", namespace))["status"]
    assert status["replicas"] == status["updatedReplicas"] == status["availableReplicas"] == REPLICAS
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"

    await kubectl_run(kubectl, "-n", namespace, "scale", "deployment/web", "--replicas=26")
    await eventually(lambda: _available(client, namespace, "web", 26), timeout=60, message="26 available")
    await kubectl_run(kubectl, "-n", namespace, "scale", "deployment/web", "--replicas=20")
    await eventually(lambda: _settled(client, namespace, "web", REPLICAS), timeout=60, message="back to 20")

    sampler = Sampler(client, namespace, "web")
    sampling = asyncio.create_task(sampler.run())
    try:
        await kubectl_run(kubectl, "-n", namespace, "set", "image", "deployment/web", "app=nginx:1.26")
        await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "deployment/web", "--timeout=90s")
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
    assert sampler.samples >= 3 and sampler.max_total > REPLICAS, "the sampler did not see the rollout"
    assert sampler.min_available >= REPLICAS - UNAVAILABLE, sampler.min_available
    assert sampler.max_total <= REPLICAS + SURGE, sampler.max_total

    history = await kubectl_run(kubectl, "-n", namespace, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["1", "2"]
    undo = await kubectl_run(kubectl, "-n", namespace, "rollout", "undo", "deployment/web")
    assert "rolled back" in undo.stdout
    assert await image_of(client, namespace, "web") == "nginx:1.25"
    await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "deployment/web", "--timeout=90s")
    current = await client.get(deployments, "web", namespace)
    assert current["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    sets = (await client.list(client.resource("replicasets", "apps"), namespace))["items"]
    by_revision = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs for rs in sets}
    assert sorted(by_revision) == ["2", "3"]  # revision 1's ReplicaSet is revision 3 now
    assert by_revision["3"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert by_revision["3"]["spec"]["replicas"] == REPLICAS and by_revision["2"]["spec"]["replicas"] == 0
    assert first_rollout < 60

    oldest = Kubectl("1.27", kubectl.kubeconfig, kubectl.cache_dir.parent / "kubectl-1.27-cache")
    await kubectl_run(oldest, "-n", namespace, "rollout", "undo", "deployment/web", "--to-revision=2")
    await kubectl_run(oldest, "-n", namespace, "rollout", "status", "deployment/web", "--timeout=90s")
    assert await image_of(client, namespace, "web") == "nginx:1.26"
    current = await client.get(deployments, "web", namespace)
    assert current["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"


async def _available(client, namespace: str, name: str, count: int) -> bool:
    status = (await client.get(client.resource("deployments", "apps"), name, namespace)).get("status") or {}
    return status.get("availableReplicas") == count


async def _settled(client, namespace: str, name: str, count: int) -> bool:
    status = (await client.get(client.resource("deployments", "apps"), name, namespace)).get("status") or {}
    return status.get("availableReplicas") == status.get("replicas") == count


async def test_job_completes(client, namespace, workloads, kubectl):
    jobs = client.resource("jobs", "batch")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
           "spec": {"completions": 3, "parallelism": 2, "template": {
               "metadata": {"annotations": {"sim.kpy.io/exit-after": "0.5"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5"}]}}}}
    await client.create(jobs, job, namespace)
    await kubectl_run(kubectl, "-n", namespace, "wait", "--for=condition=complete", "job/pi", "--timeout=60s")
    status = (await client.get(jobs, "pi", namespace))["status"]
    assert status["succeeded"] == 3 and not status.get("failed") and not status.get("active")
    assert status["completionTime"] >= status["startTime"]
    pods = (await client.list(client.resource("pods"), namespace, label_selector="job-name=pi"))["items"]
    assert len(pods) == 3
    assert all(pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi" for pod in pods)


async def test_job_fails_after_its_backoff_limit(client, namespace, workloads, kubectl):
    jobs = client.resource("jobs", "batch")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "crash"},
           "spec": {"backoffLimit": 1, "template": {
               "metadata": {"annotations": {"sim.kpy.io/exit-after": "0.2", "sim.kpy.io/exit-code": "1"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "crash", "image": "busybox"}]}}}}
    await client.create(jobs, job, namespace)
    await kubectl_run(kubectl, "-n", namespace, "wait", "--for=condition=failed", "job/crash", "--timeout=60s")
    status = (await client.get(jobs, "crash", namespace))["status"]
    failed = [c for c in status["conditions"] if c["type"] == "Failed"][0]
    assert failed["reason"] == "BackoffLimitExceeded"
    assert status["failed"] == 2 and not status.get("succeeded") and not status.get("active")
    pods = (await client.list(client.resource("pods"), namespace, label_selector="job-name=crash"))["items"]
    created = sorted(meta.parse_rfc3339(pod["metadata"]["creationTimestamp"]).timestamp() for pod in pods)
    assert len(created) == 2 and created[1] - created[0] >= 9  # the replacement waited out the 10 s backoff


async def test_an_indexed_job_runs_each_index_once(client, namespace, workloads, kubectl):
    jobs = client.resource("jobs", "batch")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "shards"},
           "spec": {"completionMode": "Indexed", "completions": 3, "parallelism": 2, "template": {
               "metadata": {"annotations": {"sim.kpy.io/exit-after": "0.3"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "shard", "image": "busybox"}]}}}}
    await client.create(jobs, job, namespace)
    await kubectl_run(kubectl, "-n", namespace, "wait", "--for=condition=complete", "job/shards", "--timeout=60s")
    status = (await client.get(jobs, "shards", namespace))["status"]
    assert status["succeeded"] == 3 and status["completedIndexes"] == "0-2"
    pods = (await client.list(client.resource("pods"), namespace, label_selector="job-name=shards"))["items"]
    index = "batch.kubernetes.io/job-completion-index"
    assert sorted(pod["metadata"]["annotations"][index] for pod in pods) == ["0", "1", "2"]
    assert all(pod["metadata"]["name"].startswith(f"shards-{pod['metadata']['labels'][index]}-")
               and pod["spec"]["hostname"] == f"shards-{pod['metadata']['labels'][index]}" for pod in pods)
    shown = (await kubectl_run(kubectl, "-n", namespace, "get", "job", "shards")).stdout
    assert "3/3" in shown.splitlines()[1].split()  # COMPLETIONS
    broken = {**job, "metadata": {"name": "unbounded"}, "spec": {**job["spec"], "parallelism": 2}}
    del broken["spec"]["completions"]
    refused = await asyncio.to_thread(kubectl, "-n", namespace, "create", "-f", "-", input=json.dumps(broken),
                                      check=False)
    assert refused.returncode == 1
    assert ('The Job "unbounded" is invalid: spec.completions: Required value: when completion mode is Indexed'
            in refused.stderr)


async def test_a_finished_job_goes_with_its_pods_after_ttl_seconds_after_finished(client, namespace, workloads):
    jobs, pods = client.resource("jobs", "batch"), client.resource("pods")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "brief"},
           "spec": {"ttlSecondsAfterFinished": 3, "template": {
               "metadata": {"annotations": {"sim.kpy.io/exit-after": "0.2"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "brief", "image": "busybox"}]}}}}
    await client.create(jobs, job, namespace)

    async def finished() -> dict | None:
        status = (await client.get(jobs, "brief", namespace)).get("status") or {}
        return next((c for c in status.get("conditions") or () if c["type"] == "Complete"), None)
    complete = await eventually(finished, timeout=60)
    assert (await client.list(pods, namespace, label_selector="job-name=brief"))["items"]  # kept for the TTL

    async def gone() -> bool:
        try:
            await client.get(jobs, "brief", namespace)
        except Exception as error:
            if is_not_found(error):
                return True
            raise
        return False
    await eventually(gone, timeout=30)
    deleted_after = time.time() - meta.parse_rfc3339(complete["lastTransitionTime"]).timestamp()
    assert deleted_after >= 3 - 1  # not before the TTL (the condition's time has whole seconds)
    assert not (await client.list(pods, namespace, label_selector="job-name=brief"))["items"]


def containers(image: str) -> list[dict]:
    return [{"name": "app", "image": image, "resources": {"requests": {"cpu": "10m"}}}]


async def test_daemonset_runs_on_every_tolerated_node_and_rolls(client, namespace, workloads, nodes, kubectl):
    tainted = f"tainted-{next(_node_names)}"
    await nodes.add(tainted, cpu="8", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    daemonsets, pods = client.resource("daemonsets", "apps"), client.resource("pods")
    try:
        await client.create(daemonsets, {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                                         "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                                             "metadata": {"labels": {"app": "agent"}},
                                             "spec": {"containers": containers("agent:1")}}}}, namespace)
        await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "daemonset/agent", "--timeout=60s")
        status = (await client.get(daemonsets, "agent", namespace))["status"]
        assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberReady"],
                status["numberAvailable"], status["numberMisscheduled"]) == (4, 4, 4, 4, 0)
        listed = (await client.list(pods, namespace, label_selector="app=agent"))["items"]
        placed = sorted(pod["spec"]["nodeName"] for pod in listed)
        assert len(set(placed)) == 4 and tainted not in placed
        pinned = listed[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert pinned["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [listed[0]["spec"]["nodeName"]]
        assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"} in \
            listed[0]["spec"]["tolerations"]

        await kubectl_run(kubectl, "-n", namespace, "set", "image", "daemonset/agent", "app=agent:2")
        await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "daemonset/agent", "--timeout=60s")
        listed = (await client.list(pods, namespace, label_selector="app=agent"))["items"]
        live = [pod for pod in listed if not pod["metadata"].get("deletionTimestamp")]
        assert len(live) == 4 and {pod["spec"]["containers"][0]["image"] for pod in live} == {"agent:2"}
    finally:
        await client.delete(nodes.nodes_info, tainted)


async def pod_names_in_creation_order(client, namespace: str, names: list[str], stop: asyncio.Event,
                                      resource_version: str) -> None:
    async with client.watch(client.resource("pods"), namespace, resource_version=resource_version) as events:
        async for event in events:
            if event.type == "ADDED":
                names.append(event.object["metadata"]["name"])
            if stop.is_set():
                return


async def test_statefulset_orders_pods_scales_down_in_reverse_and_rolls(client, namespace, workloads, kubectl):
    statefulsets, pods = client.resource("statefulsets", "apps"), client.resource("pods")
    created: list[str] = []
    stop = asyncio.Event()
    start = (await client.list(pods, namespace))["metadata"]["resourceVersion"]
    watching = asyncio.create_task(pod_names_in_creation_order(client, namespace, created, stop, start))
    await client.create(statefulsets, {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                                       "spec": {"replicas": 3, "serviceName": "db",
                                                "selector": {"matchLabels": {"app": "db"}}, "template": {
                                                    "metadata": {"labels": {"app": "db"}},
                                                    "spec": {"containers": containers("db:1")}}}}, namespace)
    try:
        await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "statefulset/db", "--timeout=60s")
    finally:
        stop.set()
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert created == ["db-0", "db-1", "db-2"]
    first = await client.get(pods, "db-1", namespace)
    assert (first["spec"]["hostname"], first["spec"]["subdomain"]) == ("db-1", "db")
    assert first["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"

    await kubectl_run(kubectl, "-n", namespace, "scale", "statefulset/db", "--replicas=1")

    async def only_db_0():
        listed = (await client.list(pods, namespace, label_selector="app=db"))["items"]
        return sorted(p["metadata"]["name"] for p in listed) == ["db-0"]
    await eventually(only_db_0, timeout=30, message="db-1 and db-2 removed")
    await kubectl_run(kubectl, "-n", namespace, "scale", "statefulset/db", "--replicas=3")
    await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "statefulset/db", "--timeout=60s")

    await kubectl_run(kubectl, "-n", namespace, "set", "image", "statefulset/db", "app=db:2")
    done = await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "statefulset/db", "--timeout=60s")
    assert "roll out complete: 3 new pods have been updated" in done.stdout  # partition 0 is a partition to kubectl
    status = (await client.get(statefulsets, "db", namespace))["status"]
    assert status["currentRevision"] == status["updateRevision"] and status["updatedReplicas"] == 3
    images = {(await client.get(pods, f"db-{n}", namespace))["spec"]["containers"][0]["image"] for n in range(3)}
    assert images == {"db:2"}


async def test_cronjob_starts_a_job_at_the_next_minute(client, namespace, workloads):
    cronjobs, jobs = client.resource("cronjobs", "batch"), client.resource("jobs", "batch")
    await client.create(cronjobs, {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
                                   "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
                                       "metadata": {"annotations": {"sim.kpy.io/exit-after": "0.2"}},
                                       "spec": {"restartPolicy": "Never",
                                                "containers": containers("busybox")}}}}}}, namespace)

    async def a_job():
        return (await client.list(jobs, namespace))["items"]
    started = await eventually(a_job, timeout=75, interval=1, message="a Job from the CronJob")
    job = started[0]
    minute = int(job["metadata"]["name"].rsplit("-", 1)[1])
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].endswith(":00Z")

    async def scheduled():
        status = (await client.get(cronjobs, "tick", namespace)).get("status") or {}
        return status if status.get("lastScheduleTime") else None
    status = await eventually(scheduled, timeout=10, message="lastScheduleTime")
    assert status["lastScheduleTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute * 60))


async def test_deployment_recreate_pause_resume_and_restart(client, namespace, workloads, kubectl):
    deployments, pods = client.resource("deployments", "apps"), client.resource("pods")
    api = deployment("api", "api:1", replicas=4)
    api["spec"]["strategy"] = {"type": "Recreate"}
    await client.create(deployments, api, namespace)
    await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "deployment/api", "--timeout=60s")

    await kubectl_run(kubectl, "-n", namespace, "rollout", "pause", "deployment/api")
    await kubectl_run(kubectl, "-n", namespace, "set", "image", "deployment/api", "app=api:2")

    async def paused():
        current = await client.get(deployments, "api", namespace)
        progressing = [c for c in current["status"]["conditions"] if c["type"] == "Progressing"]
        return progressing and progressing[0]["reason"] == "DeploymentPaused"
    await eventually(paused, timeout=20, message="Progressing reason DeploymentPaused")
    replicasets = (await client.list(client.resource("replicasets", "apps"), namespace,
                                     label_selector="app=api"))["items"]
    assert len(replicasets) == 1  # a paused Deployment does not roll

    generations: set[int] = set()

    async def sample_template_hashes():
        while True:  # Recreate: old and new pods never exist at the same time
            listed = (await client.list(pods, namespace, label_selector="app=api"))["items"]
            generations.add(len({pod["metadata"]["labels"]["pod-template-hash"] for pod in listed}))
            await asyncio.sleep(0.05)
    sampling = asyncio.create_task(sample_template_hashes())
    try:
        await kubectl_run(kubectl, "-n", namespace, "rollout", "resume", "deployment/api")
        await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "deployment/api", "--timeout=60s")
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
    assert max(generations) == 1, generations
    assert await image_of(client, namespace, "api") == "api:2"

    await kubectl_run(kubectl, "-n", namespace, "rollout", "restart", "deployment/api")
    await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "deployment/api", "--timeout=60s")
    current = await client.get(deployments, "api", namespace)
    assert current["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert "kubectl.kubernetes.io/restartedAt" in current["spec"]["template"]["metadata"]["annotations"]


async def test_deployment_without_progress_exceeds_its_deadline(client, namespace, workloads, kubectl):
    stuck = deployment("stuck", "app:1", replicas=2)
    stuck["spec"]["progressDeadlineSeconds"] = 3
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"no-such-label": "anywhere"}  # never scheduled
    await client.create(client.resource("deployments", "apps"), stuck, namespace)
    done = await asyncio.to_thread(kubectl, "-n", namespace, "rollout", "status", "deployment/stuck",
                                   "--timeout=60s", check=False, timeout=90)
    assert done.returncode != 0 and 'deployment "stuck" exceeded its progress deadline' in done.stderr
    status = (await client.get(client.resource("deployments", "apps"), "stuck", namespace))["status"]
    progressing = [c for c in status["conditions"] if c["type"] == "Progressing"][0]
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    available = [c for c in status["conditions"] if c["type"] == "Available"][0]
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")


async def test_replicaset_adopts_releases_and_never_creates_twice(client, namespace, workloads):
    replicasets, pods = client.resource("replicasets", "apps"), client.resource("pods")
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"app": "cache"}},
              "spec": {"containers": containers("cache:1")}}
    await client.create(pods, orphan, namespace)

    async def running():
        return (await client.get(pods, "orphan", namespace)).get("status", {}).get("phase") == "Running"
    # running first: simnodes' kubelet drops a status write that conflicts with the adoption and does not retry
    await eventually(running, timeout=20, message="the orphan pod running")
    added: list[str] = []
    stop = asyncio.Event()
    start = (await client.list(pods, namespace))["metadata"]["resourceVersion"]
    watching = asyncio.create_task(pod_names_in_creation_order(client, namespace, added, stop, start))
    rs = await client.create(replicasets, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "cache"},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "cache"}},
                 "template": {"metadata": {"labels": {"app": "cache"}},
                              "spec": {"containers": containers("cache:1")}}}}, namespace)

    async def ready(count: int):
        status = (await client.get(replicasets, "cache", namespace)).get("status") or {}
        return status.get("readyReplicas") == status.get("replicas") == count and \
            status.get("observedGeneration") == 1
    await eventually(lambda: ready(10), timeout=30, message="10 ready replicas")
    adopted = await client.get(pods, "orphan", namespace)
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    await asyncio.sleep(1.0)  # time for a double create to show up, if there were one
    stop.set()
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)
    assert len(added) == 9 and all(name.startswith("cache-") and len(name) == len("cache-") + 5 for name in added)

    await client.patch(pods, "orphan", {"metadata": {"labels": {"app": "debugging"}}}, namespace)

    async def released():
        pod = await client.get(pods, "orphan", namespace)
        listed = (await client.list(pods, namespace, label_selector="app=cache"))["items"]
        return not pod["metadata"].get("ownerReferences") and len(listed) == 10
    await eventually(released, timeout=30, message="the relabelled pod released and replaced")


async def test_replicaset_expectations_prevent_double_creates_while_the_pod_cache_lags(client, namespace,
                                                                                       cluster):
    """The ReplicaSet controller driven by hand: with its pod informer stopped (a cache that has not seen the
    controller's own creates), a second sync must not create the pods again."""
    async with RESTClient(load_kubeconfig(cluster.admin_kubeconfig)) as own:
        informers = SharedInformerFactory(own)
        controller = ReplicaSetController(ControllerContext(own, informers, cm_config(["replicaset"]),
                                                           lambda name: EventRecorder(own, name),
                                                           CollectorRegistry()))
        controller.setup()
        informers.start()
        try:
            assert await informers.wait_for_sync(10)
            await client.create(client.resource("replicasets", "apps"), {
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "lagging"},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "lagging"}},
                         "template": {"metadata": {"labels": {"app": "lagging"}},
                                      "spec": {"containers": containers("lagging:1")}}}}, namespace)
            key = f"{namespace}/lagging"
            await eventually(lambda: controller.owners.store.get(key), timeout=10, message="the ReplicaSet cached")
            await controller.pods.stop()
            await controller.reconcile(key)
            await eventually(lambda: (controller.owners.store.get(key).get("status") or {}).get("observedGeneration"),
                             timeout=10, message="the first sync's status in the ReplicaSet cache")
            await controller.reconcile(key)
            listed = await client.list(client.resource("pods"), namespace, label_selector="app=lagging")
            assert len(listed["items"]) == 3
        finally:
            await informers.stop()
