"""The Deployment controller's arithmetic (controllers/rollout.py): fenceposts rounded as Kubernetes rounds them,
the new ReplicaSet's growth, proportional scaling, revisions, cleanup, status and conditions — and a Hypothesis
model of a whole rolling update in which the ReplicaSet controller and the pods lag behind: availability never
drops below replicas - maxUnavailable and the ReplicaSets never add up to more than replicas + maxSurge."""
from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kpy_components.controller_manager.controllers import pods as podutil
from kpy_components.controller_manager.controllers import rollout

NOW = 1_700_000_000.0


def deployment(replicas=10, surge="25%", unavailable="25%", strategy="RollingUpdate", **spec) -> dict:
    rolling = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "d-1", "generation": 1},
            "spec": {"replicas": replicas, "strategy": {"type": strategy, **({"rollingUpdate": rolling}
                                                                             if strategy == "RollingUpdate" else {})},
                     "progressDeadlineSeconds": 600, "revisionHistoryLimit": 2,
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "a"}]}},
                     **spec},
            "status": {}}


def replica_set(name: str, replicas: int, available: int = 0, created: str = "2024-01-01T00:00:00Z",
                annotations: dict | None = None, **status) -> dict:
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations or {},
                         "generation": 1},
            "spec": {"replicas": replicas},
            "status": {"replicas": status.pop("pods", replicas), "availableReplicas": available,
                       "readyReplicas": available, "observedGeneration": 1, **status}}


# --- fenceposts ----------------------------------------------------------------------------------------------------

def test_surge_rounds_up_and_unavailable_down():
    assert rollout.fenceposts(deployment(10)) == (3, 2)  # 2.5 -> 3 and 2
    assert rollout.fenceposts(deployment(1)) == (1, 0)


def test_zero_surge_and_zero_unavailable_allow_one_unavailable():
    assert rollout.fenceposts(deployment(10, surge=0, unavailable="0%")) == (0, 1)


def test_max_unavailable_never_exceeds_replicas_and_is_zero_for_recreate():
    assert rollout.max_unavailable(deployment(3, unavailable=5)) == 3
    assert rollout.max_unavailable(deployment(3, strategy="Recreate")) == 0
    assert rollout.max_surge(deployment(3, strategy="Recreate")) == 0


def test_a_bad_int_or_percent_is_named():
    try:
        rollout.fenceposts(deployment(10, surge="lots"))
    except podutil.IntOrPercentError as error:
        assert "'lots'" in str(error)
    else:
        raise AssertionError("expected IntOrPercentError")


# --- rolling steps -------------------------------------------------------------------------------------------------

def test_new_replica_set_grows_by_the_room_surge_leaves():
    d = deployment(10)  # surge 3
    old, new = replica_set("old", 10, 10), replica_set("new", 0)
    assert rollout.new_rs_replicas(d, [old, new], new) == 3
    old["spec"]["replicas"] = 8
    new["spec"]["replicas"] = 3
    assert rollout.new_rs_replicas(d, [old, new], new) == 5
    assert rollout.new_rs_replicas(deployment(10, strategy="Recreate"), [old, new], new) == 10


def test_old_replica_sets_shrink_unavailable_pods_first_then_within_max_unavailable():
    d = deployment(10)  # surge 3, unavailable 2: at least 8 available
    old = replica_set("old", 10, 10)
    new = replica_set("new", 3, 0)
    assert rollout.old_scale_down_plan(d, [old, new], [old], new) == [(old, 8)]
    broken = replica_set("broken", 4, 1, created="2023-01-01T00:00:00Z")
    plan = rollout.old_scale_down_plan(d, [broken, old, new], [broken, old], new)
    assert plan == [(broken, 0), (old, 8)]  # 3 unavailable pods go for free, then 3 of the 11 available, oldest first


def test_stale_available_count_of_a_shrunk_replica_set_is_not_trusted():
    d = deployment(10)
    old = replica_set("old", 8, 10)  # just scaled down; its status still counts the 2 pods being deleted
    new = replica_set("new", 5, 4)
    plan = rollout.old_scale_down_plan(d, [old, new], [old], new)
    assert plan == [(old, 4)]  # 8 + 4 available -> 4 may go (Kubernetes would take 6)


# --- proportional scaling ------------------------------------------------------------------------------------------

def test_scaling_during_a_rollout_is_proportional_as_in_the_kubernetes_documentation():
    d = deployment(15, surge=3, unavailable=2)
    annotations = {rollout.MAX_REPLICAS: "13", rollout.DESIRED_REPLICAS: "10"}
    old = replica_set("old", 8, 8, created="2024-01-01T00:00:00Z", annotations=annotations)
    new = replica_set("new", 5, 0, created="2024-01-02T00:00:00Z", annotations=annotations)
    assert rollout.is_scaling_event(d, [old, new])
    plan = dict((rs["metadata"]["name"], size) for rs, size in rollout.scale_plan(d, new, [old]))
    assert plan == {"old": 11, "new": 7}


def test_one_active_replica_set_takes_the_new_size():
    d = deployment(4)
    new = replica_set("new", 10, 10)
    assert rollout.scale_plan(d, new, [replica_set("old", 0)]) == [(new, 4)]


# --- revisions and cleanup -----------------------------------------------------------------------------------------

def test_reused_replica_set_gets_the_next_revision_and_remembers_the_old_one():
    d = deployment()
    d["metadata"]["annotations"] = {"team": "a", rollout.REVISION: "2",
                                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    annotations = rollout.new_rs_annotations(d, {rollout.REVISION: "1"}, 3)
    assert annotations == {"team": "a", rollout.REVISION: "3", rollout.REVISION_HISTORY: "1"}
    assert rollout.new_rs_annotations(d, annotations, 3) == annotations


def test_cleanup_keeps_revision_history_limit_and_busy_replica_sets():
    d = deployment()  # revisionHistoryLimit 2
    old = [replica_set(f"r{n}", 0, annotations={rollout.REVISION: str(n)}) for n in (4, 1, 3, 2)]
    busy = replica_set("r0", 1, 1, annotations={rollout.REVISION: "0"})
    assert [rs["metadata"]["name"] for rs in rollout.cleanup_candidates(d, old)] == ["r1", "r2"]
    assert [rs["metadata"]["name"] for rs in rollout.cleanup_candidates(d, [busy, *old])] == ["r1", "r2"]


# --- status and conditions -----------------------------------------------------------------------------------------

def test_status_counts_and_available_condition():
    d = deployment(10)
    old, new = replica_set("old", 7, 7), replica_set("new", 5, 3, pods=5)
    status = rollout.calculate_status(d, [old, new], new, NOW)
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                   "unavailableReplicas", "observedGeneration")} == \
        {"replicas": 12, "updatedReplicas": 5, "readyReplicas": 10, "availableReplicas": 10,
         "unavailableReplicas": 2, "observedGeneration": 1}
    available = podutil.condition({"status": status}, "Available")
    assert available["status"] == "True" and available["reason"] == "MinimumReplicasAvailable"


def test_progressing_reasons_follow_the_rollout():
    d = deployment(2)
    new = replica_set("web-abc", 2, 1)
    status = rollout.rollout_status(d, rollout.calculate_status(d, [new], new, NOW), new, NOW)
    progressing = podutil.condition({"status": status}, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "ReplicaSetUpdated")
    assert progressing["message"] == 'ReplicaSet "web-abc" is progressing.'
    d["status"] = status
    done = replica_set("web-abc", 2, 2)
    status = rollout.rollout_status(d, rollout.calculate_status(d, [done], done, NOW + 5), done, NOW + 5)
    progressing = podutil.condition({"status": status}, "Progressing")
    assert progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"] == 'ReplicaSet "web-abc" has successfully progressed.'


def test_no_progress_for_the_deadline_is_progress_deadline_exceeded():
    d = deployment(2, progressDeadlineSeconds=30)
    new = replica_set("web-abc", 2, 1)
    d["status"] = rollout.rollout_status(d, rollout.calculate_status(d, [new], new, NOW), new, NOW)
    assert rollout.seconds_left(d, d["status"], NOW + 10) == 20
    later = rollout.rollout_status(d, rollout.calculate_status(d, [new], new, NOW + 31), new, NOW + 31)
    progressing = podutil.condition({"status": later}, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert rollout.seconds_left(d, later, NOW + 40) is None


def test_pause_and_resume_conditions():
    d = deployment(paused=True)
    paused = rollout.paused_condition(d, NOW)
    assert (paused["status"], paused["reason"]) == ("Unknown", "DeploymentPaused")
    d["status"]["conditions"] = [paused]
    assert rollout.paused_condition(d, NOW) is None
    d["spec"]["paused"] = False
    assert rollout.paused_condition(d, NOW)["reason"] == "DeploymentResumed"


# --- a whole rolling update, with everything lagging ---------------------------------------------------------------

class Model:
    """ReplicaSets as the Deployment controller sees them (spec, and a status written only when the ReplicaSet
    controller syncs) and the pods as they are (how many exist and how many are available)."""

    def __init__(self, d: dict):
        replicas = rollout.replicas(d)
        self.d = d
        self.old = replica_set("old", replicas, replicas, created="2024-01-01T00:00:00Z")
        self.new = replica_set("new", 0, 0, created="2024-01-02T00:00:00Z")
        self.pods = {"old": [replicas, replicas], "new": [0, 0]}  # [existing, available]

    def sets(self):
        return [self.old, self.new]

    def controller_step(self) -> None:
        d, old, new = self.d, self.old, self.new
        desired = rollout.replicas(d)
        target = desired if rollout.replicas(new) > desired else rollout.new_rs_replicas(d, [old, new], new)
        if target != rollout.replicas(new):
            new["spec"]["replicas"] = target
            return
        for rs, size in rollout.old_scale_down_plan(d, [old, new], [old], new):
            rs["spec"]["replicas"] = size

    def replica_set_sync(self, name: str) -> None:
        rs = self.old if name == "old" else self.new
        existing, available = self.pods[name]
        wanted = rs["spec"]["replicas"]
        if existing > wanted:  # unavailable pods are deleted first
            available = min(available, wanted)
        self.pods[name] = [wanted, available]
        rs["status"].update(replicas=wanted, availableReplicas=available)

    def pods_ready(self, name: str, count: int) -> None:
        existing, available = self.pods[name]
        self.pods[name] = [existing, min(existing, available + count)]

    def available(self) -> int:
        return sum(available for _, available in self.pods.values())


int_or_percent = st.one_of(st.integers(0, 12), st.integers(0, 100).map(lambda p: f"{p}%"))
actions = st.lists(st.one_of(st.just(("controller",)), st.tuples(st.just("sync"), st.sampled_from(["old", "new"])),
                             st.tuples(st.just("ready"), st.sampled_from(["old", "new"]), st.integers(1, 5))),
                   max_size=80)


@settings(max_examples=300, deadline=None)
@example(replicas=10, surge=3, unavailable=2,  # the old ReplicaSet's status lags behind its scale down
         steps=[("controller",), ("controller",), ("sync", "new"), ("ready", "new", 3), ("sync", "new"),
                ("controller",), ("controller",), ("sync", "old")])
@given(replicas=st.integers(1, 30), surge=int_or_percent, unavailable=int_or_percent, steps=actions)
def test_rolling_update_stays_within_max_surge_and_max_unavailable(replicas, surge, unavailable, steps):
    d = deployment(replicas, surge, unavailable)
    max_surge, max_unavailable = rollout.max_surge(d), rollout.max_unavailable(d)
    model = Model(d)

    def check():
        assert rollout.total_replicas(model.sets()) <= replicas + max_surge
        assert model.available() >= replicas - max_unavailable

    finish = [("controller",), ("sync", "old"), ("sync", "new"), ("ready", "new", replicas)] * (3 * replicas + 6)
    for step in [*steps, *finish]:
        if step[0] == "controller":
            model.controller_step()
        elif step[0] == "sync":
            model.replica_set_sync(step[1])
        else:
            model.pods_ready(step[1], step[2])
        check()
    assert model.new["spec"]["replicas"] == replicas and model.old["spec"]["replicas"] == 0  # it finishes
