"""The workload controllers (deployment, replicaset, job, ...) running in-process with the real scheduler against a
REAL kpy-apiserver and simulated nodes, driven by the real kubectl where users would use it:

- a Deployment of 20 replicas rolls out (`kubectl rollout status` finishes), scales, rolls to a new template while
  availability is sampled and never drops below replicas - maxUnavailable (nor the ReplicaSets' sizes above
  replicas + maxSurge), and rolls back with `kubectl rollout undo`;
- a Job completes.

kubectl runs in a thread: the controllers share this test's event loop.
"""
from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from apiserver.conftest import KUBECTL_DIR, Kubectl
from conftest import cm_config, eventually, run_component

from kpy_components.controller_manager import manager
from kpy_components.scheduler import cli as scheduler_cli
from kpy_components.scheduler import config as scheduler_config

pytestmark = pytest.mark.anyio
KUBECTL_VERSION = "1.33"
REPLICAS, SURGE, UNAVAILABLE = 20, 5, 5  # 25% of 20 each
_node_names = itertools.count()


@pytest.fixture
def kubectl(cluster, tmp_path) -> Kubectl:
    if not (KUBECTL_DIR / f"kubectl.{KUBECTL_VERSION}").exists():
        pytest.fail(f"kubectl {KUBECTL_VERSION} is missing: the tests need the real kubectl")
    return Kubectl(KUBECTL_VERSION, cluster.admin_kubeconfig, tmp_path / "kubectl-cache")


@pytest.fixture
async def workloads(cluster, nodes):
    """Four simulated nodes (removed afterwards: the next test's kubelets would not look after them), the
    scheduler and the workload controllers."""
    names = [f"worker-{next(_node_names)}" for _ in range(4)]
    for name in names:
        await nodes.add(name, cpu="8")
    try:
        async with run_component(scheduler_cli.run, scheduler_config.load(None), cluster,
                                 name="default-scheduler"):
            async with run_component(manager.run, cm_config(["deployment", "replicaset", "job"]), cluster,
                                     name="kube-controller-manager") as context:
                yield context
    finally:
        for name in names:
            await nodes.client.delete(nodes.nodes_info, name)


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
    assert sampler.samples > 10
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
