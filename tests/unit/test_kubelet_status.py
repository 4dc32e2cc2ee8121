"""Pod status as upstream's kubelet reports it."""
from kpy_components.kubelet.model import (ContainerObservation, ContainerRuntimeState, PodObservation,
                                          SandboxObservation, Waiting)
from kpy_components.kubelet.status import compute, phase, qos_class, wants_log_tail

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SANDBOX = SandboxObservation(id="sb", attempt=0, ready=True, ip="10.200.1.7", ips=("10.200.1.7",))


def iso(seconds: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pod(containers=("app",), init=(), restart="Always", **spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"restartPolicy": restart, "containers": [{"name": n, "image": "busybox"} for n in containers],
                     "initContainers": [{"name": n, "image": "busybox"} for n in init], **spec},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                       "lastTransitionTime": iso(T0 - 5)}]}}


def running(name, attempt=0, cid=None, started=T0) -> ContainerObservation:
    return ContainerObservation(id=cid or f"{name}-{attempt}", name=name, attempt=attempt, state="running",
                                image="docker.io/library/busybox:latest", image_ref="docker.io/library/busybox@sha256:ab",
                                created_at=started - 1, started_at=started)


def exited(name, code, attempt=0, reason="", started=T0, finished=T0 + 3, message="") -> ContainerObservation:
    return ContainerObservation(id=f"{name}-{attempt}", name=name, attempt=attempt, state="exited",
                                image="docker.io/library/busybox:latest", image_ref="sha256:ab",
                                created_at=started - 1, started_at=started, finished_at=finished, exit_code=code,
                                reason=reason, message=message)


def status_of(pod, *containers, states=None, sandbox=SANDBOX, **kwargs):
    observation = PodObservation(uid="u1", sandbox=sandbox, containers=tuple(containers))
    return compute(pod, observation, states or {}, host_ips=["10.213.0.21"], now=T0 + 10, **kwargs)


def conditions(status) -> dict:
    return {c["type"]: c for c in status["conditions"]}


def test_a_running_pod():
    pod = make_pod()
    status = status_of(pod, running("app"))
    assert status["phase"] == "Running"
    assert [c["type"] for c in status["conditions"]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                         "ContainersReady", "PodScheduled"]
    assert all(c["status"] == "True" and c["lastProbeTime"] is None for c in status["conditions"])
    assert conditions(status)["PodScheduled"]["lastTransitionTime"] == iso(T0 - 5)  # the scheduler's, kept
    assert conditions(status)["Ready"]["lastTransitionTime"] == iso(T0 + 10)
    app = status["containerStatuses"][0]
    assert app == {"name": "app", "state": {"running": {"startedAt": iso(T0)}}, "lastState": {}, "ready": True,
                   "started": True, "restartCount": 0, "image": "docker.io/library/busybox:latest",
                   "imageID": "docker.io/library/busybox@sha256:ab", "containerID": "containerd://app-0"}
    assert (status["podIP"], status["podIPs"]) == ("10.200.1.7", [{"ip": "10.200.1.7"}])
    assert (status["hostIP"], status["hostIPs"]) == ("10.213.0.21", [{"ip": "10.213.0.21"}])
    assert status["startTime"] == iso(T0 + 10)
    assert status["qosClass"] == "BestEffort"


def test_transition_times_kept_while_unchanged_and_start_time_kept():
    pod = make_pod()
    first = status_of(pod, running("app"))
    observation = PodObservation(uid="u1", sandbox=SANDBOX, containers=(running("app"),))
    later = compute(pod, observation, {}, host_ips=["10.213.0.21"], previous=first, now=T0 + 100)
    assert later == first  # nothing changed: nothing to patch
    readiness = make_pod()
    readiness["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["true"]}}
    unready = compute(readiness, observation, {}, host_ips=["10.213.0.21"], previous=first, now=T0 + 100)
    assert conditions(unready)["Ready"] == {
        "type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": iso(T0 + 100),
        "reason": "ContainersNotReady", "message": "containers with unready status: [app]"}
    assert conditions(unready)["Initialized"]["lastTransitionTime"] == iso(T0 + 10)
    assert unready["startTime"] == iso(T0 + 10)


def test_before_the_sandbox_exists():
    pod = make_pod(containers=("b", "a"))
    status = status_of(pod, sandbox=None)
    assert status["phase"] == "Pending"
    assert conditions(status)["PodReadyToStartContainers"]["status"] == "False"
    assert [s["name"] for s in status["containerStatuses"]] == ["a", "b"]  # sorted by name, as upstream
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert status["containerStatuses"][0]["started"] is False
    assert "podIP" not in status
    # the message lists containers in spec order (upstream walks pod.spec.containers)
    assert conditions(status)["ContainersReady"]["message"] == "containers with unready status: [b a]"


def test_init_containers_in_order_and_the_phases_they_give():
    pod = make_pod(init=("setup", "migrate"))
    status = status_of(pod, exited("setup", 0))
    assert status["phase"] == "Pending"
    assert [s["name"] for s in status["initContainerStatuses"]] == ["setup", "migrate"]  # spec order
    setup, migrate = status["initContainerStatuses"]
    assert setup["state"]["terminated"]["reason"] == "Completed" and setup["ready"] is True
    assert migrate["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert conditions(status)["Initialized"] == {
        "type": "Initialized", "status": "False", "lastProbeTime": None, "lastTransitionTime": iso(T0 + 10),
        "reason": "ContainersNotInitialized", "message": "containers with incomplete status: [migrate]"}
    done = status_of(pod, exited("setup", 0), exited("migrate", 0), running("app"))
    assert done["phase"] == "Running" and conditions(done)["Initialized"]["status"] == "True"
    # a failed init container fails a Never pod, and keeps an Always pod Pending (it will be retried)
    assert status_of(make_pod(init=("setup",), restart="Never"), exited("setup", 1))["phase"] == "Failed"
    assert status_of(make_pod(init=("setup",)), exited("setup", 1))["phase"] == "Pending"


def test_phase_by_restart_policy():
    assert status_of(make_pod(restart="Never"), exited("app", 0))["phase"] == "Succeeded"
    assert status_of(make_pod(restart="Never"), exited("app", 2))["phase"] == "Failed"
    assert status_of(make_pod(restart="OnFailure"), exited("app", 0))["phase"] == "Succeeded"
    assert status_of(make_pod(restart="OnFailure"), exited("app", 2))["phase"] == "Running"  # restarting
    assert status_of(make_pod(restart="Always"), exited("app", 0))["phase"] == "Running"
    # a pod the kubelet decided is over (deleted) is terminal whatever its policy
    assert status_of(make_pod(restart="Always"), exited("app", 0), terminal=True)["phase"] == "Succeeded"
    assert status_of(make_pod(restart="Always"), exited("app", 137), terminal=True)["phase"] == "Failed"
    two = make_pod(containers=("a", "b"), restart="Never")
    assert status_of(two, exited("a", 0), running("b"))["phase"] == "Running"
    assert status_of(two, exited("a", 0), exited("b", 1))["phase"] == "Failed"


def test_succeeded_pod_conditions():
    status = status_of(make_pod(restart="Never"), exited("app", 0))
    got = conditions(status)
    assert (got["Ready"]["status"], got["Ready"]["reason"]) == ("False", "PodCompleted")
    assert (got["ContainersReady"]["status"], got["ContainersReady"]["reason"]) == ("False", "PodCompleted")
    assert (got["Initialized"]["status"], got["Initialized"]["reason"]) == ("True", "PodCompleted")
    failed = conditions(status_of(make_pod(restart="Never"), exited("app", 1)))
    assert failed["Ready"]["reason"] == "PodFailed"


def test_a_terminal_phase_is_never_left():
    pod = make_pod(restart="Never")
    pod["status"]["phase"] = "Succeeded"
    assert status_of(pod, sandbox=None)["phase"] == "Succeeded"
    previous = {"phase": "Failed", "reason": "Evicted", "message": "low on memory"}
    status = status_of(make_pod(), running("app"), previous=previous)
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "Evicted", "low on memory")


def test_crash_loop_keeps_the_last_termination_and_restart_count():
    pod = make_pod()
    first, second = exited("app", 1, attempt=0, finished=T0 + 2), exited("app", 1, attempt=1, started=T0 + 5,
                                                                         finished=T0 + 6)
    states = {"app": ContainerRuntimeState(waiting=Waiting("CrashLoopBackOff", "back-off 10s restarting failed "
                                                                               "container=app pod=p_default(u1)"))}
    status = status_of(pod, first, second, states=states)
    app = status["containerStatuses"][0]
    assert app["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed "
                                                                                 "container=app pod=p_default(u1)"}}
    assert app["lastState"]["terminated"] == {"exitCode": 1, "reason": "Error", "startedAt": iso(T0 + 5),
                                              "finishedAt": iso(T0 + 6), "containerID": "containerd://app-1"}
    assert app["restartCount"] == 1 and app["ready"] is False and app["started"] is False
    assert status["phase"] == "Running"  # waiting after a termination counts as stopped; Always → Running
    # a Never pod is not restarted, so no waiting reason is shown over its termination
    never = status_of(make_pod(restart="Never"), first, states=states)
    assert "terminated" in never["containerStatuses"][0]["state"]


def test_waiting_reasons_for_a_container_never_started():
    states = {"app": ContainerRuntimeState(waiting=Waiting("ImagePullBackOff", 'Back-off pulling image "x"'))}
    status = status_of(make_pod(), states=states)
    assert status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}}
    assert status["phase"] == "Pending"
    config = {"app": ContainerRuntimeState(waiting=Waiting("CreateContainerConfigError",
                                                           'configmap "cfg" not found'))}
    assert status_of(make_pod(), states=config)["containerStatuses"][0]["state"]["waiting"]["message"] == \
        'configmap "cfg" not found'


def test_termination_reasons_and_messages():
    pod = make_pod(restart="Never")
    oom = status_of(pod, exited("app", 137, reason="OOMKilled"))["containerStatuses"][0]["state"]["terminated"]
    assert (oom["reason"], oom["exitCode"]) == ("OOMKilled", 137)
    with_file = status_of(pod, exited("app", 1), termination_messages={"app-0": "disk full"})
    assert with_file["containerStatuses"][0]["state"]["terminated"]["message"] == "disk full"
    runtime_and_file = status_of(pod, exited("app", 128, reason="ContainerCannotRun", message="exec failed"),
                                 termination_messages={"app-0": "tail"})
    terminated = runtime_and_file["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["message"]) == ("ContainerCannotRun", "exec failed: tail")


def test_wants_log_tail_only_for_fallback_failures_without_a_message():
    spec = {"name": "app", "terminationMessagePolicy": "FallbackToLogsOnError"}
    assert wants_log_tail(spec, exited("app", 1), "")
    assert not wants_log_tail(spec, exited("app", 1), "from the file")
    assert not wants_log_tail(spec, exited("app", 0), "")
    assert not wants_log_tail(spec, exited("app", 1, reason="ContainerCannotRun"), "")
    assert not wants_log_tail({"name": "app"}, exited("app", 1), "")


def test_probe_results_give_ready_and_started_only_for_their_container():
    pod = make_pod()
    pod["spec"]["containers"][0].update(readinessProbe={"httpGet": {"port": 80}}, startupProbe={"exec": {}})
    not_started = status_of(pod, running("app"), states={"app": ContainerRuntimeState()})
    assert not_started["containerStatuses"][0]["started"] is False
    assert not_started["containerStatuses"][0]["ready"] is False
    ok = {"app": ContainerRuntimeState(ready=True, started=True, container_id="app-0")}
    assert status_of(pod, running("app"), states=ok)["containerStatuses"][0]["ready"] is True
    stale = {"app": ContainerRuntimeState(ready=True, started=True, container_id="app-old")}
    assert status_of(pod, running("app"), states=stale)["containerStatuses"][0]["ready"] is False


def test_readiness_gates():
    pod = make_pod(readinessGates=[{"conditionType": "example.com/lb"}])
    status = status_of(pod, running("app"))
    assert conditions(status)["Ready"]["message"] == \
        'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    assert conditions(status)["ContainersReady"]["status"] == "True"
    pod["status"]["conditions"].append({"type": "example.com/lb", "status": "False"})
    status = status_of(pod, running("app"))
    assert conditions(status)["Ready"]["reason"] == "ReadinessGatesNotReady"
    assert conditions(status)["Ready"]["message"] == \
        'the status of pod readiness gate "example.com/lb" is not "True", but False'
    assert conditions(status)["example.com/lb"]["status"] == "False"  # not the kubelet's: kept first, as is
    pod["status"]["conditions"][-1]["status"] = "True"
    assert conditions(status_of(pod, running("app")))["Ready"]["status"] == "True"


def test_sidecar_init_container_started_counts_as_initialized():
    pod = make_pod(init=("proxy",))
    pod["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    status = status_of(pod, running("proxy"), running("app"))
    assert status["phase"] == "Running"
    assert conditions(status)["Initialized"]["status"] == "True"
    assert status["initContainerStatuses"][0]["ready"] is True


def test_host_network_pods_use_the_node_addresses_and_ips_survive_a_stopped_sandbox():
    pod = make_pod(hostNetwork=True)
    status = status_of(pod, running("app"), sandbox=SandboxObservation(id="sb", attempt=0, ready=True))
    assert status["podIP"] == "10.213.0.21"
    assert conditions(status)["PodReadyToStartContainers"]["status"] == "True"
    stopped = SandboxObservation(id="sb", attempt=0, ready=False)
    previous = {"podIP": "10.200.1.7", "podIPs": [{"ip": "10.200.1.7"}]}
    kept = status_of(make_pod(restart="Never"), exited("app", 0), sandbox=stopped, previous=previous)
    assert kept["podIP"] == "10.200.1.7"


def test_unknown_state_after_running_is_terminated_status_unknown():
    first = status_of(make_pod(), running("app"))
    lost = ContainerObservation(id="app-0", name="app", attempt=0, state="unknown", image="", image_ref="")
    status = status_of(make_pod(), lost, previous=first)
    state = status["containerStatuses"][0]["state"]["terminated"]
    assert (state["reason"], state["exitCode"]) == ("ContainerStatusUnknown", 137)
    assert status["containerStatuses"][0]["restartCount"] == 1


def test_qos_class_prefers_the_stored_one():
    pod = make_pod()
    assert qos_class(pod) == "BestEffort"
    pod["status"] = {}
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class(pod) == "Guaranteed"
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    assert qos_class(pod) == "Burstable"


def test_phase_counts_an_unknown_regular_container_as_pending():
    pod = make_pod(containers=("a", "b"))
    a = {"name": "a", "state": {"running": {}}}
    assert phase(pod, [], [a]) == "Pending"
