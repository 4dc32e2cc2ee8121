"""Property: for arbitrary nodes (capacity, pods already bound, labels, taints) and an arbitrary pod (requests,
tolerations, preferred affinity, spread constraints), every score plugin's normalised scores stay within 0..100,
and so the weighted total stays within 0..100 x the sum of the weights; batch scores equal per-node scores."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kpy_components.scheduler import config
from kpy_components.scheduler.cache import NodeInfo
from kpy_components.scheduler.framework import MAX_NODE_SCORE, SKIP
from kpy_components.scheduler.plugins import build_profile
from kpy_components.scheduler.podinfo import PodInfo

ZONES = st.sampled_from(["z1", "z2", "z3"])
LABELS = st.dictionaries(st.sampled_from(["zone", "disk", "gen"]), st.sampled_from(["z1", "ssd", "3", "7"]),
                         max_size=3)
TAINTS = st.lists(st.fixed_dictionaries({"key": st.sampled_from(["a", "b", "c"]),
                                         "effect": st.sampled_from(["PreferNoSchedule", "NoSchedule"])}), max_size=3)
CPU = st.integers(min_value=0, max_value=64000).map(lambda m: f"{m}m")
MEMORY = st.integers(min_value=0, max_value=2 ** 36).map(str)


def _pod(name: str, cpu: str, memory: str, labels: dict, **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
                     **spec}}


@st.composite
def nodes(draw) -> list[NodeInfo]:
    result = []
    for index in range(draw(st.integers(min_value=1, max_value=8))):
        info = NodeInfo({"metadata": {"name": f"n{index}", "labels": draw(LABELS)},
                         "spec": {"taints": draw(TAINTS)},
                         "status": {"allocatable": {"cpu": draw(CPU), "memory": draw(MEMORY),
                                                    "pods": str(draw(st.integers(0, 110)))}}})
        for number in range(draw(st.integers(min_value=0, max_value=4))):
            info.add_pod(PodInfo.of(_pod(f"p{index}-{number}", draw(CPU), draw(MEMORY),
                                         {"app": draw(st.sampled_from(["web", "db"]))})))
        result.append(info)
    return result


@st.composite
def pods(draw) -> PodInfo:
    preferred = [{"weight": draw(st.integers(1, 100)),
                  "preference": {"matchExpressions": [{"key": draw(st.sampled_from(["zone", "disk"])),
                                                       "operator": draw(st.sampled_from(["In", "Exists"])),
                                                       "values": [draw(ZONES)]}]}}
                 for _ in range(draw(st.integers(0, 3)))]
    for term in preferred:
        if term["preference"]["matchExpressions"][0]["operator"] == "Exists":
            del term["preference"]["matchExpressions"][0]["values"]
    spread = [{"maxSkew": draw(st.integers(1, 5)), "topologyKey": draw(st.sampled_from(["zone", "kubernetes.io/hostname"])),
               "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}
              for _ in range(draw(st.integers(0, 2)))]
    tolerations = [{"key": draw(st.sampled_from(["a", "b"])), "operator": "Exists"}
                   for _ in range(draw(st.integers(0, 2)))]
    return PodInfo.of(_pod("new", draw(CPU), draw(MEMORY), {"app": "web"}, tolerations=tolerations,
                           affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}},
                           topologySpreadConstraints=spread))


PROFILE = config.load(None).profiles[0]


@settings(max_examples=300, deadline=None)
@given(nodes(), pods(), st.sampled_from(["LeastAllocated", "MostAllocated"]))
def test_normalised_scores_stay_within_0_and_100(candidates, pod, strategy):
    args = {"NodeResourcesFit": {"scoringStrategy": {"type": strategy}}}
    profile = build_profile(PROFILE.scheduler_name, PROFILE.points, args)
    state = {}
    skipped = {plugin.name for plugin in profile.pre_scores
               if plugin.pre_score(state, pod, candidates).code == SKIP}
    for plugin, _ in profile.scores:
        if plugin.name in skipped:
            continue
        scores = [plugin.score(state, pod, node) for node in candidates]
        plugin.normalize(state, pod, candidates, scores)
        assert all(0 <= score <= MAX_NODE_SCORE for score in scores), (plugin.name, scores)
    totals = profile.score_nodes({}, pod, candidates)
    assert all(0 <= total <= MAX_NODE_SCORE * sum(weight for _, weight in profile.scores) for total in totals)


@settings(max_examples=300, deadline=None)
@given(nodes(), pods(), st.sampled_from(["LeastAllocated", "MostAllocated"]))
def test_the_batch_scores_equal_the_per_node_scores(candidates, pod, strategy):
    """score_all (the hot path, one loop over the nodes) gives exactly what score gives node by node."""
    args = {"NodeResourcesFit": {"scoringStrategy": {"type": strategy}}}
    profile = build_profile(PROFILE.scheduler_name, PROFILE.points, args)
    batched = [plugin for plugin, _ in profile.scores if hasattr(plugin, "score_all")]
    assert {plugin.name for plugin in batched} >= {"NodeResourcesFit", "NodeResourcesBalancedAllocation"}
    for plugin in batched:
        assert plugin.score_all({}, pod, candidates) == [plugin.score({}, pod, node) for node in candidates]
