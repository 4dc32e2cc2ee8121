"""The pods bound to this node, run through CRI: the kubelet's keyed, idempotent loop.

Shape (as the control loops): an informer on the pods bound here (fieldSelector spec.nodeName=<node>) and a relist
of the runtime every second (upstream's PLEG) feed one work queue keyed by pod UID; one worker at a time per UID
converges what runs to what the pod asks for and reports the pod's status. Probe results and back-off timers
re-queue the UID. Nothing is kept that the runtime and the API do not hold, so a restarted kubelet adopts what runs:
it finds the same sandbox and containers by their labels and neither restarts nor leaks them.

One sync of a pod (`sync`):
- gone from the API → every container and the sandbox stopped and removed, its volumes unmounted;
- being deleted → preStop hooks, SIGTERM, SIGKILL after the grace period, final status, then the pod object's
  final delete (grace 0, UID precondition);
- Succeeded/Failed → nothing more runs;
- otherwise → volumes, a ready sandbox (a new one when it died: every container starts again), init containers one at
  a time, then every container as restartPolicy and back-off allow, then the status.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from kpy_components.api.meta import deep_copy
from kpy_components.client import (EventRecorder, RESTClient, SharedInformerFactory, WorkQueue, field_index,
                                   ignore_not_found, is_not_found, run_workers)

from . import status as pod_status
from .backoff import BackOff
from .config import KubeletConfig
from .cri import requests
from .cri.client import CRIError, RuntimeClient
from .env import resolve_env
from .model import ContainerConfigError, ContainerRuntimeState, PodObservation, Waiting
from .probes import ProbeManager
from .volumes import VolumeManager

log = logging.getLogger(__name__)
UID_INDEX = "uid"
RELIST_PERIOD = 1.0  # seconds between runtime relists (upstream's PLEG period)
RESYNC_PERIOD = 10.0  # every pod is synced at least this often (back-off expiry, token refresh, config drift)
WORKERS = 8
NORMAL, WARNING = "Normal", "Warning"


def _restart_wanted(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _grace_period(pod: dict) -> int:
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    value = metadata.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", 30)
    return max(int(value), 2)  # upstream's minimum: give SIGTERM a moment even for --grace-period=1


class PodManager:
    def __init__(self, client: RESTClient, informers: SharedInformerFactory, runtime: RuntimeClient,
                 config: KubeletConfig, node_name: str, recorder: EventRecorder, source, host_ip: str):
        self.client, self.runtime, self.config = client, runtime, config
        self.node_name, self.recorder, self.source, self.host_ip = node_name, recorder, source, host_ip
        self.pods_info = client.resource("pods")
        self.pods = informers.informer(self.pods_info, field_selector=f"spec.nodeName={node_name}",
                                       indexers={UID_INDEX: field_index("metadata.uid")})
        self.services = informers.informer(client.resource("services"))
        self.queue = WorkQueue("pods")
        self.observed: dict[str, PodObservation] = {}
        self.states: dict[tuple[str, str], ContainerRuntimeState] = {}
        self.backoff = BackOff()
        self.volumes = VolumeManager(config.root_dir / "pods", source)
        self.probes = ProbeManager(runtime, on_change=self.queue.add, recorder=recorder)
        self.pods.add_handler(on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new),
                              on_delete=self._enqueue)

    # --- feeding the queue -------------------------------------------------------------------------------------
    def _enqueue(self, pod: dict) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self.queue.add(uid)

    def pod(self, uid: str) -> dict | None:
        found = self.pods.store.by_index(UID_INDEX, uid)
        return found[0] if found else None

    def find(self, namespace: str, name: str) -> dict | None:
        return self.pods.store.get_object(namespace, name)

    async def run(self) -> None:
        await self.pods.wait_for_sync()
        await self.services.wait_for_sync()
        await self._relist()  # adopt what runs before the first sync
        for pod in self.pods.store.list():
            self._enqueue(pod)
        await asyncio.gather(run_workers(self.queue, self.sync, WORKERS), self._relist_loop(), self._resync_loop())

    async def _relist(self) -> None:
        current = await self.runtime.list_pod_observations()
        for uid in set(current) | set(self.observed):
            if current.get(uid) != self.observed.get(uid):
                self.queue.add(uid)
        self.observed = current

    async def _relist_loop(self) -> None:
        while True:
            await asyncio.sleep(RELIST_PERIOD)
            try:
                await self._relist()
            except CRIError as error:
                log.warning("Runtime relist failed: %s", error)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_PERIOD)
            for pod in self.pods.store.list():
                self._enqueue(pod)

    # --- one pod -----------------------------------------------------------------------------------------------
    async def sync(self, uid: str) -> None:
        pod = self.pod(uid)
        observation = await self.runtime.pod_observation(uid)
        self.observed[uid] = observation
        if pod is None:
            await self._remove(uid, observation)
            return
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._terminate(pod, observation)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            await self._stop_all(pod, observation, _grace_period(pod), reason=None)
            return
        try:
            await self._converge(pod, observation)
        finally:
            await self._report(pod)

    async def _converge(self, pod: dict, observation: PodObservation) -> None:
        uid = pod["metadata"]["uid"]
        spec = pod.get("spec") or {}
        await self.volumes.prepare(pod)
        sandbox = observation.sandbox
        if sandbox is None or not sandbox.ready:
            if sandbox is not None and self._done_for_good(pod, observation):
                return  # restartPolicy Never (or OnFailure after success): the pod is over, not restarted
            await self._stop_all(pod, observation, _grace_period(pod), reason=None)
            await self._new_sandbox(pod, 0 if sandbox is None else sandbox.attempt + 1)
            observation = await self.runtime.pod_observation(uid)
            self.observed[uid] = observation
            if observation.sandbox is None:
                return
        sandbox_id = observation.sandbox.id
        # Init containers: one at a time, each to success before the next.
        for container in spec.get("initContainers") or ():
            latest = observation.latest(container["name"])
            if latest is not None and latest.state == "exited" and latest.exit_code == 0:
                continue
            if latest is not None and latest.state in ("running", "created"):
                return
            if latest is not None and latest.state == "exited":
                if spec.get("restartPolicy", "Always") == "Never":
                    return  # the pod failed; status says so
                if not self._back_off_passed(pod, container, latest):
                    return
            await self._start(pod, container, sandbox_id, observation)
            return
        for container in spec.get("containers") or ():
            latest = observation.latest(container["name"])
            state = self.states.setdefault((uid, container["name"]), ContainerRuntimeState())
            if latest is not None and latest.state == "running":
                if self.probes.liveness_failed(uid, container["name"], latest.id):
                    self.recorder.event(pod, NORMAL, "Killing",
                                        f"Container {container['name']} failed liveness probe, will be restarted",
                                        self._field_path(pod, container))
                    await self._stop_container(latest.id, _grace_period(pod))
                continue
            if latest is not None and latest.state == "created":
                await self.runtime.start_container(latest.id)
                continue
            if latest is not None and latest.state == "exited":
                if not _restart_wanted(spec.get("restartPolicy", "Always"), latest.exit_code):
                    continue
                if not self._back_off_passed(pod, container, latest):
                    continue
            if state.waiting is not None and state.waiting.reason == "ImagePullBackOff" and \
                    not self.backoff.image_pull_allowed(container.get("image", ""), time.monotonic()):
                continue
            await self._start(pod, container, sandbox_id, observation)

    def _done_for_good(self, pod: dict, observation: PodObservation) -> bool:
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        if policy == "Always":
            return False
        finished = [observation.latest(c["name"]) for c in (pod.get("spec") or {}).get("containers") or ()]
        return all(c is not None and c.state == "exited" and not _restart_wanted(policy, c.exit_code)
                   for c in finished)

    def _back_off_passed(self, pod: dict, container: dict, latest) -> bool:
        """Whether a restart may happen now; else the container waits in CrashLoopBackOff and the pod is re-queued
        when the back-off ends."""
        uid, name = pod["metadata"]["uid"], container["name"]
        now = time.monotonic()
        remaining = self.backoff.crash_remaining(uid, name, latest.finished_at, now)
        if remaining <= 0:
            return True
        state = self.states.setdefault((uid, name), ContainerRuntimeState())
        delay = self.backoff.crash_delay(uid, name)
        message = f"back-off {delay:g}s restarting failed container={name} pod={pod['metadata']['name']}_" \
                  f"{pod['metadata']['namespace']}({uid})"
        if state.waiting is None or state.waiting.reason != "CrashLoopBackOff":
            self.recorder.event(pod, WARNING, "BackOff", "Back-off restarting failed container "
                                f"{name} in pod {pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
                                self._field_path(pod, container))
        state.waiting = Waiting("CrashLoopBackOff", message)
        self.queue.add_after(uid, remaining)
        return False

    @staticmethod
    def _field_path(pod: dict, container: dict) -> str:
        spec = pod.get("spec") or {}
        for kind in ("initContainers", "containers"):
            for index, c in enumerate(spec.get(kind) or ()):
                if c.get("name") == container.get("name"):
                    return f"spec.{kind}{{{c['name']}}}"
        return ""

    async def _new_sandbox(self, pod: dict, attempt: int) -> None:
        config = requests.sandbox_config(pod, attempt=attempt, settings=self._dns_settings(),
                                         log_root=str(self.config.pod_logs_dir),
                                         cgroup_parent=self._cgroup_parent(pod))
        try:
            await self.runtime.run_pod_sandbox(config)
        except CRIError as error:
            self.recorder.event(pod, WARNING, "FailedCreatePodSandBox",
                                f"Failed to create pod sandbox: {error.message}")
            raise

    def _dns_settings(self):
        return requests.DNSSettings(cluster_dns=self.config.cluster_dns, cluster_domain=self.config.cluster_domain,
                                    resolv_conf=self.config.resolv_conf)

    def _cgroup_parent(self, pod: dict) -> str:
        qos = pod_status.qos_class(pod)
        uid = pod["metadata"]["uid"]
        if self.config.cgroup_driver == "systemd":
            level = "" if qos == "Guaranteed" else f"-{qos.lower()}"
            parent = f"kubepods{level}.slice" if level else "kubepods.slice"
            return f"{parent.removesuffix('.slice')}-pod{uid.replace('-', '_')}.slice" if level else \
                f"kubepods-pod{uid.replace('-', '_')}.slice"
        return f"/kubepods/{'' if qos == 'Guaranteed' else qos.lower() + '/'}pod{uid}"

    async def _start(self, pod: dict, container: dict, sandbox_id: str, observation: PodObservation) -> None:
        uid, name = pod["metadata"]["uid"], container["name"]
        state = self.states.setdefault((uid, name), ContainerRuntimeState())
        field_path = self._field_path(pod, container)
        latest = observation.latest(name)
        attempt = 0 if latest is None else latest.attempt + 1
        if not await self._ensure_image(pod, container, state, field_path):
            return
        try:
            envs = await resolve_env(pod, container, self.source, self.services.store.list(),
                                     host_ip=self.host_ip)
            mounts = self.volumes.mounts(pod, container)
        except ContainerConfigError as error:
            state.waiting = Waiting("CreateContainerConfigError", str(error))
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error}", field_path)
            self.queue.add_after(uid, 5.0)
            return
        sandbox_config = requests.sandbox_config(pod, attempt=observation.sandbox.attempt,
                                                 settings=self._dns_settings(),
                                                 log_root=str(self.config.pod_logs_dir),
                                                 cgroup_parent=self._cgroup_parent(pod))
        config = requests.container_config(pod, container, attempt=attempt, envs=envs, mounts=mounts)
        if latest is not None and latest.state == "exited":
            await ignore_cri(self._prune(observation, name))
        try:
            container_id = await self.runtime.create_container(sandbox_id, config, sandbox_config)
        except CRIError as error:
            state.waiting = Waiting("CreateContainerError", error.message)
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error.message}", field_path)
            raise
        self.recorder.event(pod, NORMAL, "Created", f"Created container {name}", field_path)
        try:
            await self.runtime.start_container(container_id)
        except CRIError as error:
            state.waiting = Waiting("RunContainerError", error.message)
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error.message}", field_path)
            raise
        state.waiting = None
        self.recorder.event(pod, NORMAL, "Started", f"Started container {name}", field_path)
        self.probes.watch(pod, container, container_id, observation.sandbox_ip())
        self.queue.add(uid)

    async def _prune(self, observation: PodObservation, name: str) -> None:
        """Keep only the newest exited instance of a container (it holds lastState and the --previous log)."""
        exited = sorted((c for c in observation.containers if c.name == name and c.state == "exited"),
                        key=lambda c: c.attempt)
        for old in exited[:-1]:
            await self.runtime.remove_container(old.id)

    async def _ensure_image(self, pod: dict, container: dict, state: ContainerRuntimeState, field_path: str) -> bool:
        image = container.get("image", "")
        policy = container.get("imagePullPolicy") or ("Always" if image.endswith(":latest") or ":" not in
                                                       image.rsplit("/", 1)[-1] else "IfNotPresent")
        present = await self.runtime.image_status(image)
        if present and policy != "Always":
            if state.waiting is None or state.waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                self.recorder.event(pod, NORMAL, "Pulled",
                                    f'Container image "{image}" already present on machine', field_path)
            return True
        if policy == "Never":
            state.waiting = Waiting("ErrImageNeverPull", f'Container image "{image}" is not present with pull '
                                    "policy of Never")
            self.recorder.event(pod, WARNING, "ErrImageNeverPull", state.waiting.message, field_path)
            return False
        now = time.monotonic()
        if not self.backoff.image_pull_allowed(image, now):
            state.waiting = Waiting("ImagePullBackOff", f'Back-off pulling image "{image}"')
            self.recorder.event(pod, NORMAL, "BackOff", state.waiting.message, field_path)
            self.queue.add_after(pod["metadata"]["uid"], self.backoff.image_pull_remaining(image, now))
            return False
        self.recorder.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', field_path)
        started = time.monotonic()
        try:
            await self.runtime.pull_image(image, auth=await self._pull_auth(pod, image))
        except CRIError as error:
            self.backoff.image_pull_failed(image, time.monotonic())
            state.waiting = Waiting("ErrImagePull", error.message)
            self.recorder.event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {error.message}',
                                field_path)
            self.recorder.event(pod, WARNING, "Failed", "Error: ErrImagePull", field_path)
            self.queue.add_after(pod["metadata"]["uid"], self.backoff.image_pull_remaining(image, time.monotonic()))
            return False
        self.backoff.image_pull_succeeded(image)
        took = time.monotonic() - started
        self.recorder.event(pod, NORMAL, "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s',
                            field_path)
        return True

    async def _pull_auth(self, pod: dict, image: str) -> dict | None:
        """Credentials for `image` from the pod's imagePullSecrets (kubernetes.io/dockerconfigjson)."""
        namespace = pod["metadata"]["namespace"]
        for reference in (pod.get("spec") or {}).get("imagePullSecrets") or ():
            secret = await self.source.secret(namespace, reference.get("name", ""))
            auth = requests.registry_auth(secret, image) if secret else None
            if auth:
                return auth
        return None

    async def _stop_container(self, container_id: str, grace: int) -> None:
        try:
            await self.runtime.stop_container(container_id, grace)
        except CRIError as error:
            if not error.not_found:
                raise

    async def _stop_all(self, pod: dict | None, observation: PodObservation, grace: int, reason: str | None) -> None:
        running = [c for c in observation.containers if c.state in ("running", "created")]
        if pod is not None:
            specs = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or ()}
            for container in running:
                if container.name in specs and reason:
                    self.recorder.event(pod, NORMAL, "Killing", f"Stopping container {container.name}",
                                        self._field_path(pod, specs[container.name]))
            await asyncio.gather(*(self.probes.pre_stop(pod, specs.get(c.name), c.id, observation.sandbox_ip(),
                                                        grace) for c in running if c.name in specs))
        await asyncio.gather(*(self._stop_container(c.id, grace) for c in running))
        if pod is not None:
            self.probes.forget(pod["metadata"]["uid"])
        if observation.sandbox is not None and observation.sandbox.ready:
            await ignore_cri(self.runtime.stop_pod_sandbox(observation.sandbox.id))

    async def _terminate(self, pod: dict, observation: PodObservation) -> None:
        await self._stop_all(pod, observation, _grace_period(pod), reason="Killing")
        uid = pod["metadata"]["uid"]
        final = await self.runtime.pod_observation(uid)
        self.observed[uid] = final
        await self._report(pod, final)
        deleted = await ignore_not_found(self.client.delete(self.pods_info, pod["metadata"]["name"],
                                                            pod["metadata"]["namespace"], grace_period_seconds=0,
                                                            preconditions={"uid": uid}))
        if deleted is not None:
            log.info("Deleted pod pod=%s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])

    async def _remove(self, uid: str, observation: PodObservation) -> None:
        """The pod is gone from the API: nothing of it may remain."""
        if observation.sandbox is None and not observation.containers:
            self.observed.pop(uid, None)
            self.volumes.forget(uid)
            return
        await self._stop_all(None, observation, 2, reason=None)
        for container in observation.containers:
            await ignore_cri(self.runtime.remove_container(container.id))
        for sandbox_id in await self.runtime.sandbox_ids(uid):
            await ignore_cri(self.runtime.stop_pod_sandbox(sandbox_id))
            await ignore_cri(self.runtime.remove_pod_sandbox(sandbox_id))
        self.probes.forget(uid)
        self.backoff.forget(uid)
        for key in [k for k in self.states if k[0] == uid]:
            del self.states[key]
        await asyncio.to_thread(self.volumes.cleanup, uid)
        log.info("Removed pod's containers and sandbox uid=%s", uid)

    # --- status ------------------------------------------------------------------------------------------------
    async def _report(self, pod: dict, observation: PodObservation | None = None) -> None:
        uid = pod["metadata"]["uid"]
        observation = observation or await self.runtime.pod_observation(uid)
        states = {name: state for (u, name), state in self.states.items() if u == uid}
        for name, ready in self.probes.readiness(uid).items():
            states.setdefault(name, ContainerRuntimeState()).ready = ready
        for name, started in self.probes.started(uid).items():
            states.setdefault(name, ContainerRuntimeState()).started = started
        current = self.pod(uid) or pod
        wanted = pod_status.compute(current, observation, states, host_ip=self.host_ip,
                                    previous=current.get("status") or {})
        if wanted == (current.get("status") or {}):
            return
        patch = {"metadata": {"uid": uid}, "status": wanted}
        try:
            await self.client.patch(self.pods_info, current["metadata"]["name"], patch,
                                    current["metadata"]["namespace"], subresource="status", patch_type="merge")
        except Exception as error:
            if not is_not_found(error):
                raise

    def pod_list(self) -> dict:
        """/pods: the pods bound here as the kubelet knows them (a PodList)."""
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                "items": [deep_copy(p) for p in self.pods.store.list()]}


async def ignore_cri(call) -> None:
    """Await a cleanup call whose object may already be gone."""
    try:
        await call
    except CRIError as error:
        if not error.not_found:
            raise


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
