"""An async CRI v1 client (grpc.aio over the runtime's unix socket) with one method per call kpy uses.

Contract: nothing outside cri/ sees gRPC. Failed calls raise CRIError (the gRPC status code's name and the runtime's
message, and which call failed), with NotFound, Unavailable and DeadlineExceeded as their own classes; answers come
back as model.py observations or small frozen values, except the request and list types kpy builds or filters on
itself (PodSandboxConfig, ContainerConfig; PodSandbox and Container items). Each call has a deadline: the runtime
request timeout (upstream's --runtime-request-timeout, 2 min), plus the grace period for StopContainer and the
command's timeout for ExecSync (none when the command has none), and none for PullImage unless given (a large
image takes as long as it takes).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from . import api_pb2, api_pb2_grpc
from .requests import IMAGE_ANNOTATION, POD_UID_LABEL
from ..model import ContainerObservation, PodObservation, SandboxObservation

DEFAULT_SOCKET = "/run/containerd/containerd.sock"
DEFAULT_TIMEOUT = 120.0  # seconds
MAX_MESSAGE = 16 * 1024 * 1024  # upstream's; ExecSync output is capped there by the runtime
_DEFAULT = object()  # a call's deadline when not given: the client's timeout (None means no deadline)
_STATES = {api_pb2.CONTAINER_CREATED: "created", api_pb2.CONTAINER_RUNNING: "running",
           api_pb2.CONTAINER_EXITED: "exited", api_pb2.CONTAINER_UNKNOWN: "unknown"}


class CRIError(Exception):
    """A CRI call failed: `code` is the gRPC status code's name ("UNKNOWN", "INVALID_ARGUMENT", ...), `message`
    the runtime's own words, `call` the CRI method."""

    def __init__(self, call: str, code: str, message: str):
        super().__init__(f"CRI {call} failed: {code}: {message}")
        self.call, self.code, self.message = call, code, message


class CRINotFound(CRIError):
    """The sandbox, container or image named does not exist (any more)."""


class CRIUnavailable(CRIError):
    """The runtime cannot be reached (socket missing, runtime down or restarting)."""


class CRITimeout(CRIError):
    """The call's deadline passed before the runtime answered."""


_ERRORS = {grpc.StatusCode.NOT_FOUND: CRINotFound, grpc.StatusCode.UNAVAILABLE: CRIUnavailable,
           grpc.StatusCode.DEADLINE_EXCEEDED: CRITimeout}


@dataclass(frozen=True)
class RuntimeVersion:
    runtime_name: str  # "containerd"
    runtime_version: str  # "1.6.20~ds1"
    runtime_api_version: str  # "v1"


@dataclass(frozen=True)
class RuntimeCondition:
    type: str  # "RuntimeReady", "NetworkReady"
    status: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


@dataclass(frozen=True)
class ImageInfo:
    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    uid: int | None = None  # the image's numeric user, when it names one
    username: str = ""


@dataclass(frozen=True)
class FilesystemUsage:
    mountpoint: str
    used_bytes: int
    inodes_used: int


@dataclass(frozen=True)
class ContainerUsage:
    """ContainerStats: cumulative CPU time, memory, and the writable layer, at `timestamp` (unix seconds)."""
    id: str
    name: str
    pod_uid: str
    timestamp: float
    cpu_core_nanoseconds: int
    memory_working_set_bytes: int
    memory_usage_bytes: int
    writable_layer_bytes: int


def _seconds(nanoseconds: int) -> float:
    return nanoseconds / 1e9


def container_observation(status: api_pb2.ContainerStatus) -> ContainerObservation:
    """The runtime names the image by a tag it holds; the pod spec's own words travel in the annotation (containerd
    1.6 does not return user_specified_image)."""
    image = status.image.user_specified_image or status.annotations.get(IMAGE_ANNOTATION) or status.image.image
    return ContainerObservation(
        id=status.id, name=status.metadata.name, attempt=status.metadata.attempt, state=_STATES[status.state],
        image=image, image_ref=status.image_ref, created_at=_seconds(status.created_at),
        started_at=_seconds(status.started_at), finished_at=_seconds(status.finished_at),
        exit_code=status.exit_code, reason=status.reason, message=status.message)


def sandbox_observation(status: api_pb2.PodSandboxStatus) -> SandboxObservation:
    ips = tuple(ip for ip in [status.network.ip, *(extra.ip for extra in status.network.additional_ips)] if ip)
    return SandboxObservation(id=status.id, attempt=status.metadata.attempt,
                              ready=status.state == api_pb2.SANDBOX_READY, ip=ips[0] if ips else "", ips=ips,
                              created_at=_seconds(status.created_at))


def _image_info(image: api_pb2.Image) -> ImageInfo:
    return ImageInfo(id=image.id, repo_tags=tuple(image.repo_tags), repo_digests=tuple(image.repo_digests),
                     size=image.size, uid=image.uid.value if image.HasField("uid") else None,
                     username=image.username)


def _usage(stats: api_pb2.ContainerStats) -> ContainerUsage:
    return ContainerUsage(
        id=stats.attributes.id, name=stats.attributes.metadata.name,
        pod_uid=stats.attributes.labels.get(POD_UID_LABEL, ""), timestamp=_seconds(stats.cpu.timestamp),
        cpu_core_nanoseconds=stats.cpu.usage_core_nano_seconds.value,
        memory_working_set_bytes=stats.memory.working_set_bytes.value,
        memory_usage_bytes=stats.memory.usage_bytes.value,
        writable_layer_bytes=stats.writable_layer.used_bytes.value)


class RuntimeClient:
    """`async with RuntimeClient(path) as runtime: ...`, or call close() when done. The channel opens on the first
    call (inside the running event loop, as grpc.aio wants) and reconnects by itself after the runtime restarts."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, timeout: float = DEFAULT_TIMEOUT,
                 pull_timeout: float | None = None):
        self.socket_path, self.timeout, self.pull_timeout = socket_path, timeout, pull_timeout
        self._channel: grpc.aio.Channel | None = None
        self._runtime: api_pb2_grpc.RuntimeServiceStub | None = None
        self._images: api_pb2_grpc.ImageServiceStub | None = None
        # Status answers by (id, state): a container's or sandbox's status only changes with its state, so a relist
        # asks only about what is new or changed state (two list calls a second in a steady node, as upstream's
        # PLEG), not about every object.
        self._seen: dict[tuple[str, int], SandboxObservation | ContainerObservation] = {}

    async def __aenter__(self) -> RuntimeClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    def _stubs(self) -> tuple[api_pb2_grpc.RuntimeServiceStub, api_pb2_grpc.ImageServiceStub]:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                f"unix://{self.socket_path}",
                options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                         ("grpc.max_send_message_length", MAX_MESSAGE)])
            self._runtime = api_pb2_grpc.RuntimeServiceStub(self._channel)
            self._images = api_pb2_grpc.ImageServiceStub(self._channel)
        return self._runtime, self._images

    async def _call(self, service: str, name: str, request, timeout: float | None):
        stub = self._stubs()[0 if service == "runtime" else 1]
        try:
            return await getattr(stub, name)(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            raise _ERRORS.get(code, CRIError)(name, code.name, error.details() or "") from None

    async def _runtime_call(self, name: str, request, timeout: float | None | object = _DEFAULT):
        return await self._call("runtime", name, request, self.timeout if timeout is _DEFAULT else timeout)

    async def _image_call(self, name: str, request, timeout: float | None | object = _DEFAULT):
        return await self._call("image", name, request, self.timeout if timeout is _DEFAULT else timeout)

    # ---- runtime ----

    async def version(self) -> RuntimeVersion:
        answer = await self._runtime_call("Version", api_pb2.VersionRequest(version="v1"))
        return RuntimeVersion(answer.runtime_name, answer.runtime_version, answer.runtime_api_version)

    async def status(self) -> list[RuntimeCondition]:
        answer = await self._runtime_call("Status", api_pb2.StatusRequest())
        return [RuntimeCondition(c.type, c.status, c.reason, c.message) for c in answer.status.conditions]

    # ---- sandboxes ----

    async def run_pod_sandbox(self, config: api_pb2.PodSandboxConfig, runtime_handler: str = "") -> str:
        answer = await self._runtime_call(
            "RunPodSandbox", api_pb2.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler))
        return answer.pod_sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._runtime_call("StopPodSandbox", api_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._runtime_call("RemovePodSandbox", api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxObservation:
        answer = await self._runtime_call("PodSandboxStatus",
                                          api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
        return sandbox_observation(answer.status)

    async def list_pod_sandboxes(self, labels: dict[str, str] | None = None,
                                 ready_only: bool = False) -> list[api_pb2.PodSandbox]:
        selector = api_pb2.PodSandboxFilter(label_selector=labels or {})
        if ready_only:
            selector.state.state = api_pb2.SANDBOX_READY
        answer = await self._runtime_call("ListPodSandbox", api_pb2.ListPodSandboxRequest(filter=selector))
        return list(answer.items)

    # ---- containers ----

    async def create_container(self, sandbox_id: str, config: api_pb2.ContainerConfig,
                               sandbox_config: api_pb2.PodSandboxConfig) -> str:
        answer = await self._runtime_call("CreateContainer", api_pb2.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config))
        return answer.container_id

    async def start_container(self, container_id: str) -> None:
        await self._runtime_call("StartContainer", api_pb2.StartContainerRequest(container_id=container_id))

    async def stop_container(self, container_id: str, grace_seconds: int) -> None:
        """SIGTERM (or the image's stop signal), SIGKILL after `grace_seconds` (0: at once)."""
        await self._runtime_call("StopContainer",
                                 api_pb2.StopContainerRequest(container_id=container_id, timeout=grace_seconds),
                                 self.timeout + grace_seconds)

    async def remove_container(self, container_id: str) -> None:
        await self._runtime_call("RemoveContainer", api_pb2.RemoveContainerRequest(container_id=container_id))

    async def list_containers(self, labels: dict[str, str] | None = None, sandbox_id: str = "",
                              state: str | None = None) -> list[api_pb2.Container]:
        """`state`: "created", "running", "exited" or "unknown" to keep only those."""
        selector = api_pb2.ContainerFilter(pod_sandbox_id=sandbox_id, label_selector=labels or {})
        if state is not None:
            selector.state.state = {v: k for k, v in _STATES.items()}[state]
        answer = await self._runtime_call("ListContainers", api_pb2.ListContainersRequest(filter=selector))
        return list(answer.containers)

    async def container_status(self, container_id: str) -> ContainerObservation:
        return container_observation(await self.container_status_raw(container_id))

    async def container_status_raw(self, container_id: str) -> api_pb2.ContainerStatus:
        """The full ContainerStatus (labels, annotations, mounts, log path) where the observation is not enough."""
        answer = await self._runtime_call("ContainerStatus",
                                          api_pb2.ContainerStatusRequest(container_id=container_id))
        return answer.status

    async def reopen_container_log(self, container_id: str) -> None:
        await self._runtime_call("ReopenContainerLog", api_pb2.ReopenContainerLogRequest(container_id=container_id))

    # ---- exec, attach, port-forward ----

    async def exec_sync(self, container_id: str, command: list[str], timeout: int = 0) -> ExecResult:
        """Runs `command` in the container and waits for it; `timeout` seconds (0: none) before the runtime kills
        it. A command that runs but fails is an ExecResult with its exit code, not an error."""
        answer = await self._runtime_call(
            "ExecSync", api_pb2.ExecSyncRequest(container_id=container_id, cmd=command, timeout=timeout),
            self.timeout + timeout if timeout else None)
        return ExecResult(answer.stdout, answer.stderr, answer.exit_code)

    async def exec(self, container_id: str, command: list[str], *, tty: bool = False, stdin: bool = False,
                   stdout: bool = True, stderr: bool = True) -> str:
        """The URL on the runtime's streaming server that runs the command once connected."""
        answer = await self._runtime_call("Exec", api_pb2.ExecRequest(
            container_id=container_id, cmd=command, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty))
        return answer.url

    async def attach(self, container_id: str, *, tty: bool = False, stdin: bool = False, stdout: bool = True,
                     stderr: bool = True) -> str:
        answer = await self._runtime_call("Attach", api_pb2.AttachRequest(
            container_id=container_id, stdin=stdin, tty=tty, stdout=stdout, stderr=stderr and not tty))
        return answer.url

    async def port_forward(self, sandbox_id: str, ports: list[int] | None = None) -> str:
        answer = await self._runtime_call("PortForward",
                                          api_pb2.PortForwardRequest(pod_sandbox_id=sandbox_id, port=ports or []))
        return answer.url

    # ---- stats ----

    async def container_stats(self, container_id: str) -> ContainerUsage:
        answer = await self._runtime_call("ContainerStats", api_pb2.ContainerStatsRequest(container_id=container_id))
        return _usage(answer.stats)

    async def list_container_stats(self, labels: dict[str, str] | None = None) -> list[ContainerUsage]:
        answer = await self._runtime_call("ListContainerStats", api_pb2.ListContainerStatsRequest(
            filter=api_pb2.ContainerStatsFilter(label_selector=labels or {})))
        return [_usage(stats) for stats in answer.stats]

    # ---- images ----

    async def list_images(self) -> list[ImageInfo]:
        answer = await self._image_call("ListImages", api_pb2.ListImagesRequest())
        return [_image_info(image) for image in answer.images]

    async def image_status(self, image: str) -> ImageInfo | None:
        """None when the runtime does not hold the image."""
        answer = await self._image_call("ImageStatus",
                                        api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=image)))
        return _image_info(answer.image) if answer.HasField("image") else None

    async def pull_image(self, image: str, *, auth: api_pb2.AuthConfig | None = None,
                         sandbox_config: api_pb2.PodSandboxConfig | None = None) -> str:
        """The pulled image's reference (its id for containerd), for ContainerConfig's image."""
        answer = await self._image_call("PullImage", api_pb2.PullImageRequest(
            image=api_pb2.ImageSpec(image=image), auth=auth, sandbox_config=sandbox_config), self.pull_timeout)
        return answer.image_ref

    async def remove_image(self, image: str) -> None:
        await self._image_call("RemoveImage", api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=image)))

    async def image_fs_info(self) -> list[FilesystemUsage]:
        answer = await self._image_call("ImageFsInfo", api_pb2.ImageFsInfoRequest())
        return [FilesystemUsage(fs.fs_id.mountpoint, fs.used_bytes.value, fs.inodes_used.value)
                for fs in answer.image_filesystems]

    # ---- observations ----

    async def list_pod_observations(self, uid: str | None = None) -> dict[str, PodObservation]:
        """Every pod the runtime holds (or only pod `uid`), by pod UID: its newest sandbox with its network status
        and each of its containers with its full status, newest first. Objects removed between the list and the
        status call are left out; pods not made by a kubelet (no pod UID label) too."""
        labels = {POD_UID_LABEL: uid} if uid else None
        sandboxes, containers = await asyncio.gather(self.list_pod_sandboxes(labels), self.list_containers(labels))
        newest: dict[str, api_pb2.PodSandbox] = {}
        for sandbox in sandboxes:
            pod_uid = sandbox.labels.get(POD_UID_LABEL)
            if pod_uid and (pod_uid not in newest or sandbox.created_at > newest[pod_uid].created_at):
                newest[pod_uid] = sandbox
        owned = [c for c in containers if c.labels.get(POD_UID_LABEL)]
        sandbox_statuses = await asyncio.gather(*(self._status(s.id, s.state, self.pod_sandbox_status)
                                                  for s in newest.values()))
        container_statuses = await asyncio.gather(*(self._status(c.id, c.state, self.container_status)
                                                    for c in owned))
        if uid is None:  # a full relist: forget what no longer exists
            live = {(s.id, s.state) for s in sandboxes} | {(c.id, c.state) for c in containers}
            for key in [k for k in self._seen if k not in live]:
                del self._seen[key]
        pods: dict[str, dict] = {}
        for pod_uid, status in zip(newest, sandbox_statuses):
            pods.setdefault(pod_uid, {"sandbox": None, "containers": []})["sandbox"] = status
        for container, status in zip(owned, container_statuses):
            if status is not None:
                pods.setdefault(container.labels[POD_UID_LABEL], {"sandbox": None, "containers": []})[
                    "containers"].append(status)
        return {pod_uid: PodObservation(
            uid=pod_uid, sandbox=parts["sandbox"],
            containers=tuple(sorted(parts["containers"], key=lambda c: (c.created_at, c.attempt), reverse=True)))
            for pod_uid, parts in pods.items()}

    async def _status(self, object_id: str, state: int, fetch):
        """The object's status, asked of the runtime only when (id, state) was not seen before; None when it went
        away between the list and the status call."""
        key = (object_id, state)
        if key not in self._seen:
            try:
                self._seen[key] = await fetch(object_id)
            except CRINotFound:
                return None
        return self._seen[key]
