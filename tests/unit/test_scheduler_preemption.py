"""Preemption without an API server: victim choice on one node (reprieve, PDBs), the node pick
(pickOneNodeForPreemption's criteria in order), the DefaultPreemption PostFilter's outcomes and messages, and the
nominator keeping a preemptor's room. A property test checks victim choice on random nodes."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scheduler_cycle import failure, place, scheduler  # noqa: F401
from test_scheduler_plugins import bound, node, pod

from kpy_components.scheduler.framework import FILTERS_KEY, UNSCHEDULABLE_AND_UNRESOLVABLE
from kpy_components.scheduler.nominator import Nominator, run_filters, with_nominated
from kpy_components.scheduler.plugins.default_preemption import DefaultPreemption
from kpy_components.scheduler.plugins.node_ports import NodePorts
from kpy_components.scheduler.plugins.node_resources import NodeResourcesFit
from kpy_components.scheduler.preemption import (NO_VICTIMS, Candidate, candidates_to_find, pick_one_node,
                                                 select_victims, split_by_pdb)

FIT = NodeResourcesFit()


def fits(state, info, target):
    return run_filters([FIT.filter], state, info, target)


def started(info, when: str):
    info.pod.setdefault("status", {})["startTime"] = when
    return info


def pdb(allowed: int, **labels) -> dict:
    return {"metadata": {"name": "budget", "namespace": "default"},
            "spec": {"selector": {"matchLabels": labels}}, "status": {"disruptionsAllowed": allowed}}


# --- victims on one node --------------------------------------------------------------------------------------

def test_the_most_important_pods_are_reprieved():
    target = bound(node(cpu="4"), pod("p0", cpu="1", priority=0), pod("p1", cpu="1", priority=1),
                   pod("p5", cpu="2", priority=5))
    chosen = select_victims(fits, {}, pod("high", cpu="2", priority=10), target, [])
    assert [v.name for v in chosen.victims] == ["p1", "p0"]
    assert len(target.pods) == 3  # the dry run works on a copy


def test_no_lower_priority_pods_and_hopeless_nodes_are_no_candidates():
    equal = bound(node(cpu="1"), pod("same", cpu="1", priority=10))
    status = select_victims(fits, {}, pod("high", cpu="1", priority=10), equal, [])
    assert (status.code, status.reasons) == (UNSCHEDULABLE_AND_UNRESOLVABLE, (NO_VICTIMS,))
    small = bound(node(cpu="1"), pod("low", cpu="1"))
    assert select_victims(fits, {}, pod("high", cpu="2", priority=10), small, []).reasons == ("Insufficient cpu",)


def test_pods_a_budget_protects_are_reprieved_first():
    target = bound(node(cpu="2"), pod("guarded", cpu="1", labels={"app": "db"}), pod("free", cpu="1"))
    chosen = select_victims(fits, {}, pod("high", cpu="1", priority=10), target, [pdb(0, app="db")])
    assert ([v.name for v in chosen.victims], chosen.pdb_violations) == (["free"], 0)
    both = select_victims(fits, {}, pod("high", cpu="2", priority=10), target, [pdb(0, app="db")])
    assert (sorted(v.name for v in both.victims), both.pdb_violations) == (["free", "guarded"], 1)


def test_budgets_are_spent_in_order_and_disrupted_pods_do_not_spend_them():
    pods = [pod(f"db{i}", labels={"app": "db"}) for i in range(3)]
    violating, other = split_by_pdb(pods, [pdb(1, app="db")])
    assert ([p.name for p in violating], [p.name for p in other]) == (["db1", "db2"], ["db0"])
    already = pdb(1, app="db")
    already["status"]["disruptedPods"] = {"db0": "2024-01-01T00:00:00Z"}
    assert [p.name for p in split_by_pdb(pods, [already])[0]] == ["db2"]
    assert split_by_pdb(pods, [pdb(0)])[0] == []  # an empty selector matches nothing


# --- picking the node -----------------------------------------------------------------------------------------

def candidate(name: str, *victims, violations: int = 0, order: int = 0) -> Candidate:
    return Candidate(name, list(victims), violations, order)


@pytest.mark.parametrize(("candidates", "expected"), [
    ([candidate("a", pod(priority=1), violations=1), candidate("b", pod(priority=5))], "b"),
    ([candidate("a", pod(priority=5)), candidate("b", pod(priority=1), pod(priority=1))], "b"),
    ([candidate("a", pod(priority=5), pod(priority=4)), candidate("b", pod(priority=5), pod(priority=1))], "b"),
    ([candidate("a", pod(priority=5), pod(priority=-1), pod(priority=-1)),
      candidate("b", pod(priority=5), pod(priority=1))], "b"),
    ([candidate("a", started(pod(priority=5), "2024-01-01T00:00:00Z")),
      candidate("b", started(pod(priority=5), "2024-06-01T00:00:00Z"))], "b"),
    ([candidate("a", pod(priority=5), order=1), candidate("b", pod(priority=5), order=0)], "b"),
], ids=["fewest-pdb-violations", "lowest-highest-priority", "smallest-priority-sum", "fewest-victims",
        "latest-start", "first-among-equals"])
def test_pick_one_node_criteria_in_order(candidates, expected):
    assert pick_one_node(candidates).node == expected


def test_candidates_to_find():
    assert (candidates_to_find(50), candidates_to_find(5000), candidates_to_find(5000, 0, 7)) == (50, 500, 7)


# --- the PostFilter -------------------------------------------------------------------------------------------

def post_filter(nodes, info, statuses=None, handle=None):
    plugin = DefaultPreemption(rng=random.Random(3))
    if handle is not None:
        plugin.bind(handle)
    statuses = statuses or {n.name: fits({}, info, n) for n in nodes}
    return plugin.post_filter({FILTERS_KEY: [FIT.filter]}, info, nodes, statuses)


def test_preemption_nominates_the_best_node():
    nodes = [bound(node("a", cpu="2"), pod("a1", cpu="1", priority=5), pod("a2", cpu="1", priority=5)),
             bound(node("b", cpu="2"), pod("b1", cpu="1", priority=1), pod("b2", cpu="1", priority=7))]
    status = post_filter(nodes, pod("high", cpu="1", priority=10))
    assert (status.success, status.nominated_node, status.message) == (True, "b", "")


def test_messages_when_preemption_cannot_help():
    nodes = [bound(node("a", cpu="1"), pod("same", cpu="1", priority=10)),
             bound(node("b", cpu="1"), pod("low", cpu="1")),
             node("c", cpu="1", taints=[{"key": "k", "effect": "NoSchedule"}])]
    info = pod("high", cpu="2", priority=10)
    statuses = {n.name: fits({}, info, n) for n in nodes}
    statuses["c"] = statuses["c"].__class__(UNSCHEDULABLE_AND_UNRESOLVABLE, ("node(s) had untolerated taint",))
    status = post_filter(nodes, info, statuses)
    assert not status.success
    assert status.message == ("preemption: 0/3 nodes are available: 1 Insufficient cpu, 1 No preemption victims "
                              "found for incoming pod, 1 Preemption is not helpful for scheduling.")
    assert post_filter(nodes, pod("never", cpu="1", priority=10, preemptionPolicy="Never")).message == (
        "preemption: not eligible due to preemptionPolicy=Never.")


def test_no_new_preemption_while_room_is_coming_on_the_nominated_node():
    going = pod("going", cpu="1")
    going.pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    going.pod["status"] = {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                           "reason": "PreemptionByScheduler"}]}
    nodes = [bound(node("a", cpu="1"), going), bound(node("b", cpu="1"), pod("other", cpu="1"))]
    info = pod("high", cpu="1", priority=10)
    info.pod["status"] = {"nominatedNodeName": "a"}
    assert post_filter(nodes, info).message == (
        "preemption: not eligible due to a terminating pod on the nominated node.")


# --- nominated pods keep their room ---------------------------------------------------------------------------

def test_nominated_pods_of_higher_or_equal_priority_keep_their_room():
    nominator = Nominator()
    nominator.add(pod("preemptor", cpu="2", priority=10), "a")
    target = node("a", cpu="2")
    for priority, rejected in ((5, True), (10, True), (11, False)):
        info = pod(f"p{priority}", cpu="1", priority=priority)
        check = with_nominated([FIT.filter], nominator.for_pod(info))
        assert (check({}, info, target) is not None) is rejected, priority
    preemptor = pod("preemptor", cpu="2", priority=10)
    assert nominator.for_pod(preemptor) == {}  # its own nomination does not count against it
    nominator.remove("default/preemptor")
    assert nominator.by_node == {}


def test_a_pod_fitting_only_without_the_nominated_pod_is_rejected_too():
    nominator = Nominator()
    nominator.add(pod("preemptor", priority=10), "a")  # needs no port; the candidate needs one free
    target = bound(node("a"), pod("holder", priority=1,
                                  containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}]))
    info = pod("web", priority=11, containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}])
    check = with_nominated([NodePorts().filter], nominator.for_pod(info))
    assert check({}, info, target) is not None


def test_the_scheduler_places_others_away_from_a_nominated_node(scheduler):
    for name in ("a", "b"):
        scheduler.cache.add_node(node(name, cpu="2").node)
    scheduler.cache.add_pod(pod("filler", cpu="2", nodeName="b"))
    scheduler.nominator.add(pod("preemptor", cpu="2", priority=10), "a")
    outcome = failure(scheduler, pod("low", cpu="1"))
    assert outcome.message.startswith("0/2 nodes are available: 2 Insufficient cpu.")
    assert place(scheduler, pod("preemptor", cpu="2", priority=10)).name == "a"


# --- property: victims are minimal ------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 4)), max_size=8), st.integers(1, 6),
       st.integers(0, 5))
def test_victims_are_lower_priority_make_room_and_none_could_stay(residents, wanted, priority):
    target = node(cpu="8")
    for index, (resident_priority, cpu) in enumerate(residents):
        if target.requested_cpu + cpu * 1000 <= 8000:
            target.add_pod(pod(f"r{index}", cpu=str(cpu), priority=resident_priority))
    info = pod("preemptor", cpu=str(wanted), priority=priority)
    chosen = select_victims(fits, {}, info, target, [])
    if not isinstance(chosen, Candidate):
        return
    assert all(v.priority < priority for v in chosen.victims)
    twin = target.clone()
    for victim in chosen.victims:
        twin.remove_pod(victim.key)
    assert fits({}, info, twin) is None
    for victim in chosen.victims:  # giving back any one victim would leave no room
        twin.add_pod(victim)
        assert fits({}, info, twin) is not None
        twin.remove_pod(victim.key)
