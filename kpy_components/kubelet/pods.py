"""The pods bound to this node, run through CRI: the kubelet's keyed, idempotent loop.

Shape (as the control loops): an informer on the pods bound here (fieldSelector spec.nodeName=<node>) and a relist
of the runtime every second (upstream's PLEG) feed one work queue keyed by pod UID; the queue hands a UID to one
worker at a time, which converges what runs to what the pod asks for and reports the pod's status. Probe results and
back-off timers re-queue the UID. Nothing is kept that the runtime and the API do not hold, so a restarted kubelet
adopts what runs: it finds the same sandbox and containers by their labels and neither restarts nor leaks them.

One sync of a pod (`sync`):
- gone from the API → every container and sandbox of its UID stopped and removed, its volumes torn down;
- being deleted → preStop hooks, SIGTERM, SIGKILL after the grace period, the final status, then the pod object's
  final delete (grace 0, UID precondition);
- Succeeded/Failed in the API → nothing more runs;
- otherwise → volumes, a ready sandbox (a new one when it died: every container starts again), init containers one
  at a time, then every container as restartPolicy and back-off allow, then the status.
"""
from __future__ import annotations

import asyncio
import logging
import time

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy
from kpy_components.client import (EventRecorder, RESTClient, SharedInformerFactory, WorkQueue, field_index,
                                   ignore_not_found, is_not_found, run_workers)

from . import hooks, pullsecrets
from . import status as pod_status
from .backoff import BackOff
from .cgroups import pod_cgroup_parent
from .config import KubeletConfig
from .cri import api_pb2, dns, requests
from .cri.client import CRIError, CRINotFound, CRITimeout, RuntimeClient
from .env import resolve_env
from .model import ContainerConfigError, ContainerRuntimeState, Event, PodObservation, VolumeError, Waiting
from .probes import Prober, ProbeManager
from .volumes import VolumeManager

log = logging.getLogger(__name__)
UID_INDEX = "uid"
RELIST_PERIOD = 1.0  # seconds between runtime relists (upstream's PLEG period)
RESYNC_PERIOD = 10.0  # every pod is synced at least this often (token refresh, config drift)
WORKERS = 8
NORMAL, WARNING = "Normal", "Warning"
TERMINATION_LOG_LIMIT = 4096  # bytes of a termination message kept (upstream's)


def grace_period(pod: dict) -> int:
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    value = metadata.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", 30)
    return max(int(value), 2)  # upstream's minimum: give SIGTERM a moment even for --grace-period=1


def field_path(pod: dict, name: str) -> str:
    spec = pod.get("spec") or {}
    for kind in ("initContainers", "containers"):
        if any(c.get("name") == name for c in spec.get(kind) or ()):
            return f"spec.{kind}{{{name}}}"
    return ""


def image_pull_policy(container: dict) -> str:
    """The policy as defaulted by the API (which kpy's API server does), or upstream's rule when missing."""
    if container.get("imagePullPolicy"):
        return container["imagePullPolicy"]
    image = container.get("image", "").rsplit("/", 1)[-1]
    return "Always" if ":" not in image.split("@")[0] or image.endswith(":latest") else "IfNotPresent"


class PodManager:
    def __init__(self, client: RESTClient, informers: SharedInformerFactory, runtime: RuntimeClient,
                 config: KubeletConfig, node_name: str, recorder: EventRecorder, source, host_ip: str,
                 node_allocatable=lambda: None):
        self.client, self.runtime, self.config = client, runtime, config
        self.node_name, self.recorder, self.source, self.host_ip = node_name, recorder, source, host_ip
        self.node_allocatable = node_allocatable
        self.pods_info = client.resource("pods")
        self.pods = informers.informer(self.pods_info, field_selector=f"spec.nodeName={node_name}")
        self.pods.store.add_indexers({UID_INDEX: field_index("metadata.uid")})
        self.services = informers.informer(client.resource("services"))
        self.queue = WorkQueue("pods")
        # Pods being stopped, each in a task of its own: a grace period (up to minutes) must not hold one of the
        # WORKERS, or a node deleting many pods would start no new ones meanwhile (upstream: a worker per pod).
        self.terminating: dict[str, asyncio.Task] = {}
        self.observed: dict[str, PodObservation] = {}
        self.states: dict[str, dict[str, ContainerRuntimeState]] = {}
        self.backoff = BackOff()
        self.volumes = VolumeManager(config.root_dir / "pods", source, mount_tmpfs=hooks.mount_tmpfs,
                                     unmount=hooks.unmount)
        self.probes = ProbeManager(Prober(self._exec_sync), on_change=self.queue.add, on_event=self._event)
        self.dns = dns.DNSSettings(cluster_dns=tuple(config.cluster_dns), cluster_domain=config.cluster_domain,
                                   host=dns.parse_resolv_conf(_read_text(config.resolv_conf)))
        self.pods.add_handler(on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new),
                              on_delete=self._enqueue)

    # --- feeding the queue -------------------------------------------------------------------------------------
    def _enqueue(self, pod: dict) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self.queue.add(uid)

    def _event(self, pod: dict, event: Event) -> None:
        self.recorder.event(pod, event.type, event.reason, event.message, event.field_path)

    async def _exec_sync(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        try:
            result = await self.runtime.exec_sync(container_id, command, int(timeout) or 1)
        except CRITimeout as error:
            raise TimeoutError(error.message) from None
        return result.exit_code, (result.stdout + result.stderr).decode(errors="replace")

    def pod(self, uid: str) -> dict | None:
        found = self.pods.store.by_index(UID_INDEX, uid)
        return found[0] if found else None

    def find(self, namespace: str, name: str) -> dict | None:
        return self.pods.store.get_object(namespace, name)

    async def observe(self, uid: str) -> PodObservation:
        observation = (await self.runtime.list_pod_observations(uid)).get(uid) or PodObservation(uid)
        self.observed[uid] = observation
        return observation

    async def run(self) -> None:
        await self.pods.wait_for_sync()
        await self.services.wait_for_sync()
        await self._relist()  # adopt what runs before the first sync
        for pod in self.pods.store.list():
            self._enqueue(pod)
        try:
            await asyncio.gather(run_workers(self.queue, self.sync, WORKERS), self._relist_loop(),
                                 self._resync_loop())
        finally:
            for task in self.terminating.values():
                task.cancel()
            await self.probes.close()

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
            self.backoff.gc()

    # --- one pod -----------------------------------------------------------------------------------------------
    async def sync(self, uid: str) -> None:
        pod = self.pod(uid)
        observation = await self.observe(uid)
        if pod is None:
            await self._remove(uid, observation)
            return
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            if uid not in self.terminating:
                task = asyncio.create_task(self._terminate(pod, observation), name=f"terminate {uid}")
                self.terminating[uid] = task
                task.add_done_callback(lambda done, uid=uid: self._terminated(uid, done))
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            if any(c.state in ("running", "created") for c in observation.containers):
                await self._stop_all(pod, observation, grace_period(pod))
            self.probes.remove_pod(uid)
            return
        self.probes.update(pod, observation)
        try:
            await self._converge(pod, observation)
        finally:
            await self._report(pod)

    def _state(self, uid: str, name: str) -> ContainerRuntimeState:
        return self.states.setdefault(uid, {}).setdefault(name, ContainerRuntimeState())

    async def _converge(self, pod: dict, observation: PodObservation) -> None:
        uid, spec = pod["metadata"]["uid"], pod.get("spec") or {}
        try:
            await self.volumes.prepare(pod)
        except VolumeError as error:
            for message in error.event_messages():
                self.recorder.event(pod, WARNING, "FailedMount", message)
            self.queue.add_after(uid, 5.0)
            return
        sandbox = observation.sandbox
        if sandbox is None or not sandbox.ready:
            if sandbox is not None and self._done_for_good(pod, observation):
                return  # every container finished and none may restart: the pod is over
            if observation.containers or sandbox is not None:
                await self._stop_all(pod, observation, grace_period(pod))
            await self._new_sandbox(pod, 0 if sandbox is None else sandbox.attempt + 1)
            observation = await self.observe(uid)
            if observation.sandbox is None:
                return
            self.probes.update(pod, observation)
        for container in spec.get("initContainers") or ():
            latest = observation.latest(container["name"])
            if latest is not None and latest.state == "exited" and latest.exit_code == 0:
                continue
            if latest is not None and latest.state == "running":
                return
            if latest is not None and latest.state == "exited" and not pod_status.should_restart(
                    container, pod, latest):
                return  # restartPolicy Never: the pod failed; its status says so
            await self._start_when_due(pod, container, observation)
            return
        for container in spec.get("containers") or ():
            latest = observation.latest(container["name"])
            if latest is not None and latest.state == "running":
                message = self.probes.restart_message(uid, container["name"], latest.id)
                if message:
                    self.recorder.event(pod, NORMAL, "Killing", message, field_path(pod, container["name"]))
                    await self._stop_container(pod, container, latest.id, grace_period(pod))
                    self.queue.add(uid)
                continue
            if not pod_status.should_restart(container, pod, latest):
                continue
            await self._start_when_due(pod, container, observation)

    def _done_for_good(self, pod: dict, observation: PodObservation) -> bool:
        containers = (pod.get("spec") or {}).get("containers") or ()
        return all((latest := observation.latest(c["name"])) is not None and latest.state == "exited"
                   and not pod_status.should_restart(c, pod, latest) for c in containers)

    async def _start_when_due(self, pod: dict, container: dict, observation: PodObservation) -> None:
        """Start (or restart) the container unless its CrashLoopBackOff holds it back."""
        uid, name = pod["metadata"]["uid"], container["name"]
        latest = observation.latest(name)
        if latest is not None and latest.state == "created":
            await ignore_gone(self.runtime.remove_container(latest.id))  # created but never started: start afresh
        elif latest is not None and latest.state == "exited":
            waiting = self.backoff.crash_wait(pod, name, latest.finished_at)
            if waiting is not None:
                state = self._state(uid, name)
                if state.waiting is None or state.waiting.reason != "CrashLoopBackOff":
                    self.recorder.event(pod, WARNING, "BackOff", self.backoff.crash_event(pod, name),
                                        field_path(pod, name))
                state.waiting = waiting
                self.queue.add_after(uid, self.backoff.crash_remaining(uid, name, latest.finished_at) + 0.1)
                return
        await self._start(pod, container, observation)

    async def _new_sandbox(self, pod: dict, attempt: int) -> None:
        try:
            await self.runtime.run_pod_sandbox(self._sandbox_config(pod, attempt))
        except CRIError as error:
            self.recorder.event(pod, WARNING, "FailedCreatePodSandBox",
                                f"Failed to create pod sandbox: {error.message}")
            raise

    def _sandbox_config(self, pod: dict, attempt: int):
        return requests.pod_sandbox_config(pod, dns_settings=self.dns, attempt=attempt,
                                           cgroup_parent=pod_cgroup_parent(pod, self.config.cgroup_driver))

    async def _start(self, pod: dict, container: dict, observation: PodObservation) -> None:
        uid, name = pod["metadata"]["uid"], container["name"]
        state, where = self._state(uid, name), field_path(pod, name)
        latest = observation.latest(name)
        attempt = 0 if latest is None else latest.attempt + 1
        image_ref = await self._ensure_image(pod, container, state, where)
        if image_ref is None:
            return
        sandbox = observation.sandbox
        try:
            resolved = await resolve_env(pod, container, self.source, self.services.store.list(),
                                         pod_ips=sandbox.ips or ((sandbox.ip,) if sandbox.ip else ()),
                                         host_ips=(self.host_ip,), node_allocatable=self.node_allocatable())
            for event in resolved.events:
                self._event(pod, event)
            mounts = self.volumes.mounts(pod, container, resolved.as_dict())
            mounts.append(hooks.termination_log_mount(self.volumes.pod_dir(uid), container, attempt))
        except ContainerConfigError as error:
            state.waiting = Waiting("CreateContainerConfigError", str(error))
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error}", where)
            self.queue.add_after(uid, 5.0)
            return
        config = requests.container_config(pod, container, attempt=attempt, image_ref=image_ref,
                                           envs=resolved.envs, mounts=mounts, memory_capacity=_memory_capacity())
        await self._prune(observation, name)
        try:
            container_id = await self.runtime.create_container(sandbox.id, config, self._sandbox_config(
                pod, sandbox.attempt))
        except CRIError as error:
            state.waiting = Waiting("CreateContainerError", error.message)
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error.message}", where)
            raise
        self.recorder.event(pod, NORMAL, "Created", f"Created container {name}", where)
        try:
            await self.runtime.start_container(container_id)
        except CRIError as error:
            state.waiting = Waiting("RunContainerError", error.message)
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error.message}", where)
            raise
        state.waiting = None
        self.recorder.event(pod, NORMAL, "Started", f"Started container {name}", where)
        post_start = ((container.get("lifecycle") or {}).get("postStart"))
        if post_start:
            failure = await hooks.run(post_start, self._exec_sync, container, container_id, sandbox.ip, 30)
            if failure:
                self.recorder.event(pod, WARNING, "FailedPostStartHook", failure, where)
                await self._stop_container(pod, container, container_id, grace_period(pod))
        self.queue.add(uid)

    async def _prune(self, observation: PodObservation, name: str) -> None:
        """Keep only the newest exited instance of a container (it holds lastState and the --previous log)."""
        exited = sorted((c for c in observation.containers if c.name == name and c.state == "exited"),
                        key=lambda c: c.attempt)
        for old in exited[:-1]:
            await ignore_gone(self.runtime.remove_container(old.id))

    async def _ensure_image(self, pod: dict, container: dict, state: ContainerRuntimeState, where: str) -> str | None:
        """The image's reference in the runtime, pulled as imagePullPolicy says; None while it cannot be had (the
        container waits with ErrImagePull / ImagePullBackOff / ErrImageNeverPull)."""
        uid, image, policy = pod["metadata"]["uid"], container.get("image", ""), image_pull_policy(container)
        present = await self.runtime.image_status(image)
        if present is not None and policy != "Always":
            self.recorder.event(pod, NORMAL, "Pulled", f'Container image "{image}" already present on machine',
                                where)
            return present.id
        if policy == "Never":
            state.waiting = Waiting("ErrImageNeverPull",
                                    f'Container image "{image}" is not present with pull policy of Never')
            self.recorder.event(pod, WARNING, "ErrImageNeverPull", state.waiting.message, where)
            return None
        waiting = self.backoff.pull_wait(pod, image)
        if waiting is not None:
            if state.waiting is None or state.waiting.reason != "ImagePullBackOff":
                self.recorder.event(pod, NORMAL, "BackOff", waiting.message, where)
            state.waiting = waiting
            self.queue.add_after(uid, self.backoff.pull_remaining(uid, image) + 0.1)
            return None
        self.recorder.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', where)
        started = time.monotonic()
        try:
            image_ref = await self.runtime.pull_image(image, auth=await self._pull_auth(pod, image))
        except CRIError as error:
            self.backoff.pull_failed(uid, image)
            state.waiting = Waiting("ErrImagePull", error.message)
            self.recorder.event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {error.message}', where)
            self.recorder.event(pod, WARNING, "Failed", "Error: ErrImagePull", where)
            self.queue.add_after(uid, self.backoff.pull_remaining(uid, image) + 0.1)
            return None
        self.backoff.pull_succeeded(uid, image)
        took = time.monotonic() - started
        self.recorder.event(pod, NORMAL, "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s', where)
        return image_ref

    async def _pull_auth(self, pod: dict, image: str) -> api_pb2.AuthConfig | None:
        """Credentials for `image` from the pod's imagePullSecrets, the first that has some for its registry."""
        namespace = pod["metadata"]["namespace"]
        for reference in (pod.get("spec") or {}).get("imagePullSecrets") or ():
            secret = await self.source.secret(namespace, reference.get("name", ""))
            found = pullsecrets.credentials(secret, image) if secret else None
            if found is not None:
                return api_pb2.AuthConfig(username=found[0], password=found[1])
        return None

    async def _stop_container(self, pod: dict | None, container: dict | None, container_id: str,
                              grace: int) -> None:
        """preStop (within the grace period), then SIGTERM and SIGKILL when the rest of it has passed."""
        started = time.monotonic()
        pre_stop = ((container or {}).get("lifecycle") or {}).get("preStop")
        if pod is not None and pre_stop:
            sandbox = self.observed.get(pod["metadata"]["uid"], PodObservation("")).sandbox
            failure = await hooks.run(pre_stop, self._exec_sync, container, container_id,
                                      sandbox.ip if sandbox else "", grace)
            if failure:
                self.recorder.event(pod, WARNING, "FailedPreStopHook", failure, field_path(pod, container["name"]))
        remaining = max(2, int(grace - (time.monotonic() - started)))
        await ignore_gone(self.runtime.stop_container(container_id, remaining))

    async def _stop_all(self, pod: dict | None, observation: PodObservation, grace: int) -> None:
        running = [c for c in observation.containers if c.state in ("running", "created")]
        specs = {c["name"]: c for c in ((pod or {}).get("spec") or {}).get("containers") or ()}
        if pod is not None:
            for container in running:
                if container.name in specs and container.state == "running":
                    self.recorder.event(pod, NORMAL, "Killing", f"Stopping container {container.name}",
                                        field_path(pod, container.name))
        await asyncio.gather(*(self._stop_container(pod, specs.get(c.name), c.id, grace) for c in running))
        if observation.sandbox is not None and observation.sandbox.ready:
            await ignore_gone(self.runtime.stop_pod_sandbox(observation.sandbox.id))

    def _terminated(self, uid: str, task: asyncio.Task) -> None:
        self.terminating.pop(uid, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("Failed to terminate pod uid=%s: %r", uid, task.exception())
        self.queue.add(uid)  # the next sync finds the pod gone (cleanup) or still there (another attempt)

    async def _terminate(self, pod: dict, observation: PodObservation) -> None:
        uid = pod["metadata"]["uid"]
        self.probes.remove_pod(uid)
        await self._stop_all(pod, observation, grace_period(pod))
        final = await self.observe(uid)
        await self._report(pod, final, terminal=True)
        deleted = await ignore_not_found(self.client.delete(self.pods_info, pod["metadata"]["name"],
                                                            pod["metadata"]["namespace"], grace_period_seconds=0,
                                                            preconditions={"uid": uid}))
        if deleted is not None:
            log.info("Deleted pod pod=%s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])

    async def _remove(self, uid: str, observation: PodObservation) -> None:
        """The pod is gone from the API: nothing of it may remain."""
        self.probes.remove_pod(uid)
        self.backoff.forget(uid)
        self.states.pop(uid, None)
        if observation.sandbox is not None or observation.containers:
            await self._stop_all(None, observation, 2)
            for container in observation.containers:
                await ignore_gone(self.runtime.remove_container(container.id))
            for sandbox in await self.runtime.list_pod_sandboxes({requests.POD_UID_LABEL: uid}):
                await ignore_gone(self.runtime.stop_pod_sandbox(sandbox.id))
                await ignore_gone(self.runtime.remove_pod_sandbox(sandbox.id))
            log.info("Removed the containers and sandbox of a deleted pod uid=%s", uid)
        await self.volumes.teardown(uid)
        self.observed.pop(uid, None)

    # --- status ------------------------------------------------------------------------------------------------
    async def _report(self, pod: dict, observation: PodObservation | None = None, terminal: bool = False) -> None:
        uid = pod["metadata"]["uid"]
        observation = observation or await self.observe(uid)
        states = self.states.setdefault(uid, {})
        for name, state in states.items():  # a container that runs again no longer waits
            latest = observation.latest(name)
            if state.waiting is not None and latest is not None and latest.state == "running":
                state.waiting = None
        self.probes.apply(uid, states, observation)
        current = self.pod(uid) or pod
        messages = await asyncio.to_thread(hooks.termination_messages, self.volumes.pod_dir(uid), current,
                                           observation, self.config.pod_logs_dir)
        wanted = pod_status.compute(current, observation, states, host_ips=(self.host_ip,),
                                    termination_messages=messages, terminal=terminal)
        if wanted == (current.get("status") or {}):
            return
        try:
            await self.client.patch(self.pods_info, current["metadata"]["name"],
                                    {"metadata": {"uid": uid}, "status": _merge_patch(current.get("status") or {},
                                                                                      wanted)},
                                    current["metadata"]["namespace"], subresource="status", patch_type="merge")
        except APIError as error:  # a vanished pod is expected; the rest is retried by the queue
            if not is_not_found(error):
                raise

    def pod_list(self) -> dict:
        """/pods: the pods bound here as the kubelet knows them (a PodList)."""
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                "items": [deep_copy(p) for p in self.pods.store.list()]}


def _merge_patch(old: dict, new: dict) -> dict:
    """A JSON merge patch turning `old` into `new` at the top level (keys the kubelet no longer reports go)."""
    patch = dict(new)
    for key in old:
        if key not in new and key not in ("nominatedNodeName", "resize"):  # the scheduler's and others' fields
            patch[key] = None
    return patch


def _memory_capacity() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            return int(meminfo.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def _read_text(path) -> str:
    try:
        return path.read_text() if path else ""
    except OSError:
        return ""


async def ignore_gone(call) -> None:
    """Await a stop or remove whose object may already be gone."""
    try:
        await call
    except CRINotFound:
        pass
