"""meta.k8s.io/v1 Table output, cell for cell as Kubernetes' printers compute it
(pkg/printers/internalversion/printers.go). The server always computes every column, `-o wide` ones included; kubectl
hides priority-1 columns unless asked.

Kinds without printer columns get Kubernetes' default Table: Name and Created At (the RFC 3339 creation time), which
is what `kubectl get roles` shows on a real cluster.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from . import storage
from .errors import bad_request
from .meta import labels_of, name_of, parse_rfc3339
from .resources import PrinterColumn, ResourceInfo
from .selectors import format_label_selector, format_labels

_DEFAULT_COLUMNS = (
    PrinterColumn("Name", format="name", description="Name must be unique within a namespace."),
    PrinterColumn("Created At", type="date", description="CreationTimestamp is a timestamp representing the server "
                  "time when this object was created."),
)
INCLUDE_OBJECT = ("None", "Metadata", "Object")


# --- durations ---------------------------------------------------------------------------------------------------

def _units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration: ~2-3 significant figures ("5m30s", "3h12m", "2d4h")."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return _units(minutes, "m", whole % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return _units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _units(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _units(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def since(timestamp: str | None, now: datetime) -> str:
    """translateTimestampSince: the age of an RFC 3339 time, `<unknown>` when unset or unreadable."""
    if not timestamp:
        return "<unknown>"
    try:
        return human_duration((now - parse_rfc3339(timestamp)).total_seconds())
    except ValueError:
        return "<unknown>"


# --- helpers shared by the printers ------------------------------------------------------------------------------

def _get(obj: dict, *path, default=None):
    for part in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(part)
    return default if obj is None else obj


def _age(obj: dict, now: datetime) -> str:
    return since(_get(obj, "metadata", "creationTimestamp"), now)


def _containers(pod_spec: dict | None) -> tuple[str, str]:
    containers = (pod_spec or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _template_cells(obj: dict, selector: str | None = None) -> list:
    names, images = _containers(_get(obj, "spec", "template", "spec"))
    return [names, images] if selector is None else [names, images, selector]


def _condition_true(conditions, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions or [])


# --- per-kind printers: each returns every cell of its columns, wide ones included ---------------------------------

def _pod(pod: dict, now: datetime) -> list:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    conditions = status.get("conditions") or []
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    sidecars = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total, ready, restarts, sidecar_restarts = len(spec.get("containers") or []) + len(sidecars), 0, 0, 0
    last_restart = sidecar_last_restart = None

    def later(current, container):
        finished = _get(container, "lastState", "terminated", "finishedAt")
        return finished if finished and (current is None or finished > current) else current

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, container in enumerate(init_statuses):
        restarts += container.get("restartCount", 0)
        last_restart = later(last_restart, container)
        if container.get("name") in sidecars:
            sidecar_restarts += container.get("restartCount", 0)
            sidecar_last_restart = later(sidecar_last_restart, container)
        terminated, waiting = _get(container, "state", "terminated"), _get(container, "state", "waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if container.get("name") in sidecars and container.get("started"):
            ready += 1 if container.get("ready") else 0
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, sidecar_last_restart
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += container.get("restartCount", 0)
            last_restart = later(last_restart, container)
            waiting, terminated = _get(container, "state", "waiting"), _get(container, "state", "terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif container.get("ready") and _get(container, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"
    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({since(last_restart, now)} ago)"
    pod_ips = status.get("podIPs") or []
    ip = (pod_ips[0].get("ip") if pod_ips else status.get("podIP")) or "<none>"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        by_type = {}
        for condition in conditions:
            by_type.setdefault(condition.get("type"), condition)
        true = sum(1 for g in gates if _get(by_type, g.get("conditionType"), "status") == "True")
        gates_text = f"{true}/{len(gates)}"
    return [name_of(pod), f"{ready}/{total}", reason, restarts_text, _age(pod, now), ip,
            spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_text]


def _pod_conditions(pod: dict) -> list | None:
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


def _node(node: dict, now: datetime) -> list:
    conditions = _get(node, "status", "conditions", default=[])
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    status = ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if _get(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    roles = set()
    for key, value in labels_of(node).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = _get(node, "status", "nodeInfo", default={})
    addresses = _get(node, "status", "addresses", default=[])

    def address(kind: str) -> str:
        return next((a.get("address") for a in addresses if a.get("type") == kind), "<none>")

    return [name_of(node), ",".join(status), ",".join(sorted(roles)) or "<none>", _age(node, now),
            info.get("kubeletVersion", ""), address("InternalIP"), address("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _load_balancer(status: dict) -> str:
    found = {i.get("ip") or i.get("hostname") for i in _get(status, "loadBalancer", "ingress", default=[])}
    return ",".join(sorted(f for f in found if f))


def _service(svc: dict, now: datetime) -> list:
    spec = svc.get("spec") or {}
    kind = spec.get("type", "")
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    external = spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        external_text = ",".join(external) or "<none>"
    elif kind == "LoadBalancer":
        balancer = _load_balancer(svc.get("status") or {})
        external_text = ",".join(([balancer] if balancer else []) + external) or "<pending>"
    elif kind == "ExternalName":
        external_text = spec.get("externalName", "")
    else:
        external_text = "<unknown>"
    ports = ",".join(f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort")
                     else f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [name_of(svc), kind, cluster_ips[0] if cluster_ips else "<none>", external_text, ports or "<none>",
            _age(svc, now), format_labels(spec.get("selector"))]


def _more(items: list[str], total: int, limit: int = 3, empty: str = "<unset>") -> str:
    text = ",".join(items[:limit])
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or empty


def _endpoints(obj: dict, now: datetime) -> list:
    subsets = obj.get("subsets") or []
    listed, total = [], 0
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or [None]
        for port in ports:
            total += len(addresses)
            listed += [a if port is None else (f"[{a}]:{port.get('port')}" if ":" in a else f"{a}:{port.get('port')}")
                       for a in addresses]
    return [name_of(obj), _more(listed, total, empty="") if subsets else "<none>", _age(obj, now)]


def _endpoint_slice(obj: dict, now: datetime) -> list:
    ports = [str(p["port"]) if p.get("port") is not None else p.get("name") or "*" for p in obj.get("ports") or []]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [name_of(obj), obj.get("addressType", ""), _more(ports, len(ports)), _more(addresses, len(addresses)),
            _age(obj, now)]


def _replicas(obj: dict) -> int:
    value = _get(obj, "spec", "replicas")
    return 1 if value is None else value


def _deployment(obj: dict, now: datetime) -> list:
    status = obj.get("status") or {}
    selector = format_label_selector(_get(obj, "spec", "selector"))
    return [name_of(obj), f"{status.get('readyReplicas', 0)}/{_replicas(obj)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), _age(obj, now), *_template_cells(obj, selector)]


def _replica_counts(obj: dict, now: datetime, selector: str) -> list:
    status = obj.get("status") or {}
    return [name_of(obj), _replicas(obj), status.get("replicas", 0), status.get("readyReplicas", 0), _age(obj, now),
            *_template_cells(obj, selector)]


def _replica_set(obj: dict, now: datetime) -> list:
    return _replica_counts(obj, now, format_label_selector(_get(obj, "spec", "selector")))


def _replication_controller(obj: dict, now: datetime) -> list:  # its selector is a plain label map
    return _replica_counts(obj, now, format_labels(_get(obj, "spec", "selector")))


def _daemon_set(obj: dict, now: datetime) -> list:
    status = obj.get("status") or {}
    counts = [status.get(k, 0) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                          "updatedNumberScheduled", "numberAvailable")]
    return [name_of(obj), *counts, format_labels(_get(obj, "spec", "template", "spec", "nodeSelector")),
            _age(obj, now), *_template_cells(obj, format_label_selector(_get(obj, "spec", "selector")))]


def _stateful_set(obj: dict, now: datetime) -> list:
    ready = _get(obj, "status", "readyReplicas", default=0)
    return [name_of(obj), f"{ready}/{_replicas(obj)}", _age(obj, now), *_template_cells(obj)]


def _job(obj: dict, now: datetime) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    if status.get("startTime"):
        try:
            end = parse_rfc3339(status["completionTime"]) if status.get("completionTime") else now
            duration = human_duration((end - parse_rfc3339(status["startTime"])).total_seconds())
        except ValueError:
            duration = "<unknown>"
    conditions = status.get("conditions")
    if _condition_true(conditions, "Complete"):
        state = "Complete"
    elif _condition_true(conditions, "Failed"):
        state = "Failed"
    elif _get(obj, "metadata", "deletionTimestamp") is not None:
        state = "Terminating"
    elif _condition_true(conditions, "Suspended"):
        state = "Suspended"
    elif _condition_true(conditions, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    return [name_of(obj), state, completions, duration, _age(obj, now),
            *_template_cells(obj, format_label_selector(spec.get("selector")))]


def _bool_text(value) -> str:
    return "<unset>" if value is None else ("True" if value else "False")


def _cron_job(obj: dict, now: datetime) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    job_spec = _get(spec, "jobTemplate", "spec", default={})
    last = since(status["lastScheduleTime"], now) if status.get("lastScheduleTime") else "<none>"
    names, images = _containers(_get(job_spec, "template", "spec"))
    return [name_of(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>", _bool_text(spec.get("suspend")),
            len(status.get("active") or []), last, _age(obj, now), names, images,
            format_label_selector(job_spec.get("selector"))]


def _event_fields(event: dict) -> dict:
    """An events.k8s.io/v1 Event seen through core/v1 field names (Kubernetes prints both from one type)."""
    if "regarding" not in event and "note" not in event and "reportingController" not in event:
        return event
    return {**event, "involvedObject": event.get("regarding") or {}, "message": event.get("note", ""),
            "firstTimestamp": event.get("deprecatedFirstTimestamp"),
            "lastTimestamp": event.get("deprecatedLastTimestamp"), "count": event.get("deprecatedCount", 0),
            "source": event.get("deprecatedSource") or {},
            "reportingComponent": event.get("reportingController", "")}


def _event(event: dict, now: datetime) -> list:
    event = _event_fields(event)
    first = since(event.get("firstTimestamp"), now) if event.get("firstTimestamp") else since(
        event.get("eventTime"), now)
    last = since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1
    series = event.get("series")
    if series:
        last, count = since(series.get("lastObservedTime"), now), series.get("count", 0)
    involved = event.get("involvedObject") or {}
    target = involved.get("kind", "").lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent", "")
    host = source.get("host") or event.get("reportingInstance", "")
    return [last, event.get("type", ""), event.get("reason", ""), target, involved.get("fieldPath", ""),
            f"{component}, {host}" if host else component, (event.get("message") or "").strip(), first, count,
            name_of(event)]


def _resource_quota(obj: dict, now: datetime) -> list:
    hard, used = _get(obj, "status", "hard", default={}), _get(obj, "status", "used", default={})
    requests, limits = [], []
    for resource in sorted(hard):
        target = limits if resource.split(".")[0] == "limits" and "." in resource else requests
        target.append(f"{resource}: {used.get(resource, '0')}/{hard[resource]}")
    return [name_of(obj), _age(obj, now), ", ".join(requests), ", ".join(limits)]


def _pdb(obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    return [name_of(obj), str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
            str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
            _get(obj, "status", "disruptionsAllowed", default=0), _age(obj, now)]


def _controller_revision(obj: dict, now: datetime) -> list:
    """CONTROLLER is the controller ownerReference as `<kind>.<group>/<name>` in lower case (`daemonset.apps/web`)."""
    controller = next((r for r in _get(obj, "metadata", "ownerReferences", default=()) if r.get("controller")), None)
    shown = "<none>"
    if controller is not None:
        group = str(controller.get("apiVersion", "")).rpartition("/")[0]
        kind = f"{controller.get('kind', '')}.{group}" if group else controller.get("kind", "")
        shown = f"{kind.lower()}/{controller.get('name', '')}"
    return [name_of(obj), shown, obj.get("revision", 0), _age(obj, now)]


def _priority_class(obj: dict, now: datetime) -> list:
    return [name_of(obj), obj.get("value", 0), bool(obj.get("globalDefault")), _age(obj, now),
            obj.get("preemptionPolicy") or ""]


def _storage_text(values: dict | None) -> str:
    quantity = storage.storage_quantity(values)
    return str(quantity) if quantity is not None else "0"


def _persistent_volume(obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    claim = spec.get("claimRef")
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else _get(obj, "status", "phase", default="")
    return [name_of(obj), _storage_text(spec.get("capacity")), storage.access_modes_text(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy") or "", phase,
            f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "", storage.volume_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>", _get(obj, "status", "reason", default=""),
            _age(obj, now), spec.get("volumeMode") or "<unset>"]


def _persistent_volume_claim(obj: dict, now: datetime) -> list:
    """CAPACITY and ACCESS MODES come from status, and only once the claim names its volume."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else status.get("phase", "")
    bound = bool(spec.get("volumeName"))
    return [name_of(obj), phase, spec.get("volumeName") or "", _storage_text(status.get("capacity")) if bound else "",
            storage.access_modes_text(status.get("accessModes")) if bound else "", storage.claim_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>", _age(obj, now), spec.get("volumeMode") or "<unset>"]


def _storage_class(obj: dict, now: datetime) -> list:
    name = name_of(obj) + (" (default)" if storage.is_default_class(obj) else "")
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion")), _age(obj, now)]


def _binding(obj: dict, now: datetime) -> list:
    role = obj.get("roleRef") or {}
    subjects = obj.get("subjects") or []

    def names(kind: str) -> str:
        return ", ".join(s.get("name", "") if kind != "ServiceAccount" else f"{s.get('namespace', '')}/{s.get('name')}"
                         for s in subjects if s.get("kind") == kind)

    return [name_of(obj), f"{role.get('kind', '')}/{role.get('name', '')}", _age(obj, now), names("User"),
            names("Group"), names("ServiceAccount")]


Printer = Callable[[dict, datetime], list]
_PRINTERS: dict[str, Printer] = {
    "pods": _pod,
    "nodes": _node,
    "namespaces": lambda o, now: [name_of(o), _get(o, "status", "phase", default=""), _age(o, now)],
    "services": _service,
    "endpoints": _endpoints,
    "configmaps": lambda o, now: [name_of(o), len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                  _age(o, now)],
    "secrets": lambda o, now: [name_of(o), o.get("type", ""), len(o.get("data") or {}), _age(o, now)],
    "serviceaccounts": lambda o, now: [name_of(o), len(o.get("secrets") or []), _age(o, now)],
    "events": _event,
    "events.events.k8s.io": _event,
    "resourcequotas": _resource_quota,
    "replicationcontrollers": _replication_controller,
    "deployments.apps": _deployment,
    "replicasets.apps": _replica_set,
    "daemonsets.apps": _daemon_set,
    "statefulsets.apps": _stateful_set,
    "controllerrevisions.apps": _controller_revision,
    "jobs.batch": _job,
    "cronjobs.batch": _cron_job,
    "leases.coordination.k8s.io": lambda o, now: [name_of(o), _get(o, "spec", "holderIdentity", default=""),
                                                  _age(o, now)],
    "endpointslices.discovery.k8s.io": _endpoint_slice,
    "poddisruptionbudgets.policy": _pdb,
    "priorityclasses.scheduling.k8s.io": _priority_class,
    "persistentvolumes": _persistent_volume,
    "persistentvolumeclaims": _persistent_volume_claim,
    "storageclasses.storage.k8s.io": _storage_class,
    "rolebindings.rbac.authorization.k8s.io": _binding,
    "clusterrolebindings.rbac.authorization.k8s.io": _binding,
}


def _default_cells(obj: dict, now: datetime) -> list:
    return [name_of(obj), _get(obj, "metadata", "creationTimestamp", default="")]


# --- the Table ---------------------------------------------------------------------------------------------------

def columns_of(info: ResourceInfo) -> tuple[PrinterColumn, ...]:
    """The columns a Table of this resource carries (the resource's printer columns or the default two)."""
    return info.columns if info.columns and _printer(info) else _DEFAULT_COLUMNS


def _printer(info: ResourceInfo) -> Callable[[dict, datetime], list] | None:
    """The built-in printer of a kind, or the one a custom resource's info carries (`extra["cells"]`, taking the
    info first: custom resources print their CRD's additionalPrinterColumns)."""
    cells = info.extra.get("cells")
    if cells is not None:
        return lambda obj, now: cells(info, obj, now)
    return _PRINTERS.get(info.qualified)


def row_cells(info: ResourceInfo, obj: dict, now: datetime | None = None) -> list:
    printer = _printer(info) if info.columns else None
    return (printer or _default_cells)(obj, now or datetime.now(timezone.utc))


def _row_object(obj: dict, include_object: str) -> dict | None:
    if include_object == "Object":
        return obj
    if include_object == "Metadata":
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}
    return None


def to_table(info: ResourceInfo, objects: Iterable[dict], include_object: str = "Metadata",
             list_meta: dict | None = None, *, now: datetime | None = None, column_definitions: bool = True) -> dict:
    """A meta.k8s.io/v1 Table of `objects` (one object for a single GET or a watch event). `include_object` is the
    request's includeObject (None | Metadata | Object); rows then carry nothing, a PartialObjectMetadata (metadata
    incl. namespace, which `-A` needs) or the object. `list_meta` becomes the Table's metadata (resourceVersion,
    continue, remainingItemCount). `column_definitions=False` leaves them out (watch events after the first)."""
    if include_object not in INCLUDE_OBJECT:
        raise bad_request(f'includeObject must be one of None, Metadata, Object (got "{include_object}")')
    now = now or datetime.now(timezone.utc)
    columns = columns_of(info)
    rows = []
    for obj in objects:
        row = {"cells": row_cells(info, obj, now)}
        if info.qualified == "pods" and (conditions := _pod_conditions(obj)):
            row["conditions"] = conditions
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    definitions = [{"name": c.name, "type": c.type, "format": c.format, "description": c.description,
                    "priority": c.priority} for c in columns] if column_definitions else []
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": dict(list_meta or {}),
            "columnDefinitions": definitions, "rows": rows}
