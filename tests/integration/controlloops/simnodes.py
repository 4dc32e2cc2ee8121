"""Simulated nodes for the control-loop integration tests ONLY: Node objects, their Leases, and kubelet behaviour
faked at the API level (no containers). The scheduler and controllers under test see what real kubelets would
show them:

- `add(name, ...)` creates a Ready Node (capacity = allocatable) and its Lease in kube-node-lease.
- While running, every live node's Lease is renewed every `renew_interval` seconds (kubelet: 10 s).
- A pod bound to a live node becomes Running with a Ready condition, a podIP from the node's range and container
  statuses. A pod annotated `sim.kpy.io/exit-after: "<seconds>"` then ends Succeeded (or Failed when
  `sim.kpy.io/exit-code` is not "0") after that long, as a finished container would (Jobs); a pod that finished
  meanwhile stays as it is. `finish(pod, exit_code, condition)` ends a pod's containers now (with an extra pod
  condition, e.g. DisruptionTarget when the kubelet evicts it).
- A pod on a live node that is being deleted is removed (grace period 0), as a kubelet does once its containers
  stopped.
- `fail(name)` makes a node go silent (host down): no Lease renewals, its pods are left as they are.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

from kpy_components.api.meta import now_rfc3339, now_rfc3339_micro
from kpy_components.client import Informer, RESTClient, is_conflict, is_not_found

log = logging.getLogger(__name__)
EXIT_AFTER = "sim.kpy.io/exit-after"
EXIT_CODE = "sim.kpy.io/exit-code"
LEASE_DURATION = 40


class SimulatedNodes:
    def __init__(self, client: RESTClient, renew_interval: float = 2.0, pod_network: str = "10.244.0.0/16"):
        self.client, self.renew_interval = client, renew_interval
        self.nodes_info, self.leases_info = client.resource("nodes"), client.resource("leases", "coordination.k8s.io")
        self.pods_info = client.resource("pods")
        self.live: dict[str, int] = {}  # node name -> its index (for pod IPs)
        self.failed: set[str] = set()
        self._networks = ipaddress.ip_network(pod_network).subnets(new_prefix=24)
        self._ips: dict[str, list] = {}
        self._tasks: list[asyncio.Task] = []
        self._pods: Informer | None = None
        self._finishing: set[str] = set()

    # --- nodes ---------------------------------------------------------------------------------------------------
    async def add(self, name: str, *, cpu: str = "4", memory: str = "8Gi", pods: int = 110,
                  labels: dict | None = None, taints: list | None = None) -> dict:
        capacity = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi"}
        index = len(self._ips)
        self._ips[name] = list(next(self._networks).hosts())
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                      "kubernetes.io/arch": "amd64", **(labels or {})}},
                "spec": {"taints": taints} if taints else {}}
        created = await self.client.create(self.nodes_info, node)
        created["status"] = {
            "capacity": capacity, "allocatable": dict(capacity),
            "conditions": [_condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
            "addresses": [{"type": "InternalIP", "address": f"10.213.99.{index % 250 + 1}"},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.31.0", "containerRuntimeVersion": "simulated://1",
                         "operatingSystem": "linux", "architecture": "amd64"}}
        updated = await self.client.update(self.nodes_info, created, subresource="status")
        await self.client.create(self.leases_info, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION,
                     "renewTime": now_rfc3339_micro()}}, "kube-node-lease")
        self.live[name] = index
        return updated

    def fail(self, name: str) -> None:
        """The node's host goes down: its Lease is no longer renewed and its pods are no longer looked after."""
        self.live.pop(name, None)
        self.failed.add(name)

    # --- running -------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._pods = Informer(self.client, self.pods_info)
        self._pods.add_handler(on_add=self._look_after, on_update=lambda _old, new: self._look_after(new))
        self._tasks = [self._pods.start(), asyncio.create_task(self._renew_leases(), name="simnodes-leases")]
        await self._pods.wait_for_sync(30)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pods is not None:
            await self._pods.stop()

    async def __aenter__(self) -> SimulatedNodes:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.renew_interval)
            for name in list(self.live):
                try:
                    await self.client.patch(self.leases_info, name, {"spec": {"renewTime": now_rfc3339_micro()}},
                                            "kube-node-lease")
                except Exception as error:  # noqa: BLE001 - a missed renewal is what a real kubelet risks too
                    log.warning("Failed to renew the lease of node %s: %r", name, error)

    def _look_after(self, pod: dict) -> None:
        node = pod.get("spec", {}).get("nodeName")
        if node not in self.live:
            return
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        if key in self._finishing:
            return
        self._finishing.add(key)
        task = asyncio.create_task(self._kubelet(pod, node, key), name=f"simnodes-pod-{key}")
        self._tasks.append(task)

    async def _kubelet(self, pod: dict, node: str, key: str) -> None:
        """Act on the pod; when a write conflicts (someone changed it meanwhile), act again on its current state."""
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        try:
            for _attempt in range(10):
                try:
                    await self._act(pod, node)
                    return
                except Exception as error:  # noqa: BLE001 - only conflicts are retried
                    if not is_conflict(error):
                        raise
                pod = await self.client.get(self.pods_info, name, namespace)
                if pod.get("spec", {}).get("nodeName") != node or node not in self.live:
                    return
        except Exception as error:  # noqa: BLE001 - a pod gone meanwhile needs nothing more
            if not is_not_found(error):
                log.warning("Simulated kubelet failed pod=%s: %r", key, error)
        finally:
            self._finishing.discard(key)

    async def _act(self, pod: dict, node: str) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp"):
            await self.client.delete(self.pods_info, name, namespace, grace_period_seconds=0,
                                     preconditions={"uid": pod["metadata"]["uid"]})
            return
        phase = pod.get("status", {}).get("phase")
        if phase in ("Succeeded", "Failed") or _is_ready(pod):
            return
        await self._set_status(pod, node, "Running")
        exit_after = pod["metadata"].get("annotations", {}).get(EXIT_AFTER)
        if exit_after is not None:
            await asyncio.sleep(float(exit_after))
            current = await self.client.get(self.pods_info, name, namespace)
            if node in self.live and current.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                code = pod["metadata"]["annotations"].get(EXIT_CODE, "0")
                await self._set_status(current, node, "Succeeded" if code == "0" else "Failed", int(code))

    async def finish(self, pod: dict, exit_code: int, condition: dict | None = None) -> None:
        """The pod's containers end now with `exit_code` (Succeeded when 0, else Failed), with `condition` added
        to the pod's conditions when given: what its kubelet would report."""
        current = await self.client.get(self.pods_info, pod["metadata"]["name"], pod["metadata"]["namespace"])
        phase = "Succeeded" if exit_code == 0 else "Failed"
        await self._set_status(current, current["spec"]["nodeName"], phase, exit_code, condition)

    async def _set_status(self, pod: dict, node: str, phase: str, exit_code: int | None = None,
                          extra_condition: dict | None = None) -> None:
        now = now_rfc3339()
        running = phase == "Running"
        ip = str(self._ips[node][hash(pod["metadata"]["uid"]) % len(self._ips[node])])
        containers = []
        for container in pod["spec"].get("containers", []):
            state = ({"running": {"startedAt": now}} if running else
                     {"terminated": {"exitCode": exit_code or 0, "reason": "Completed" if not exit_code else "Error",
                                     "startedAt": now, "finishedAt": now}})
            containers.append({"name": container["name"], "image": container.get("image", ""), "imageID": "",
                               "ready": running, "started": running, "restartCount": 0, "state": state})
        ready = "True" if running else "False"
        status = {"phase": phase, "hostIP": f"10.213.99.{self.live.get(node, 0) % 250 + 1}", "podIP": ip,
                  "podIPs": [{"ip": ip}], "startTime": pod.get("status", {}).get("startTime") or now,
                  "containerStatuses": containers,
                  "conditions": [_condition("PodScheduled", "True"), _condition("Initialized", "True"),
                                 _condition("ContainersReady", ready), _condition("Ready", ready),
                                 *([extra_condition] if extra_condition else [])]}
        body = {**pod, "status": {**pod.get("status", {}), **status}}
        await self.client.update(self.pods_info, body, subresource="status")


def _condition(kind: str, status: str, reason: str = "", message: str = "") -> dict:
    now = now_rfc3339()
    condition = {"type": kind, "status": status, "lastTransitionTime": now}
    if kind == "Ready" and reason:
        condition["lastHeartbeatTime"] = now
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))
