"""One scheduling cycle without an API server: a real Scheduler over an unstarted client (never contacted), its
cache filled by hand. The FailedScheduling wording, percentageOfNodesToScore, round-robin, tie-breaking, the
cache's assumed pods, and the events a failure waits for."""
from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry
from test_scheduler_plugins import node, pod

from kpy_components.client import ClientConfig, EventRecorder, RESTClient, SharedInformerFactory
from kpy_components.scheduler import config, messages
from kpy_components.scheduler.cache import SchedulerCache
from kpy_components.scheduler.framework import NODE_ADD, Status, unschedulable
from kpy_components.scheduler.scheduler import Failure, Scheduler, feasible_nodes_to_find, select_host

CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.fixture
def scheduler() -> Scheduler:
    client = RESTClient(ClientConfig(server="https://127.0.0.1:1"))  # never started: nothing is sent
    return Scheduler(client, SharedInformerFactory(client), lambda name: EventRecorder(client, name),
                     config.load(None), CollectorRegistry(), rng=random.Random(7))


def place(scheduler: Scheduler, info, percentage: int = 0):
    profile, _ = scheduler.profiles["default-scheduler"]
    return scheduler.schedule_pod(profile, percentage, info)


def failure(scheduler: Scheduler, info) -> Failure:
    outcome = place(scheduler, info)
    assert isinstance(outcome, Failure), outcome
    return outcome


def test_fit_error_message_is_worded_as_kubernetes(scheduler):
    for name in ("w1", "w2"):
        scheduler.cache.add_node(node(name, cpu="1").node)
        scheduler.cache.add_pod(pod(f"on-{name}", cpu="900m", nodeName=name))
    for name in ("cp1", "cp2", "cp3"):
        scheduler.cache.add_node(node(name, taints=[CONTROL_PLANE]).node)
    outcome = failure(scheduler, pod(cpu="500m"))
    assert outcome.message == (
        "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/5 nodes are available: 2 No preemption victims "
        "found for incoming pod, 3 Preemption is not helpful for scheduling.")
    assert NODE_ADD in outcome.retry_on


def test_messages_sort_reasons_and_count_each_reason_of_each_node():
    statuses = {"a": unschedulable("Fit", "Insufficient cpu", "Insufficient memory"),
                "b": unschedulable("Fit", "Insufficient cpu"),
                "c": unschedulable("NodeAffinity", "node(s) didn't match Pod's node affinity/selector")}
    assert messages.fit_error(3, statuses) == ("0/3 nodes are available: 1 Insufficient memory, 1 node(s) didn't "
                                               "match Pod's node affinity/selector, 2 Insufficient cpu.")
    pre_filter = Status("UnschedulableAndUnresolvable", ("pod has unbound immediate PersistentVolumeClaims",))
    assert messages.fit_error(3, {}, pre_filter, "preemption: x.") == (
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: x.")


def test_no_nodes_and_preemption_policy_never(scheduler):
    assert failure(scheduler, pod()).message == "no nodes available to schedule pods"
    scheduler.cache.add_node(node("n1", cpu="1").node)
    assert failure(scheduler, pod(cpu="2", preemptionPolicy="Never")).message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.")


@pytest.mark.parametrize(("nodes", "percentage", "expected"), [
    (5, 0, 5), (99, 0, 99), (100, 0, 100), (500, 0, 230), (1000, 0, 420), (5000, 0, 500), (6000, 0, 300),
    (10000, 0, 500), (1000, 10, 100), (1000, 50, 500), (1000, 100, 1000)], ids=str)
def test_feasible_nodes_to_find(nodes, percentage, expected):
    assert feasible_nodes_to_find(nodes, percentage) == expected


def test_filtering_stops_at_enough_nodes_and_resumes_round_robin(scheduler):
    for index in range(200):
        scheduler.cache.add_node(node(f"n{index:03}").node)
    profile, _ = scheduler.profiles["default-scheduler"]
    nodes = scheduler.cache.snapshot()

    def first_feasible() -> list:
        state, info = {}, pod()
        _, skipped = profile.run_pre_filters(state, info, nodes)
        return scheduler.find_feasible(profile, state, info, nodes, skipped, 0)[0]
    feasible = first_feasible()
    assert len(feasible) == 100 and feasible[0].name == "n000" and scheduler.next_start_index == 100
    assert first_feasible()[0].name == "n100"
    assert first_feasible()[0].name == "n000"


def test_ties_are_broken_at_random_among_the_best():
    nodes = [node(f"n{i}") for i in range(4)]
    chosen = {select_host(nodes, [5, 9, 9, 1], random.Random(seed)).name for seed in range(40)}
    assert chosen == {"n1", "n2"}


def test_the_best_scored_node_is_chosen_and_assumed_pods_count(scheduler):
    scheduler.cache.add_node(node("busy", cpu="4").node)
    scheduler.cache.add_pod(pod("x", cpu="3", nodeName="busy"))
    scheduler.cache.add_node(node("idle", cpu="4").node)
    first = pod("first", cpu="1")
    assert place(scheduler, first).name == "idle"  # least allocated wins
    scheduler.cache.assume_pod(first, "idle")
    scheduler.cache.assume_pod(pod("second", cpu="2"), "idle")
    assert scheduler.cache.nodes["idle"].requested["cpu"] == 3000
    assert place(scheduler, pod("third", cpu="1")).name == "busy"  # now the emptier one


def test_assumed_pods_are_confirmed_forgotten_or_expire():
    now = [0.0]
    cache = SchedulerCache(assumed_ttl=30, clock=lambda: now[0])
    cache.add_node(node("n1").node)
    info = pod("p", cpu="1")
    cache.assume_pod(info, "n1")
    assert cache.nodes["n1"].requested["cpu"] == 1000 and cache.is_assumed("default/p")
    cache.forget_pod("default/p")
    assert cache.nodes["n1"].requested["cpu"] == 0
    cache.assume_pod(info, "n1")
    cache.finish_binding("default/p")
    now[0] = 31.0
    assert cache.cleanup_expired() == ["default/p"] and cache.nodes["n1"].requested["cpu"] == 0
    cache.assume_pod(info, "n1")
    bound_info = pod("p", cpu="1", nodeName="n1")
    cache.add_pod(bound_info)  # the informer confirms the binding: no longer assumed, counted once
    assert not cache.is_assumed("default/p") and cache.nodes["n1"].requested["cpu"] == 1000
    cache.remove_node("n1")
    cache.add_node(node("n1").node)  # pods outlive a node's re-creation in the cache
    assert cache.nodes["n1"].requested["cpu"] == 1000


def test_only_our_ungated_pending_pods_are_queued(scheduler):
    queue = scheduler.queue
    scheduler._pod_added(pod("ours").pod)
    scheduler._pod_added(pod("theirs", schedulerName="other-scheduler").pod)
    scheduler._pod_added({**pod("finished").pod, "status": {"phase": "Failed"}})
    gated = pod("gated", schedulingGates=[{"name": "example.com/quota"}]).pod
    scheduler._pod_added(gated)
    assert "default/ours" in queue and "default/gated" not in queue
    assert "default/theirs" not in queue and "default/finished" not in queue
    assert queue.pending()["gated"] == 1
    scheduler._pod_updated(gated, pod("gated").pod)  # the gate is removed
    assert "default/gated" in queue and queue.pending() == {"active": 2, "backoff": 0, "unschedulable": 0,
                                                            "gated": 0}
    scheduler._pod_updated(pod("ours").pod, pod("ours", nodeName="n1").pod)  # bound elsewhere: dropped
    assert "default/ours" not in queue
