"""A pod's `status` as upstream's kubelet reports it (generateAPIPodStatus, convertToAPIContainerStatuses, getPhase,
the status manager's merge and the probe manager's ready/started), from what the runtime shows (PodObservation),
what the kubelet knows beyond it (ContainerRuntimeState per container name) and the previous status.

Contract: `compute` is pure; the agent calls it after each sync and PATCHes status when the result differs from what
the API holds. Times are unix seconds; `now` stamps new condition transitions and the first startTime.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from kpy_components.api.meta import format_rfc3339
from kpy_components.api.qos import qos_class as _computed_qos

from .model import ContainerObservation, ContainerRuntimeState, PodObservation

RUNTIME = "containerd"  # containerID scheme
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
MAX_MESSAGE_BYTES = 4096  # the caller reads at most this much of a termination message file, as upstream
_TERMINAL = ("Succeeded", "Failed")
FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES = 80, 2048  # FallbackToLogsOnError: the log tail the caller passes


def qos_class(pod: dict) -> str:
    """The pod's QoS class: the one the API server stored in status.qosClass, else computed (GetPodQOS)."""
    return (pod.get("status") or {}).get("qosClass") or _computed_qos(pod.get("spec") or {})


def _time(seconds: float) -> str | None:
    return format_rfc3339(datetime.fromtimestamp(seconds, timezone.utc)) if seconds else None


def is_restartable_init(container: dict) -> bool:
    return container.get("restartPolicy") == "Always"


def wants_log_tail(container: dict, observed: ContainerObservation, termination_file_text: str) -> bool:
    """Whether the caller must pass the log tail as the termination message (FallbackToLogsOnError, the container
    failed, it did run, and its termination message file is empty)."""
    return (container.get("terminationMessagePolicy") == "FallbackToLogsOnError" and observed.state == "exited"
            and observed.exit_code != 0 and observed.reason != "ContainerCannotRun" and not termination_file_text)


def _terminated(observed: ContainerObservation, message_extra: str) -> dict:
    reason = observed.reason or ("Completed" if observed.exit_code == 0 else "Error")
    message = observed.message
    if message_extra:
        message = f"{message}: {message_extra}" if message else message_extra
    state = {"exitCode": observed.exit_code, "reason": reason}
    if message:
        state["message"] = message
    state.update({"startedAt": _time(observed.started_at), "finishedAt": _time(observed.finished_at),
                  "containerID": f"{RUNTIME}://{observed.id}"})
    return state


def _volume_mounts(container: dict) -> list[dict]:
    mounts = []
    for mount in container.get("volumeMounts") or []:
        entry = {"name": mount.get("name"), "mountPath": mount.get("mountPath")}
        if mount.get("readOnly"):
            entry.update(readOnly=True, recursiveReadOnly="Disabled")
        mounts.append(entry)
    return mounts


def _from_runtime(container: dict, observed: ContainerObservation, old: dict | None, messages: Mapping[str, str]) \
        -> dict:
    """convertContainerStatus: one runtime container as a ContainerStatus (state only; ready/started later)."""
    status = {"name": container["name"], "state": {}, "lastState": {}, "ready": False,
              "restartCount": observed.attempt, "image": observed.image or container.get("image", ""),
              "imageID": observed.image_ref, "containerID": f"{RUNTIME}://{observed.id}"}
    if observed.state == "running":
        status["state"] = {"running": {"startedAt": _time(observed.started_at)}}
    elif observed.state == "exited":
        status["state"] = {"terminated": _terminated(observed, messages.get(observed.id, ""))}
    elif observed.state == "unknown" and old and "running" in (old.get("state") or {}):
        status["state"] = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                          "message": "The container could not be located when the pod was "
                                                     "terminated"}}
        status["restartCount"] = (old.get("restartCount") or 0) + 1
    else:
        status["state"] = {"waiting": {}}
    if _volume_mounts(container):
        status["volumeMounts"] = _volume_mounts(container)
    return status


def should_restart(container: dict, pod: dict, observed: ContainerObservation | None) -> bool:
    """ShouldContainerBeRestarted: whether the next sync starts this container (again)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if observed is None or observed.state in ("unknown", "created"):
        return True
    if observed.state == "running":
        return False
    policy = container.get("restartPolicy") or (pod.get("spec") or {}).get("restartPolicy", "Always")
    if policy == "Never":
        return False
    return not (policy == "OnFailure" and observed.exit_code == 0)


def _container_statuses(pod: dict, containers: list[dict], observation: PodObservation,
                        states: Mapping[str, ContainerRuntimeState], old_list: list[dict],
                        messages: Mapping[str, str], init: bool) -> list[dict]:
    spec = pod.get("spec") or {}
    old = {s.get("name"): s for s in old_list or []}
    default = {"waiting": {"reason": "PodInitializing" if spec.get("initContainers") else "ContainerCreating"}}
    result = []
    for container in containers:
        name = container["name"]
        previous = old.get(name)
        instances = sorted((c for c in observation.containers if c.name == name),
                           key=lambda c: (c.created_at, c.attempt), reverse=True)
        if instances:
            status = _from_runtime(container, instances[0], previous, messages)
            if len(instances) > 1:  # only the newest two count; an older one removed takes lastState with it
                status["lastState"] = _from_runtime(container, instances[1], None, messages)["state"]
        elif previous and "terminated" in (previous.get("state") or {}):
            status = dict(previous)
        else:
            status = {"name": name, "state": dict(default), "lastState": (previous or {}).get("lastState") or {},
                      "ready": False, "restartCount": (previous or {}).get("restartCount", 0),
                      "image": container.get("image", ""), "imageID": ""}
        latest = instances[0] if instances else None
        waiting = (states.get(name) or ContainerRuntimeState()).waiting
        skip = init and latest is not None and latest.state == "exited" and latest.exit_code == 0
        if waiting is not None and not skip and should_restart(container, pod, latest):
            if "terminated" in status["state"]:
                status["lastState"] = status["state"]
            status["state"] = {"waiting": {"reason": waiting.reason, **({"message": waiting.message}
                                                                        if waiting.message else {})}}
        _set_probe_results(status, container, states.get(name), init)
        result.append(status)
    return result if init else sorted(result, key=lambda s: s["name"])


def _set_probe_results(status: dict, container: dict, state: ContainerRuntimeState | None, init: bool) -> None:
    """The probe manager's UpdatePodStatus: started/ready from the probe results that refer to this container."""
    state = state or ContainerRuntimeState()
    current = status.get("containerID", "").partition("://")[2]
    fresh = not state.container_id or state.container_id == current  # results of an older instance do not count
    running = "running" in status["state"]
    if container.get("startupProbe"):
        started = running and fresh and bool(state.started)
    else:
        started = running
    status["started"] = started
    if init and not is_restartable_init(container):
        terminated = status["state"].get("terminated")
        status["ready"] = bool(terminated and terminated.get("exitCode") == 0)
        return
    if not started:
        status["ready"] = False
        return
    status["ready"] = (fresh and state.ready) if container.get("readinessProbe") else True


def phase(pod: dict, init_statuses: list[dict], statuses: list[dict], terminal: bool = False) -> str:
    """getPhase over the container statuses just computed."""
    spec = pod.get("spec") or {}
    by_name = {s["name"]: s for s in init_statuses + statuses}
    policy = spec.get("restartPolicy", "Always")
    pending_init = failed_init = 0
    unknown = running = waiting = stopped = succeeded = 0
    for container in spec.get("initContainers") or []:
        status = by_name.get(container["name"])
        state = (status or {}).get("state") or {}
        last = ((status or {}).get("lastState") or {}).get("terminated")
        if is_restartable_init(container):
            if status is None:
                unknown += 1
            elif "running" in state:
                pending_init += 0 if status.get("started") else 1
                running += 1
            elif "waiting" in state and not last:
                pending_init += 1
                waiting += 1
            elif "terminated" not in state and "waiting" not in state:
                pending_init += 1
                unknown += 1
            continue
        if status is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            failed_init += state["terminated"].get("exitCode", 0) != 0
        elif "waiting" in state and last:
            failed_init += last.get("exitCode", 0) != 0
        else:
            pending_init += 1
    for container in spec.get("containers") or []:
        status = by_name.get(container["name"])
        state = (status or {}).get("state") or {}
        if status is None:
            unknown += 1
        elif "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode", 0) == 0
        elif "waiting" in state:
            if ((status.get("lastState") or {}).get("terminated")):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init and policy == "Never":
        return "Failed"
    regular_started = any({"running", "terminated"} & set(by_name[c["name"]].get("state") or {})
                          for c in spec.get("containers") or [] if c["name"] in by_name)
    if (pending_init and not regular_started) or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"  # Go's %s of a []string


def _judged(kind: str, reason: str, unknown: list[str], adjective: str, failing: list[str]) -> dict:
    """True, or False naming the containers of unknown status and the failing ones (upstream's message)."""
    messages = ([f"containers with unknown status: {_names(unknown)}"] if unknown else []) + \
               ([f"containers with {adjective} status: {_names(failing)}"] if failing else [])
    if messages:
        return {"type": kind, "status": "False", "reason": reason, "message": ", ".join(messages)}
    return {"type": kind, "status": "True"}


def _initialized(pod: dict, statuses: list[dict], pod_phase: str) -> dict:
    spec = pod.get("spec") or {}
    by_name = {s["name"]: s for s in statuses}
    unknown, incomplete = [], []
    for container in spec.get("initContainers") or []:
        status = by_name.get(container["name"])
        if status is None:
            unknown.append(container["name"])
        elif is_restartable_init(container):
            if not status.get("started"):
                incomplete.append(container["name"])
        elif (status["state"].get("terminated") or {}).get("exitCode", -1) != 0 or \
                "terminated" not in status["state"]:
            incomplete.append(container["name"])
    if pod_phase == "Succeeded" and not unknown:
        return {"type": "Initialized", "status": "True", "reason": "PodCompleted"}
    if any({"running", "terminated"} & set(by_name[c["name"]]["state"])
           for c in spec.get("containers") or [] if c["name"] in by_name):
        return {"type": "Initialized", "status": "True"}
    return _judged("Initialized", "ContainersNotInitialized", unknown, "incomplete", incomplete)


def _containers_ready(pod: dict, statuses: list[dict], pod_phase: str) -> dict:
    spec = pod.get("spec") or {}
    by_name = {s["name"]: s for s in statuses}
    unknown, unready = [], []
    counted = [c for c in spec.get("initContainers") or [] if is_restartable_init(c)] + (spec.get("containers") or [])
    for container in counted:
        status = by_name.get(container["name"])
        if status is None:
            unknown.append(container["name"])
        elif not status.get("ready"):
            unready.append(container["name"])
    if (pod_phase == "Succeeded" and not unknown) or pod_phase == "Failed":
        return {"type": "ContainersReady", "status": "False",
                "reason": "PodCompleted" if pod_phase == "Succeeded" else "PodFailed"}
    return _judged("ContainersReady", "ContainersNotReady", unknown, "unready", unready)


def _ready(pod: dict, containers_ready: dict, conditions: list[dict]) -> dict:
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": "Ready"}
    by_type = {c.get("type"): c for c in conditions}
    messages = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        condition = by_type.get(kind)
        if condition is None:
            messages.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif condition.get("status") != "True":
            messages.append(f'the status of pod readiness gate "{kind}" is not "True", but {condition.get("status")}')
    if messages:
        return {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady", "message": ", ".join(messages)}
    return {"type": "Ready", "status": "True"}


def _ready_to_start(pod: dict, observation: PodObservation) -> dict:
    sandbox = observation.sandbox
    host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
    ok = sandbox is not None and sandbox.ready and (host_network or bool(sandbox.ip))
    return {"type": "PodReadyToStartContainers", "status": "True" if ok else "False"}


def _stamp(condition: dict, old_conditions: list[dict], now: float) -> dict:
    """lastProbeTime null and lastTransitionTime kept while the condition's status stays the same."""
    old = next((c for c in old_conditions if c.get("type") == condition["type"]), None)
    kept = old.get("lastTransitionTime") if old and old.get("status") == condition["status"] else None
    stamped = {"type": condition["type"], "status": condition["status"], "lastProbeTime": None,
               "lastTransitionTime": kept or _time(now)}
    for key in ("reason", "message"):
        if condition.get(key):
            stamped[key] = condition[key]
    return stamped


def _ips(values: Sequence[str]) -> list[dict]:
    return [{"ip": ip} for ip in values]


def compute(pod: dict, observation: PodObservation, states: Mapping[str, ContainerRuntimeState], *,
            host_ips: Sequence[str], previous: dict | None = None, now: float | None = None,
            termination_messages: Mapping[str, str] | None = None, terminal: bool = False) -> dict:
    """The status to report. `states`: per container name (probe results, why it waits); `host_ips`: the node's
    addresses, primary first; `previous`: the status last reported (defaults to the pod's); `termination_messages`:
    per container ID, the termination message file's text (or, when `wants_log_tail`, the log tail); `terminal`:
    the kubelet has decided the pod will run nothing more (deleted, or done for good)."""
    now = time.time() if now is None else now
    spec, current = pod.get("spec") or {}, pod.get("status") or {}
    old = current if previous is None else previous
    messages = termination_messages or {}
    init_statuses = _container_statuses(pod, spec.get("initContainers") or [], observation, states,
                                        old.get("initContainerStatuses"), messages, init=True)
    statuses = _container_statuses(pod, spec.get("containers") or [], observation, states,
                                   old.get("containerStatuses"), messages, init=False)
    pod_phase = phase(pod, init_statuses, statuses, terminal)
    if old.get("phase") in _TERMINAL and pod_phase not in _TERMINAL:
        pod_phase = old["phase"]
    if current.get("phase") in _TERMINAL:  # the API holds a terminal phase: no way out of it
        pod_phase = current["phase"]

    status: dict = {"phase": pod_phase}
    if pod_phase == old.get("phase"):
        for key in ("reason", "message"):
            if old.get(key) or current.get(key):
                status[key] = old.get(key) or current.get(key)

    others = [c for c in old.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
    all_statuses = init_statuses + statuses
    containers_ready = _containers_ready(pod, all_statuses, pod_phase)
    owned = [_ready_to_start(pod, observation), _initialized(pod, all_statuses, pod_phase),
             _ready(pod, containers_ready, others), containers_ready, {"type": "PodScheduled", "status": "True"}]
    old_conditions = (old.get("conditions") or []) + (current.get("conditions") or [])
    status["conditions"] = others + [_stamp(c, old_conditions, now) for c in owned]

    host_ips = list(host_ips)[:2]
    if host_ips:
        status["hostIP"], status["hostIPs"] = host_ips[0], _ips(host_ips)
    sandbox = observation.sandbox
    pod_ips = list(sandbox.ips or ((sandbox.ip,) if sandbox.ip else ())) if sandbox and sandbox.ready else []
    if spec.get("hostNetwork"):
        pod_ips = host_ips
    if pod_ips:
        status["podIP"], status["podIPs"] = pod_ips[0], _ips(pod_ips)
    elif old.get("podIP"):  # a stopped sandbox has no address; the pod keeps the one it had
        status["podIP"], status["podIPs"] = old["podIP"], old.get("podIPs") or _ips([old["podIP"]])
    status["startTime"] = old.get("startTime") or current.get("startTime") or _time(now)
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    status["qosClass"] = qos_class(pod)
    return status
