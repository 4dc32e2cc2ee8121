"""The kubelet's own Node: registration, status and the heartbeat Lease, as upstream's kubelet keeps them.

- Registration creates the Node with the kubelet's labels (`kubernetes.io/hostname|os|arch` and --node-labels) and
  registerWithTaints; a Node that already exists (a restarted kubelet) keeps its spec and gets its labels reconciled.
- Status is recomputed every nodeStatusUpdateFrequency (10 s) and written when it changed, or every
  nodeStatusReportFrequency (5 min) so the controller still sees a heartbeat in status. The Lease in kube-node-lease
  is renewed every 10 s (a quarter of its 40 s duration): that is the cheap heartbeat the lifecycle controller reads.
- Ready is True only while the runtime and its network report ready and the node has a pod CIDR wired; otherwise
  False with reason KubeletNotReady and upstream's wording of what is missing. Pressure conditions compare what the
  host has left with the evictionHard thresholds.
"""
from __future__ import annotations

import asyncio
import logging
import os
import platform
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from kpy_components.api.errors import APIError
from kpy_components.api.meta import now_rfc3339, now_rfc3339_micro
from kpy_components.api.quantity import Quantity
from kpy_components.client import RESTClient, is_already_exists, is_conflict, is_not_found
from kpy_components.version import VERSION

from .config import KubeletConfig

log = logging.getLogger(__name__)
LEASE_NAMESPACE = "kube-node-lease"
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
CONDITION_TYPES = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")


@dataclass(frozen=True)
class Readiness:
    """What decides the Ready condition, gathered by the agent each round."""
    runtime_ready: bool
    network_ready: bool
    message: str = ""  # the runtime's words when not ready


@dataclass(frozen=True)
class HostFacts:
    """What the node reports about the host it runs on (read by `read_host_facts`)."""
    cpu: int
    memory_bytes: int
    memory_available_bytes: int
    disk_bytes: int
    disk_available_bytes: int
    pids_max: int
    pids_used: int
    kernel: str
    os_image: str
    machine_id: str
    boot_id: str
    architecture: str


def architecture() -> str:
    machine = platform.machine()
    return _ARCHITECTURES.get(machine, machine)


def read_host_facts(root_dir: Path) -> HostFacts:
    """Blocking reads of /proc and the filesystems (run it in a thread)."""
    meminfo = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        meminfo[key] = int(rest.split()[0]) * 1024
    root_dir.mkdir(parents=True, exist_ok=True)
    disk = os.statvfs(root_dir)
    os_image = "Linux"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_image = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return HostFacts(
        cpu=os.cpu_count() or 1,
        memory_bytes=meminfo.get("MemTotal", 0),
        memory_available_bytes=meminfo.get("MemAvailable", 0),
        disk_bytes=disk.f_blocks * disk.f_frsize,
        disk_available_bytes=disk.f_bavail * disk.f_frsize,
        pids_max=int(_read("/proc/sys/kernel/pid_max", "32768")),
        pids_used=sum(1 for name in os.listdir("/proc") if name.isdigit()),
        kernel=platform.release(),
        os_image=os_image,
        machine_id=_read("/etc/machine-id", ""),
        boot_id=_read("/proc/sys/kernel/random/boot_id", ""),
        architecture=architecture(),
    )


def _read(path: str, default: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def node_ip(config: KubeletConfig) -> str:
    """--node-ip, else the address this host reaches the API server's network from (the default route's)."""
    if config.node_ip:
        return config.node_ip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # no packet is sent: connect() on UDP only picks the route
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _threshold(signal: str, config: KubeletConfig, capacity: int) -> int:
    """Bytes (or pids) of the evictionHard threshold for `signal`; a percentage is of `capacity`."""
    text = config.eviction_hard.get(signal)
    if not text:
        return 0
    if text.endswith("%"):
        return int(capacity * float(text[:-1]) / 100)
    return int(Quantity.parse(text).value)


def capacity(facts: HostFacts, config: KubeletConfig) -> dict[str, str]:
    return {"cpu": str(facts.cpu), "memory": f"{facts.memory_bytes // 1024}Ki",
            "ephemeral-storage": f"{facts.disk_bytes // 1024}Ki", "pods": str(config.max_pods)}


def allocatable(facts: HostFacts, config: KubeletConfig) -> dict[str, str]:
    """Capacity less systemReserved, kubeReserved and the hard eviction thresholds (upstream's node allocatable)."""
    def reserved(resource: str) -> Quantity:
        total = Quantity.parse("0")
        for reservation in (config.system_reserved, config.kube_reserved):
            if resource in reservation:
                total = total + reservation[resource]
        return total

    cpu_millis = max(0, facts.cpu * 1000 - int(reserved("cpu").value * 1000))
    memory = max(0, facts.memory_bytes - int(reserved("memory").value)
                 - _threshold("memory.available", config, facts.memory_bytes))
    disk = max(0, facts.disk_bytes - int(reserved("ephemeral-storage").value)
               - _threshold("nodefs.available", config, facts.disk_bytes))
    return {"cpu": f"{cpu_millis}m" if cpu_millis % 1000 else str(cpu_millis // 1000),
            "memory": f"{memory // 1024}Ki", "ephemeral-storage": str(disk), "pods": str(config.max_pods)}


def conditions(facts: HostFacts, readiness: Readiness, config: KubeletConfig, previous: list[dict],
               now: str) -> list[dict]:
    """The four node conditions; lastTransitionTime kept while a status stays, lastHeartbeatTime now."""
    memory_low = facts.memory_available_bytes < _threshold("memory.available", config, facts.memory_bytes)
    disk_low = facts.disk_available_bytes < _threshold("nodefs.available", config, facts.disk_bytes)
    pids_low = facts.pids_max - facts.pids_used < _threshold("pid.available", config, facts.pids_max)
    missing = [what for what, ok in (("container runtime status check may not have completed yet",
                                      readiness.runtime_ready),
                                     ("container runtime network not ready", readiness.network_ready)) if not ok]
    wanted = {
        "MemoryPressure": (memory_low, "KubeletHasInsufficientMemory" if memory_low else "KubeletHasSufficientMemory",
                           "kubelet has insufficient memory available" if memory_low
                           else "kubelet has sufficient memory available"),
        "DiskPressure": (disk_low, "KubeletHasDiskPressure" if disk_low else "KubeletHasNoDiskPressure",
                         "kubelet has disk pressure" if disk_low else "kubelet has no disk pressure"),
        "PIDPressure": (pids_low, "KubeletHasInsufficientPID" if pids_low else "KubeletHasSufficientPID",
                        "kubelet has insufficient PID available" if pids_low
                        else "kubelet has sufficient PID available"),
        "Ready": (not missing, "KubeletReady" if not missing else "KubeletNotReady",
                  "kubelet is posting ready status" if not missing
                  else ", ".join(missing) + (f": {readiness.message}" if readiness.message else "")),
    }
    old = {c.get("type"): c for c in previous}
    result = []
    for kind in CONDITION_TYPES:
        value, reason, message = wanted[kind]
        status = "True" if value else "False"
        before = old.get(kind) or {}
        transition = before.get("lastTransitionTime") if before.get("status") == status else now
        result.append({"type": kind, "status": status, "lastHeartbeatTime": now,
                       "lastTransitionTime": transition or now, "reason": reason, "message": message})
    return result


def node_status(facts: HostFacts, readiness: Readiness, config: KubeletConfig, *, name: str, address: str,
                runtime_version: str, previous: dict, now: str, proxy_version: str = "") -> dict:
    return {
        "capacity": capacity(facts, config),
        "allocatable": allocatable(facts, config),
        "conditions": conditions(facts, readiness, config, previous.get("conditions") or [], now),
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.port}},
        "nodeInfo": {
            "machineID": facts.machine_id, "systemUUID": facts.machine_id, "bootID": facts.boot_id,
            "kernelVersion": facts.kernel, "osImage": facts.os_image, "containerRuntimeVersion": runtime_version,
            "kubeletVersion": f"v{VERSION}", "kubeProxyVersion": proxy_version, "operatingSystem": "linux",
            "architecture": facts.architecture,
        },
    }


def _without_heartbeats(status: dict) -> dict:
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                                     for c in status.get("conditions") or ()]}


class NodeAgent:
    """Keeps this kubelet's Node and Lease. `readiness` is asked each round (the runtime's and network's state)."""

    def __init__(self, client: RESTClient, config: KubeletConfig, name: str, address: str,
                 readiness: Callable[[], Awaitable[Readiness]], runtime_version: Callable[[], Awaitable[str]],
                 proxy_version: Callable[[], Awaitable[str]] | None = None):
        self.client, self.config, self.name, self.address = client, config, name, address
        self._readiness, self._runtime_version, self._proxy_version = readiness, runtime_version, proxy_version
        self.nodes = client.resource("nodes")
        self.leases = client.resource("leases", "coordination.k8s.io")
        self.node: dict | None = None  # as last written or read
        self._reported_at = 0.0
        self.changed = asyncio.Event()  # set when something asks for an early status update

    def labels(self) -> dict[str, str]:
        return {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": architecture(), "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": architecture(), **self.config.node_labels}

    async def register(self) -> dict:
        """Create the Node, or adopt the existing one (reconciling the kubelet's labels); returns it."""
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": self.labels()},
                "spec": {"taints": list(self.config.register_with_taints)} if self.config.register_with_taints
                else {}}
        try:
            self.node = await self.client.create(self.nodes, body)
            log.info("Registered node name=%s", self.name)
        except APIError as error:
            if not is_already_exists(error):
                raise
            existing = await self.client.get(self.nodes, self.name)
            have = existing["metadata"].get("labels") or {}
            missing = {k: v for k, v in self.labels().items() if have.get(k) != v}
            self.node = await self.client.patch(self.nodes, self.name, {"metadata": {"labels": missing}}) \
                if missing else existing
            log.info("Adopted existing node name=%s", self.name)
        return self.node

    async def update_status(self, force: bool = False) -> dict:
        """Write the Node's status when it changed (or when a report is due, or `force`)."""
        loop = asyncio.get_running_loop()
        facts = await loop.run_in_executor(None, read_host_facts, self.config.root_dir)
        readiness = await self._readiness()
        # The Node as the API holds it now, not as last written: the lifecycle controller marks a silent node's
        # conditions Unknown, and only a kubelet that sees that writes them back.
        current = await self.client.get(self.nodes, self.name)
        previous = current.get("status") or {}
        status = node_status(facts, readiness, self.config, name=self.name, address=self.address,
                             runtime_version=await self._runtime_version(), previous=previous, now=now_rfc3339(),
                             proxy_version=await self._proxy_version() if self._proxy_version else "")
        due = loop.time() - self._reported_at >= self.config.status_report_frequency
        if not force and not due and _without_heartbeats(status) == _without_heartbeats(
                {k: previous.get(k) for k in status}):
            return current
        try:
            self.node = await self.client.patch(self.nodes, self.name, {"status": status}, subresource="status",
                                                patch_type="strategic")
        except APIError as error:
            if is_not_found(error):  # deleted under us: register again, as upstream does
                self.node = None
                await self.register()
                return await self.update_status(force=True)
            raise
        self._reported_at = loop.time()
        return self.node

    async def renew_lease(self) -> None:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                                  "uid": (self.node or {}).get("metadata", {}).get("uid", "")}]},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.config.lease_duration_seconds,
                         "renewTime": now_rfc3339_micro()}}
        if not body["metadata"]["ownerReferences"][0]["uid"]:
            del body["metadata"]["ownerReferences"]
        try:
            lease = await self.client.get(self.leases, self.name, LEASE_NAMESPACE)
        except APIError as error:
            if not is_not_found(error):
                raise
            await self.client.create(self.leases, body, LEASE_NAMESPACE)
            return
        lease["spec"] = body["spec"]
        try:
            await self.client.update(self.leases, lease, LEASE_NAMESPACE)
        except APIError as error:
            if not is_conflict(error):
                raise

    async def run(self) -> None:
        """Register, then keep status and Lease fresh until cancelled; API trouble is logged and retried."""
        while True:
            try:
                await self.register()
                break
            except Exception as error:  # noqa: BLE001 - the API server may not be up yet: keep trying, as upstream does
                log.warning("Could not register node name=%s: %s", self.name, error)
                await asyncio.sleep(2)
        await asyncio.gather(self._status_loop(), self._lease_loop())

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.update_status()
            except Exception as error:  # noqa: BLE001 - logged and retried next round, as upstream
                log.warning("Could not update node status name=%s: %s", self.name, error)
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), self.config.status_update_frequency)
            except TimeoutError:
                pass

    async def _lease_loop(self) -> None:
        interval = self.config.lease_duration_seconds / 4
        while True:
            try:
                await self.renew_lease()
            except Exception as error:  # noqa: BLE001 - logged and retried next round, as upstream
                log.warning("Could not renew node lease name=%s: %s", self.name, error)
            await asyncio.sleep(interval)
