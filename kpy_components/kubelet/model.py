"""The values the kubelet's parts exchange: what a container is given (mounts, environment) and what the runtime was
seen to run (observations). Plain frozen dataclasses; API objects stay dicts as everywhere in kpy.

Contract: observations are built from CRI answers only (cri/), judged by status.py and probes.py, and never hold
protobuf objects, so everything past cri/ is testable without a runtime.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ContainerConfigError(Exception):
    """A container cannot be configured (a missing ConfigMap key, Secret, ...): the pod's container waits with reason
    CreateContainerConfigError and this message, as upstream words it."""


class VolumeError(Exception):
    """A pod volume cannot be set up (a missing Secret, an unbound claim, a hostPath of the wrong type): the pod's
    containers keep waiting (ContainerCreating) and the agent records a Warning FailedMount event per failure with
    `MountVolume.SetUp failed for volume "<name>" : <message>` (`failures`: volume name → message)."""

    def __init__(self, failures: dict[str, str]):
        self.failures = dict(failures)
        super().__init__("; ".join(f"volume {name!r}: {message}" for name, message in failures.items()))

    def event_messages(self) -> list[str]:
        return [f'MountVolume.SetUp failed for volume "{name}" : {message}' for name, message in self.failures.items()]


@dataclass(frozen=True)
class Event:
    """An event a part asks the agent to record on the pod (EventRecorder.event(pod, type, reason, message,
    field_path)); field_path names the container (`spec.containers{name}`) or is empty for the pod."""
    type: str  # Normal | Warning
    reason: str
    message: str
    field_path: str = ""


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    read_only: bool = False
    sub_path: str = ""  # already resolved into host_path by volumes.py; kept for messages
    propagation: str = "None"  # None | HostToContainer | Bidirectional (mountPropagation)


@dataclass(frozen=True)
class ContainerObservation:
    """One CRI container of a pod, as ListContainers/ContainerStatus reported it."""
    id: str
    name: str  # the pod spec's container name (CRI metadata.name)
    attempt: int  # CRI metadata.attempt: the restart count when created
    state: str  # "created" | "running" | "exited" | "unknown"
    image: str  # the image as the pod spec names it
    image_ref: str  # the resolved image (imageID in status)
    created_at: float = 0.0  # unix seconds
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""  # the runtime's reason ("OOMKilled", "Error", "Completed")
    message: str = ""


@dataclass(frozen=True)
class SandboxObservation:
    id: str
    attempt: int
    ready: bool  # CRI SANDBOX_READY
    ip: str = ""
    ips: tuple[str, ...] = ()
    created_at: float = 0.0


@dataclass(frozen=True)
class PodObservation:
    """Everything the runtime holds for one pod UID: its newest sandbox and every container it ran, newest first."""
    uid: str
    sandbox: SandboxObservation | None = None
    containers: tuple[ContainerObservation, ...] = ()

    def latest(self, name: str) -> ContainerObservation | None:
        """The newest container of that name (highest attempt)."""
        found = [c for c in self.containers if c.name == name]
        return max(found, key=lambda c: (c.attempt, c.created_at)) if found else None


@dataclass
class Waiting:
    """Why a container is not running yet, as the pod status reports it (reason, message)."""
    reason: str
    message: str = ""


@dataclass
class ContainerRuntimeState:
    """What the kubelet itself knows about a container beyond the runtime: probe results and why it waits."""
    ready: bool = False  # the readiness probe's last result is Success (status.py ignores it without a probe)
    started: bool | None = None  # the startup probe passed (None when not yet judged; ignored without a probe)
    container_id: str = ""  # the container `ready`/`started` were judged on ("" = whichever runs now)
    waiting: Waiting | None = None  # ErrImagePull, ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError
    extra: dict = field(default_factory=dict)


class ObjectSource(Protocol):
    """The API objects a pod's volumes and environment read, as the kubelet may see them (Node authorizer rules).
    Each get returns the object dict or None when it does not exist; other API errors raise."""

    async def configmap(self, namespace: str, name: str) -> dict | None: ...

    async def secret(self, namespace: str, name: str) -> dict | None: ...

    async def claim(self, namespace: str, name: str) -> dict | None: ...

    async def volume(self, name: str) -> dict | None: ...

    async def service_account_token(self, namespace: str, service_account: str, *, audience: str | None,
                                    expiration_seconds: int, pod: dict) -> dict:
        """The TokenRequest status: {"token": ..., "expirationTimestamp": ...}."""
        ...
