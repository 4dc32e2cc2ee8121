"""The scheduler: informers feed the cache and the queue; `schedule_one` places one pod at a time.

A cycle (kube-scheduler's schedulingCycle) runs without awaiting: snapshot → PreFilter → Filter over the nodes,
starting where the previous cycle stopped (round-robin) and stopping once `feasible_nodes_to_find` nodes fit →
Score → pick the best (ties at random) → assume the pod on the node in the cache. Binding (POST
pods/NAME/binding) then runs in the background, so the API round trip is off the critical path; a failed binding
forgets the assumed pod and retries after a backoff.

A pod no node fits gets a `FailedScheduling` Warning event and the PodScheduled=False condition (reason
Unschedulable) with Kubernetes' message, and waits in the queue for a cluster event that may help it. Before that
the PostFilter plugins run: DefaultPreemption may evict lower-priority pods and nominate the pod to their node
(status.nominatedNodeName); until it is bound, the filters keep its room there (nominator.py), and its next cycle
tries that node first.

Only pods whose spec.schedulerName names a profile and that have no spec.nodeName are scheduled.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from kpy_components.api import storage
from kpy_components.api.errors import APIError
from kpy_components.api.meta import now_rfc3339
from kpy_components.client.errors import ClientConnectionError, is_not_found
from kpy_components.client.events import NORMAL, WARNING, EventRecorder
from kpy_components.client.informer import SharedInformerFactory
from kpy_components.client.rest import RESTClient

from . import messages
from .cache import NodeInfo, SchedulerCache
from .config import SchedulerConfig
from .framework import (ASSIGNED_POD_ADD, ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE, FILTERS_KEY, NODE_ADD,
                        NODE_DELETE, NODE_UPDATE, CycleState, Profile, Status)
from .metrics import ERROR, SCHEDULED, UNSCHEDULABLE_RESULT, SchedulerMetrics
from .nominator import Nominator, run_filters, with_nominated
from .plugins import build_profile
from .plugins.volume_binding import PV_ADD, PV_UPDATE, PVC_ADD, PVC_UPDATE
from .podinfo import PodInfo
from .preemption_executor import PreemptionExecutor
from .queue import QueuedPod, SchedulingQueue

log = logging.getLogger(__name__)

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
SYNC_TIMEOUT = 60.0
CLEANUP_PERIOD = 1.0  # seconds between sweeps for expired assumed pods
# API writes (bindings, condition patches) in flight at once: kube-scheduler's parallelism default. More would not
# go faster: each request beyond the client's kept-alive connections pays a TLS handshake.
WRITE_CONCURRENCY = 16
NO_NODES = "no nodes available to schedule pods"
_TERMINAL = ("Succeeded", "Failed")


def feasible_nodes_to_find(nodes: int, percentage: int = 0) -> int:
    """How many fitting nodes a cycle looks for: every node below 100 nodes; else `percentage` of them, or when 0
    the adaptive 50% - nodes/125 (at least 5%), but never fewer than 100."""
    if nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return nodes
    adaptive = percentage or max(50 - nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    return max(nodes * adaptive // 100, MIN_FEASIBLE_NODES_TO_FIND)


def select_host(nodes: Sequence[NodeInfo], totals: list[int], rng: random.Random) -> NodeInfo:
    """The node with the highest total; among equals, each is equally likely."""
    best = max(totals)
    return nodes[rng.choice([index for index, total in enumerate(totals) if total == best])]


@dataclass(frozen=True)
class Failure:
    """A cycle's outcome when no node fits: Kubernetes' message, the cluster events that may help (None: any),
    and the pod's new nominated node ("" clears it, None leaves it)."""
    message: str
    retry_on: frozenset[str] | None
    nominated: str | None = None


class Scheduler:
    def __init__(self, client: RESTClient, informers: SharedInformerFactory,
                 recorders: Callable[[str], EventRecorder], config: SchedulerConfig, registry: CollectorRegistry, *,
                 rng: random.Random | None = None):
        """`recorders(scheduler_name)` gives the event recorder of a profile (events name it as their source)."""
        self.client, self.informers = client, informers
        self.profiles: dict[str, tuple[Profile, int]] = {
            p.scheduler_name: (build_profile(p.scheduler_name, p.points, p.plugin_args),
                               config.percentage_of_nodes_to_score if p.percentage_of_nodes_to_score is None
                               else p.percentage_of_nodes_to_score)
            for p in config.profiles}
        self.recorders = {name: recorders(name) for name in self.profiles}
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(config.pod_initial_backoff_seconds, config.pod_max_backoff_seconds)
        self.metrics = SchedulerMetrics(registry, self.queue)
        self.pods = client.resource("pods")
        self.rng = rng or random.Random()
        self.next_start_index = 0
        self._tasks: set[asyncio.Task] = set()
        self._writes = asyncio.Semaphore(WRITE_CONCURRENCY)
        self._events = {name: _plugin_events(profile) for name, (profile, _) in self.profiles.items()}
        informers.informer(self.pods).add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        informers.informer(client.resource("nodes")).add_handler(self._node_added, self._node_updated,
                                                                 self._node_deleted)
        self.nominator = Nominator()
        self.preemption = PreemptionExecutor(
            client, informers.informer(client.resource("poddisruptionbudgets", "policy")), self.recorders,
            self._spawn, self._writes, self.nominator)
        for profile, _ in self.profiles.values():
            for plugin in profile.post_filters:
                if hasattr(plugin, "bind"):
                    plugin.bind(self.preemption)
        self._watch_volumes(client, informers)
        self._watch_namespaces(client, informers)

    def _watch_namespaces(self, client: RESTClient, informers: SharedInformerFactory) -> None:
        """Namespaces for the profiles' InterPodAffinity plugins (their terms' namespaceSelectors), watched only when
        some profile runs one."""
        users = [p for profile, _ in self.profiles.values() for p in profile.plugins() if hasattr(p, "use_namespaces")]
        if users:
            store = informers.informer(client.resource("namespaces")).store
            for plugin in users:
                plugin.use_namespaces(store)

    def _watch_volumes(self, client: RESTClient, informers: SharedInformerFactory) -> None:
        """Claims, volumes and storage classes for the profiles' VolumeBinding plugins (watched only when some
        profile runs one); their changes move pods VolumeBinding rejected back to the active queue."""
        users = [p for profile, _ in self.profiles.values() for p in profile.plugins() if hasattr(p, "use_stores")]
        if not users:
            return
        stores = []
        for plural, group, added, updated in (("persistentvolumeclaims", "", PVC_ADD, PVC_UPDATE),
                                              ("persistentvolumes", "", PV_ADD, PV_UPDATE),
                                              ("storageclasses", storage.STORAGE_GROUP, None, None)):
            informer = informers.informer(client.resource(plural, group))
            if added is not None:
                informer.add_handler(lambda obj, event=added: self.queue.move_on_event(event),
                                     lambda old, new, event=updated: self.queue.move_on_event(event))
            stores.append(informer.store)
        for plugin in users:
            plugin.use_stores(*stores)

    # --- running -------------------------------------------------------------------------------------------------
    async def run(self, synced: asyncio.Event | None = None) -> None:
        """Schedule until cancelled (informers are started here; `synced` is set once their caches are filled)."""
        self.informers.start()
        if not await self.informers.wait_for_sync(SYNC_TIMEOUT):
            raise RuntimeError(f"the pod and node informers did not sync within {SYNC_TIMEOUT:.0f}s")
        if synced is not None:
            synced.set()
        cleanup = self._spawn(self._cleanup_assumed())
        try:
            while await self.schedule_one():
                pass
        finally:
            cleanup.cancel()
            self.queue.close()
            await self._drain()

    async def schedule_one(self) -> bool:
        """Pop one pod and run its scheduling cycle; False once the queue is closed."""
        queued = await self.queue.pop()
        if queued is None:
            return False
        info = queued.info
        entry = self.profiles.get(info.scheduler_name)
        if entry is None or info.node_name or info.terminating or self.cache.is_assumed(info.key):
            self.queue.done(info.key)
            return True
        profile, percentage = entry
        started = time.perf_counter()
        try:
            outcome = self.schedule_pod(profile, percentage, info)
        except Exception:  # a plugin bug must cost one attempt, not the scheduler
            log.exception("Failed scheduling cycle pod=%s", info.key)
            self.metrics.observe(ERROR, profile.scheduler_name, time.perf_counter() - started)
            self.queue.requeue_after_error(queued)
            outcome = None
        if isinstance(outcome, Failure):
            self._failed(queued, profile, outcome, started)
        elif outcome is not None:
            self.metrics.algorithm_duration.observe(time.perf_counter() - started)
            self.cache.assume_pod(info, outcome.name)
            if self.nominator.by_node:
                self.nominator.remove(info.key)
            self.queue.done(info.key)
            self._spawn(self._bind(queued, profile, outcome.name, started))
        await asyncio.sleep(0)  # a full queue must not starve bindings and informers
        return True

    def schedule_pod(self, profile: Profile, percentage: int, pod: PodInfo) -> NodeInfo | Failure:
        """The node for `pod`, or why none fits (synchronous: the cache cannot change meanwhile)."""
        nodes = self.cache.snapshot()
        if not nodes:
            return Failure(NO_NODES, frozenset({NODE_ADD}))
        state: CycleState = {}
        status, skipped = profile.run_pre_filters(state, pod, nodes)
        if not status.success:
            statuses = {node.name: status for node in nodes}
            return self._post_filter(profile, state, pod, nodes, statuses, skipped, status)
        if self.nominator.by_node:
            nominated = self._fits_nominated_node(profile, state, pod, skipped)
            if nominated is not None:
                return nominated
        feasible, statuses = self.find_feasible(profile, state, pod, nodes, skipped, percentage)
        if not feasible:
            return self._post_filter(profile, state, pod, nodes, statuses, skipped, None)
        if len(feasible) == 1:
            return feasible[0]
        return select_host(feasible, profile.score_nodes(state, pod, feasible), self.rng)

    def _post_filter(self, profile: Profile, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                     statuses: dict[str, Status], skipped: set, pre_filter: Status | None) -> Failure:
        """No node fits: run the PostFilter plugins (preemption) and word the failure."""
        state[FILTERS_KEY] = self._filters(profile, pod, skipped)
        post = profile.run_post_filters(state, pod, nodes, statuses)
        retry_on = self._retry_on(profile, [pre_filter] if pre_filter is not None else statuses.values())
        if post.success and retry_on is not None:
            retry_on = retry_on | {ASSIGNED_POD_DELETE}  # the victims going away
        return Failure(messages.fit_error(len(nodes), statuses, pre_filter, post.message), retry_on,
                       post.nominated_node)

    def _fits_nominated_node(self, profile: Profile, state: CycleState, pod: PodInfo,
                             skipped: set) -> NodeInfo | None:
        """kube-scheduler's evaluateNominatedNode: a pod nominated by an earlier preemption takes that node when it
        fits there now, without scoring."""
        node = self.cache.nodes.get(self.nominator.node_of(pod.key))
        if node is None:
            return None
        return node if run_filters(self._filters(profile, pod, skipped), state, pod, node) is None else None

    def _filters(self, profile: Profile, pod: PodInfo, skipped: set) -> list:
        """The cycle's filter checks; while pods are nominated, one check that also keeps their room."""
        filters = profile.active_filters(skipped)
        if not self.nominator.by_node:
            return filters
        nominated = self.nominator.for_pod(pod)
        return [with_nominated(filters, nominated)] if nominated else filters

    def find_feasible(self, profile: Profile, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                      skipped: set, percentage: int) -> tuple[list[NodeInfo], dict[str, Status]]:
        """Filter nodes from `next_start_index` on, round-robin, until enough fit."""
        count = len(nodes)
        wanted = feasible_nodes_to_find(count, percentage)
        filters = self._filters(profile, pod, skipped)
        start = self.next_start_index % count
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        processed = 0
        for node in nodes[start:] + nodes[:start] if start else nodes:
            processed += 1
            for check in filters:
                status = check(state, pod, node)
                if status is not None:
                    statuses[node.name] = status
                    break
            else:
                feasible.append(node)
                if len(feasible) >= wanted:
                    break
        self.next_start_index = (start + processed) % count
        return feasible, statuses

    # --- binding and failures ------------------------------------------------------------------------------------
    async def _bind(self, queued: QueuedPod, profile: Profile, node: str, started: float) -> None:
        info = queued.info
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            async with self._writes:
                await self.client.create(self.pods, binding, info.namespace, name=info.name, subresource="binding")
        except (APIError, ClientConnectionError) as error:
            self.cache.forget_pod(info.key)
            self.metrics.observe(ERROR, profile.scheduler_name, time.perf_counter() - started)
            if is_not_found(error):
                return  # the pod is gone
            log.warning("Failed binding pod=%s node=%s error=%s", info.key, node, error)
            self.queue.requeue_after_error(queued)
            self.recorders[info.scheduler_name].event(info.pod, WARNING, "FailedScheduling",
                                                      f"Binding rejected: {error}")
            return
        self.cache.finish_binding(info.key)
        self.metrics.observe(SCHEDULED, profile.scheduler_name, time.perf_counter() - started)
        self.recorders[info.scheduler_name].event(info.pod, NORMAL, "Scheduled",
                                                  f"Successfully assigned {info.key} to {node}")
        log.debug("Bound pod=%s node=%s", info.key, node)

    def _failed(self, queued: QueuedPod, profile: Profile, failure: Failure, started: float) -> None:
        info = queued.info
        self.metrics.observe(UNSCHEDULABLE_RESULT, profile.scheduler_name, time.perf_counter() - started)
        self.queue.add_unschedulable(queued, failure.retry_on)
        log.info("Unable to schedule pod=%s message=%r", info.key, failure.message)
        self.recorders[info.scheduler_name].event(info.pod, WARNING, "FailedScheduling", failure.message)
        nominated = failure.nominated
        if nominated is not None:
            self.nominator.add(info, nominated)
            if nominated == ((info.pod.get("status") or {}).get("nominatedNodeName") or ""):
                nominated = None  # already so
        current = _pod_scheduled_condition(info.pod)
        if nominated is not None or (current.get("status"), current.get("reason"), current.get("message")) != (
                "False", "Unschedulable", failure.message):
            since = current.get("lastTransitionTime") if current.get("status") == "False" else None
            self._spawn(self._set_unschedulable_condition(info, failure.message, since or now_rfc3339(), nominated))

    async def _set_unschedulable_condition(self, info: PodInfo, message: str, since: str,
                                           nominated: str | None = None) -> None:
        """PodScheduled=False with `message`; and status.nominatedNodeName set ("" clears it) unless None."""
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastProbeTime": None, "lastTransitionTime": since}
        status: dict = {"conditions": [condition]}
        if nominated is not None:
            status["nominatedNodeName"] = nominated or None
        try:
            async with self._writes:
                await self.client.patch(self.pods, info.name, {"status": status},
                                        info.namespace, patch_type="strategic", subresource="status")
        except (APIError, ClientConnectionError) as error:
            if not is_not_found(error):
                log.warning("Failed to update pod condition pod=%s error=%s", info.key, error)

    def _retry_on(self, profile: Profile, statuses) -> frozenset[str] | None:
        events = self._events[profile.scheduler_name]
        plugins = {status.plugin for status in statuses}
        if not plugins or "" in plugins:
            return None
        return frozenset().union(*(events.get(name, frozenset()) for name in plugins))

    # --- informer handlers ---------------------------------------------------------------------------------------
    def _pod_added(self, pod: dict) -> None:
        info = PodInfo.of(pod)
        if info.node_name:
            if _terminal(pod):
                return
            self.cache.add_pod(info)
            self.queue.move_on_event(ASSIGNED_POD_ADD)
        else:
            self._queue_pending(info)

    def _pod_updated(self, old: dict, new: dict) -> None:
        info = PodInfo.of(new)
        if info.node_name:
            self.queue.delete(info.key)  # bound (by us, or by someone else)
            if self.nominator.by_node:
                self.nominator.remove(info.key)
            if self.preemption.victims and info.terminating:
                self.preemption.forget(info.key)
            if _terminal(new):
                self.cache.remove_pod(info.key)
                self.queue.move_on_event(ASSIGNED_POD_DELETE)
            else:
                self.cache.update_pod(info)
                was_bound = bool((old.get("spec") or {}).get("nodeName"))
                self.queue.move_on_event(ASSIGNED_POD_UPDATE if was_bound else ASSIGNED_POD_ADD)
        elif not self.cache.is_assumed(info.key):
            self._queue_pending(info)

    def _queue_pending(self, info: PodInfo) -> None:
        """An unbound pod: queued if it is ours to schedule; pods with schedulingGates wait outside the queue
        (kube-scheduler's SchedulingGates PreEnqueue) until the gates are removed."""
        if (info.scheduler_name not in self.profiles or info.terminating or _terminal(info.pod)
                or info.spec.get("schedulingGates")):
            self.queue.delete(info.key)
            if info.spec.get("schedulingGates") and info.scheduler_name in self.profiles:
                self.queue.gated.add(info.key)
            return
        self.queue.gated.discard(info.key)
        self.queue.update(info)
        nominated = (info.pod.get("status") or {}).get("nominatedNodeName")
        if nominated or self.nominator.by_node:  # keep the nominator's PodInfo current (or learn a nomination)
            self.nominator.add(info, nominated or self.nominator.node_of(info.key))

    def _pod_deleted(self, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        self.queue.delete(key)
        self.queue.gated.discard(key)
        if self.nominator.by_node:
            self.nominator.remove(key)
        if self.preemption.victims:
            self.preemption.forget(key)
        if (pod.get("spec") or {}).get("nodeName"):
            self.cache.remove_pod(key)
            self.queue.move_on_event(ASSIGNED_POD_DELETE)

    def _node_added(self, node: dict) -> None:
        self.cache.add_node(node)
        self.queue.move_on_event(NODE_ADD)

    def _node_updated(self, old: dict, new: dict) -> None:
        self.cache.update_node(new)
        if _scheduling_relevant(old) != _scheduling_relevant(new):
            self.queue.move_on_event(NODE_UPDATE)

    def _node_deleted(self, node: dict) -> None:
        self.cache.remove_node((node.get("metadata") or {}).get("name", ""))
        self.queue.move_on_event(NODE_DELETE)

    # --- background tasks ----------------------------------------------------------------------------------------
    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Crashed scheduler task", exc_info=task.exception())

    async def _cleanup_assumed(self) -> None:
        while True:
            await asyncio.sleep(CLEANUP_PERIOD)
            self.cache.cleanup_expired()

    async def _drain(self, timeout: float = 5.0) -> None:
        """Let bindings in flight finish (briefly), then cancel what is left."""
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


def _plugin_events(profile: Profile) -> dict[str, frozenset[str]]:
    return {plugin.name: getattr(plugin, "events", frozenset()) for plugin in profile.plugins()}


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in _TERMINAL


def _scheduling_relevant(node: dict) -> tuple:
    """What of a node can change a filter's or score's answer (heartbeats and the like cannot)."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    conditions = tuple((c.get("type"), c.get("status")) for c in status.get("conditions") or [])
    return (meta.get("labels"), spec.get("taints"), spec.get("unschedulable"), status.get("allocatable"), conditions)


def _pod_scheduled_condition(pod: dict) -> dict:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled":
            return condition
    return {}
