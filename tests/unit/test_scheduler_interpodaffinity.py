"""InterPodAffinity without an API server: the filter's three checks and their upstream reasons, the first pod of a
self-attracting group, namespaces / namespaceSelector (against a real informer store) and matchLabelKeys, the
scores (weights, hardPodAffinityWeight, existing pods' preferred terms, ignorePreferredTermsOfExistingPods), the
plugin's args, and its part in preemption and nominated pods (node clones) and in a whole scheduling cycle."""
from __future__ import annotations

import contextlib
import random
from dataclasses import replace

import pytest
from test_scheduler_cycle import failure, place, scheduler  # noqa: F401
from test_scheduler_plugins import bound, node, pod

from kpy_components.client.cache import Indexer
from kpy_components.component.config import ConfigError
from kpy_components.scheduler import config
from kpy_components.scheduler.cache import SchedulerCache
from kpy_components.scheduler.framework import OK, SKIP, UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE
from kpy_components.scheduler.nominator import Nominator, with_nominated
from kpy_components.scheduler.plugins import build_profile
from kpy_components.scheduler.podgroups import PodGroups
from kpy_components.scheduler.plugins.interpodaffinity import (AFFINITY_MISMATCH, ANTI_AFFINITY_MISMATCH,
                                                               EXISTING_ANTI_AFFINITY_MISMATCH, InterPodAffinity)
from kpy_components.scheduler.preemption import Candidate, select_victims

HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"


def term(key: str = HOST, namespaces=None, namespace_selector=None, selector: dict | None = None, **labels) -> dict:
    """A PodAffinityTerm selecting `labels` (or `selector` as given) on `key`."""
    result = {"labelSelector": selector if selector is not None else {"matchLabels": labels}, "topologyKey": key}
    if namespaces is not None:
        result["namespaces"] = namespaces
    if namespace_selector is not None:
        result["namespaceSelector"] = namespace_selector
    return result


def affinity(required=(), anti=(), preferred=(), preferred_anti=()) -> dict:
    """spec.affinity with the given terms (preferred ones as (weight, term))."""
    def weighted(items):
        return [{"weight": weight, "podAffinityTerm": t} for weight, t in items]
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(required),
                            "preferredDuringSchedulingIgnoredDuringExecution": weighted(preferred)},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(anti),
                                "preferredDuringSchedulingIgnoredDuringExecution": weighted(preferred_anti)}}


def zoned(name: str, zone: str):
    return node(name, labels={ZONE: zone})


def filtered(plugin: InterPodAffinity, info, nodes) -> dict:
    """PreFilter over `nodes` then Filter on each: node name -> None or (code, reasons); "skip" when skipped."""
    state = {}
    status = plugin.pre_filter(state, info, nodes)
    if status.code == SKIP:
        return {target.name: "skip" for target in nodes}
    assert status == OK, status
    result = {}
    for target in nodes:
        outcome = plugin.filter(state, info, target)
        result[target.name] = None if outcome is None else (outcome.code, outcome.reasons)
    return result


def scored(plugin: InterPodAffinity, info, nodes, feasible=None) -> dict | str:
    """PreFilter + PreScore over `nodes`, normalised scores of `feasible` (default: all); "skip" when skipped."""
    state = {}
    plugin.pre_filter(state, info, nodes)
    feasible = feasible or nodes
    if plugin.pre_score(state, info, feasible).code == SKIP:
        return "skip"
    scores = plugin.score_all(state, info, feasible)
    assert scores == [plugin.score(state, info, target) for target in feasible]
    plugin.normalize(state, info, feasible, scores)
    return {target.name: score for target, score in zip(feasible, scores)}


ANTI = (UNSCHEDULABLE, (ANTI_AFFINITY_MISMATCH,))
EXISTING = (UNSCHEDULABLE, (EXISTING_ANTI_AFFINITY_MISMATCH,))
NO_AFFINITY = (UNSCHEDULABLE_AND_UNRESOLVABLE, (AFFINITY_MISMATCH,))


# --- filter ------------------------------------------------------------------------------------------------------

def test_pods_without_terms_skip_while_no_existing_pod_repels_them():
    nodes = [bound(node("a"), pod("web", labels={"app": "web"}))]
    assert filtered(InterPodAffinity(), pod("new", labels={"app": "web"}), nodes) == {"a": "skip"}


def test_required_anti_affinity_keeps_one_pod_per_host_and_per_zone():
    nodes = [bound(zoned("a", "z1"), pod("web-1", labels={"app": "web"})), zoned("b", "z1"), zoned("c", "z2")]
    per_host = pod("web-2", labels={"app": "web"}, affinity=affinity(anti=[term(app="web")]))
    assert filtered(InterPodAffinity(), per_host, nodes) == {"a": ANTI, "b": None, "c": None}
    per_zone = pod("web-3", labels={"app": "web"}, affinity=affinity(anti=[term(ZONE, app="web")]))
    assert filtered(InterPodAffinity(), per_zone, nodes) == {"a": ANTI, "b": ANTI, "c": None}
    # pods of another namespace, or being other apps, do not count
    other = pod("web-4", namespace="other", labels={"app": "web"}, affinity=affinity(anti=[term(ZONE, app="web")]))
    assert filtered(InterPodAffinity(), other, nodes) == {"a": None, "b": None, "c": None}


def test_required_affinity_needs_a_matching_pod_in_the_domain_and_every_topology_key():
    nodes = [bound(zoned("a", "z1"), pod("cache", labels={"app": "cache"})), zoned("b", "z1"), zoned("c", "z2"),
             node("bare")]
    info = pod("web", labels={"app": "web"}, affinity=affinity(required=[term(ZONE, app="cache")]))
    assert filtered(InterPodAffinity(), info, nodes) == {"a": None, "b": None, "c": NO_AFFINITY,
                                                         "bare": NO_AFFINITY}
    # several terms: one existing pod must match ALL of them
    both = pod("web", labels={"app": "web"}, affinity=affinity(
        required=[term(ZONE, app="cache"), term(HOST, selector={"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["cache", "db"]}]})]))
    assert filtered(InterPodAffinity(), both, nodes) == {"a": None, "b": NO_AFFINITY, "c": NO_AFFINITY,
                                                         "bare": NO_AFFINITY}


def test_the_first_pod_of_a_self_attracting_group_may_go_anywhere_with_the_key():
    nodes = [zoned("a", "z1"), zoned("b", "z2"), node("bare"), bound(zoned("c", "z3"), pod("x", labels={"app": "x"}))]
    first = pod("web-1", labels={"app": "web"}, affinity=affinity(required=[term(ZONE, app="web")]))
    assert filtered(InterPodAffinity(), first, nodes) == {"a": None, "b": None, "bare": NO_AFFINITY, "c": None}
    # a pod that does not match its own terms has no such exception
    stranger = pod("other", labels={"app": "other"}, affinity=affinity(required=[term(ZONE, app="web")]))
    assert set(filtered(InterPodAffinity(), stranger, nodes).values()) == {NO_AFFINITY}
    # once one pod of the group runs, the others follow it
    bound(nodes[1], pod("web-1", labels={"app": "web"}))
    second = pod("web-2", labels={"app": "web"}, affinity=affinity(required=[term(ZONE, app="web")]))
    assert filtered(InterPodAffinity(), second, nodes) == {"a": NO_AFFINITY, "b": None, "bare": NO_AFFINITY,
                                                           "c": NO_AFFINITY}


def test_existing_pods_anti_affinity_repels_the_incoming_pod_symmetrically():
    loner = pod("loner", labels={"app": "db"}, affinity=affinity(anti=[term(ZONE, app="web")]))
    nodes = [bound(zoned("a", "z1"), loner), zoned("b", "z1"), zoned("c", "z2"), node("bare")]
    web = pod("web", labels={"app": "web"})  # no terms of its own
    assert filtered(InterPodAffinity(), web, nodes) == {"a": EXISTING, "b": EXISTING, "c": None, "bare": None}
    assert filtered(InterPodAffinity(), pod("api", labels={"app": "api"}), nodes) == dict.fromkeys("abc", "skip") | {
        "bare": "skip"}
    # the existing pod's term looks in its own namespace only
    assert filtered(InterPodAffinity(), pod("web", namespace="other", labels={"app": "web"}), nodes) == {
        "a": "skip", "b": "skip", "c": "skip", "bare": "skip"}


def namespaces(**labels_by_name) -> Indexer:
    """The Namespace informer's store, filled as the informer fills it."""
    store = Indexer()
    for name, labels in labels_by_name.items():
        store.upsert({"metadata": {"name": name, "labels": labels}})
    return store


def test_namespace_selector_and_namespaces_pick_the_namespaces_a_term_looks_in():
    plugin = InterPodAffinity()
    plugin.use_namespaces(namespaces(red={"team": "a"}, blue={"team": "a"}, green={"team": "b"}))
    nodes = [bound(node(name), pod(f"web-{name}", namespace=name, labels={"app": "web"}))
             for name in ("red", "blue", "green", "default")]

    def rejected(**selection) -> set[str]:
        info = pod("new", labels={"app": "new"}, affinity=affinity(anti=[term(app="web", **selection)]))
        return {name for name, outcome in filtered(plugin, info, nodes).items() if outcome is not None}

    assert rejected() == {"default"}  # neither: the pod's own namespace
    assert rejected(namespace_selector={"matchLabels": {"team": "a"}}) == {"red", "blue"}
    assert rejected(namespaces=["green"], namespace_selector={"matchLabels": {"team": "a"}}) == {
        "red", "blue", "green"}  # the union
    assert rejected(namespaces=["green"]) == {"green"}
    assert rejected(namespace_selector={}) == {"red", "blue", "green", "default"}  # {}: every namespace
    plugin.use_namespaces(None)  # no store: a selector matches no namespace
    assert rejected(namespace_selector={"matchLabels": {"team": "a"}}) == set()


def test_existing_pods_namespace_selector_is_matched_against_the_incoming_pods_namespace_labels():
    plugin = InterPodAffinity()
    plugin.use_namespaces(namespaces(red={"team": "a"}, green={"team": "b"}))
    guard = pod("guard", namespace="green", labels={"app": "guard"}, affinity=affinity(
        anti=[term(app="web", namespace_selector={"matchLabels": {"team": "a"}})]))
    nodes = [bound(node("a"), guard), node("b")]
    assert filtered(plugin, pod("web", namespace="red", labels={"app": "web"}), nodes) == {"a": EXISTING, "b": None}
    assert filtered(plugin, pod("web", namespace="green", labels={"app": "web"}), nodes) == {"a": "skip",
                                                                                             "b": "skip"}


def test_null_label_selector_selects_nothing():
    nodes = [bound(node("a"), pod("web", labels={"app": "web"}))]
    info = pod("new", affinity=affinity(anti=[{"topologyKey": HOST}]))
    assert filtered(InterPodAffinity(), info, nodes) == {"a": None}


def test_match_and_mismatch_label_keys_take_values_from_the_pods_own_labels():
    v1, v2 = {"app": "web", "rev": "1"}, {"app": "web", "rev": "2"}
    nodes = [bound(node("a"), pod("old", labels=v1)), bound(node("b"), pod("new", labels=v2)), node("c")]
    same_revision = dict(term(app="web"), matchLabelKeys=["rev"])
    info = pod("next", labels=v2, affinity=affinity(anti=[same_revision]))
    assert filtered(InterPodAffinity(), info, nodes) == {"a": None, "b": ANTI, "c": None}
    other_revisions = dict(term(app="web"), mismatchLabelKeys=["rev"])
    info = pod("next", labels=v2, affinity=affinity(anti=[other_revisions]))
    assert filtered(InterPodAffinity(), info, nodes) == {"a": ANTI, "b": None, "c": None}
    missing_key = dict(term(app="web"), matchLabelKeys=["track"])  # a key the pod lacks is ignored
    info = pod("next", labels=v2, affinity=affinity(anti=[missing_key]))
    assert filtered(InterPodAffinity(), info, nodes) == {"a": ANTI, "b": ANTI, "c": None}


def test_an_invalid_selector_is_named_not_raised():
    info = pod("bad", affinity=affinity(anti=[term(selector={"matchExpressions": [
        {"key": "app", "operator": "Near", "values": ["x"]}]})]))
    status = InterPodAffinity().pre_filter({}, info, [node("a")])
    assert status.code == UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message.startswith(
        "invalid pod affinity: spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution: ")
    assert "Near" in status.message


# --- score -------------------------------------------------------------------------------------------------------

def test_preferred_terms_add_and_subtract_their_weights_per_domain():
    nodes = [bound(zoned("a", "z1"), pod("cache", labels={"app": "cache"})), zoned("b", "z1"),
             bound(zoned("c", "z2"), pod("batch", labels={"app": "batch"})), zoned("d", "z3")]
    info = pod("web", labels={"app": "web"}, affinity=affinity(
        preferred=[(80, term(ZONE, app="cache"))], preferred_anti=[(40, term(ZONE, app="batch"))]))
    # raw: z1 +80, z2 -40, z3 0 -> (score - min) / (max - min)
    assert scored(InterPodAffinity(), info, nodes) == {"a": 100, "b": 100, "c": 0, "d": 33}


def test_pods_counted_on_nodes_that_are_not_scored_still_count():
    nodes = [bound(zoned("a", "z1"), pod("cache", labels={"app": "cache"})), zoned("b", "z1"), zoned("c", "z2")]
    info = pod("web", labels={"app": "web"}, affinity=affinity(preferred=[(10, term(ZONE, app="cache"))]))
    assert scored(InterPodAffinity(), info, nodes, feasible=nodes[1:]) == {"b": 100, "c": 0}


def test_existing_pods_terms_score_the_incoming_pod():
    wants_web = pod("frontend", labels={"app": "fe"}, affinity=affinity(required=[term(ZONE, app="web")]))
    prefers_web = pod("metrics", labels={"app": "m"}, affinity=affinity(preferred=[(5, term(ZONE, app="web"))]))
    avoids_web = pod("batch", labels={"app": "b"}, affinity=affinity(preferred_anti=[(3, term(ZONE, app="web"))]))
    nodes = [bound(zoned("a", "z1"), wants_web), bound(zoned("b", "z2"), prefers_web),
             bound(zoned("c", "z3"), avoids_web), zoned("d", "z4")]
    web = pod("web", labels={"app": "web"})
    # hardPodAffinityWeight 1: z1 +1, z2 +5, z3 -3, z4 0
    assert scored(InterPodAffinity(), web, nodes) == {"a": 50, "b": 100, "c": 0, "d": 37}
    assert scored(InterPodAffinity(hard_pod_affinity_weight=9), web, nodes) == {"a": 100, "b": 66, "c": 0, "d": 25}
    assert scored(InterPodAffinity(hard_pod_affinity_weight=0), web, nodes) == {"a": 37, "b": 100, "c": 0, "d": 37}
    # ignorePreferredTermsOfExistingPods: an incoming pod without preferred terms is not scored at all
    assert scored(InterPodAffinity(ignore_preferred_terms_of_existing_pods=True), web, nodes) == "skip"
    assert scored(InterPodAffinity(), pod("other", labels={"app": "other"}), nodes) == "skip"


def test_equal_raw_scores_normalise_to_zero():
    nodes = [bound(zoned("a", "z1"), pod("cache", labels={"app": "cache"})), zoned("b", "z1")]
    info = pod("web", affinity=affinity(preferred=[(10, term(ZONE, app="cache"))]))
    assert scored(InterPodAffinity(), info, nodes) == {"a": 0, "b": 0}


def test_plugin_args_are_validated_and_applied():
    def parsed(args: dict):
        return config.parse({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                             "profiles": [{"pluginConfig": [{"name": "InterPodAffinity", "args": args}]}]})
    profile = parsed({"hardPodAffinityWeight": 7, "ignorePreferredTermsOfExistingPods": True}).profiles[0]
    built = build_profile(profile.scheduler_name, profile.points, profile.plugin_args)
    (plugin,) = [p for p, weight in built.scores if p.name == "InterPodAffinity" and weight == 2]
    assert (plugin.hard_pod_affinity_weight, plugin.ignore_preferred_terms_of_existing_pods) == (7, True)
    with pytest.raises(ConfigError) as raised:
        parsed({"hardPodAffinityWeight": 101, "ignorePreferredTermsOfExistingPods": "yes"})
    assert raised.value.problems == [
        "profiles[0].pluginConfig[0].args.hardPodAffinityWeight: must be within 0..100, not 101",
        "profiles[0].pluginConfig[0].args.ignorePreferredTermsOfExistingPods: must be true or false, not 'yes'"]


# --- preemption, nominated pods, whole cycles --------------------------------------------------------------------

def test_removing_a_victim_lifts_the_anti_affinity_in_preemptions_dry_run():
    plugin = InterPodAffinity()
    low = pod("low", labels={"app": "web"}, priority=1)
    repelling = pod("repelling", labels={"app": "db"}, priority=1, affinity=affinity(anti=[term(app="web")]))
    for resident in (low, repelling):
        cache = SchedulerCache()
        cache.add_node(node("a").node)
        bystander = pod("bystander", labels={"app": "batch"}, priority=1)  # reprieved: it repels nothing
        for info in (resident, bystander):
            cache.add_pod(replace(info, node_name="a"))
        target, nodes = cache.nodes["a"], cache.snapshot()
        info = pod("high", labels={"app": "web"}, priority=10, affinity=affinity(anti=[term(app="web")]))
        state = {}
        assert plugin.pre_filter(state, info, nodes) == OK
        assert plugin.filter(state, info, target) is not None
        result = select_victims(plugin.filter, state, info, target, [])
        assert isinstance(result, Candidate) and [v.name for v in result.victims] == [resident.name]
        assert list(target.pods) == [resident.key, bystander.key]  # the dry run worked on a copy...
        assert cache.groups.by_signature == PodGroups.of(nodes).by_signature  # ...and left the cache's groups be


def test_a_nominated_pods_anti_affinity_keeps_others_off_its_node():
    plugin = InterPodAffinity()
    nominator = Nominator()
    nominator.add(pod("preemptor", priority=10, affinity=affinity(anti=[term(app="web")])), "a")
    nodes = [node("a"), bound(node("b"), pod("guard", affinity=affinity(anti=[term(app="web")])))]
    info = pod("web", labels={"app": "web"}, priority=5)
    state = {}
    assert plugin.pre_filter(state, info, nodes) == OK
    assert plugin.filter(state, info, nodes[0]) is None  # the nominated pod is not bound...
    check = with_nominated([plugin.filter], nominator.for_pod(info))
    assert check(state, info, nodes[0]).reasons == (EXISTING_ANTI_AFFINITY_MISMATCH,)  # ...but counts as if it were
    assert check(state, info, nodes[1]).reasons == (EXISTING_ANTI_AFFINITY_MISMATCH,)


def _replicas(scheduler, count: int, nodes: int, spec: dict) -> list[str]:  # noqa: F811
    """`nodes` nodes n1.. of 8 CPUs, then `count` replicas (app=web, 100m) placed and assumed one by one: where."""
    for number in range(1, nodes + 1):
        scheduler.cache.add_node(node(f"n{number}", cpu="8").node)
    placed = []
    for number in range(count):
        info = pod(f"web-{number}", labels={"app": "web"}, cpu="100m", **spec)
        chosen = place(scheduler, info)
        scheduler.cache.assume_pod(info, chosen.name)
        placed.append(chosen.name)
    return placed


def test_a_deployment_with_host_anti_affinity_spreads_and_the_extra_replica_is_explained(scheduler):  # noqa: F811
    spread = {"affinity": affinity(anti=[term(app="web")])}
    assert sorted(_replicas(scheduler, 3, 3, spread)) == ["n1", "n2", "n3"]
    outcome = failure(scheduler, pod("web-3", labels={"app": "web"}, cpu="100m", **spread))
    assert outcome.message == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are "
        "available: 3 No preemption victims found for incoming pod.")


def test_preferred_affinity_co_locates_replicas(scheduler):  # noqa: F811
    placed = _replicas(scheduler, 5, 4, {"affinity": affinity(preferred=[(100, term(app="web"))])})
    assert len(set(placed)) == 1


def test_the_caches_pod_groups_follow_every_change_of_its_pods_and_nodes():
    """The groups the cache keeps current equal those built afresh from its nodes, after any sequence of binds,
    assumes, forgets, deletes, node removals (pods orphaned) and re-adds."""
    rng = random.Random(11)
    cache = SchedulerCache()
    makers = [lambda n: pod(n, labels={"app": "web"}, affinity=affinity(anti=[term(app="web")])),
              lambda n: pod(n, labels={"app": "db"}), lambda n: pod(n, namespace="other", labels={"app": "web"}),
              lambda n: pod(n, labels={"app": "x"}, affinity=affinity(preferred=[(5, term(ZONE, app="web"))]))]
    for number in range(300):
        action, name, where = rng.randrange(6), f"p{rng.randrange(40)}", f"n{rng.randrange(4)}"
        if action == 0:
            cache.add_node(zoned(where, f"z{rng.randrange(2)}").node)
        elif action == 1:
            cache.remove_node(where)
        elif action in (2, 3):
            info = rng.choice(makers)(name)
            if action == 2:
                cache.add_pod(replace(info, node_name=where))
            else:
                with contextlib.suppress(KeyError):  # already in the cache
                    cache.assume_pod(info, where)
        elif action == 4:
            cache.forget_pod(f"default/{name}")
        else:
            cache.remove_pod(f"{rng.choice(['default', 'other'])}/{name}")
        fresh = PodGroups.of(cache.snapshot())
        assert cache.groups.by_signature == fresh.by_signature, number
        assert cache.groups.by_terms == fresh.by_terms, number
