"""A container's environment, resolved as upstream's kubelet does (makeEnvironmentVariables):

1. envFrom, in order: every key of the ConfigMap/Secret with the prefix; keys that are not valid variable names are
   skipped and reported in one InvalidEnvironmentVariableNames event per source; a missing source fails unless
   optional.
2. env, in order: `value` with $(VAR) expansion over what is defined so far and then the Service variables (an
   empty value is set as is); or valueFrom configMapKeyRef / secretKeyRef (optional ones skipped when missing),
   fieldRef, resourceFieldRef.
3. the Service variables (docker-link style) for names not already set: every service with a cluster IP in the
   pod's namespace when enableServiceLinks is not false, and always the `kubernetes` service of `default`.

A failure is a ContainerConfigError with upstream's message (the container waits in CreateContainerConfigError).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import fieldpath
from .cri.expansion import expand
from .model import ContainerConfigError, Event, ObjectSource

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # validation.IsEnvVarName
MASTER_SERVICES = ("kubernetes",)  # the API's own Service in `default`: every pod gets its variables
DEFAULT_NAMESPACE = "default"


@dataclass
class ResolvedEnv:
    envs: list[tuple[str, str]]  # in order; what CRI's ContainerConfig.envs and $(VAR) in command/args take
    events: list[Event] = field(default_factory=list)  # Warning events to record on the pod

    def as_dict(self) -> dict[str, str]:
        return dict(self.envs)


def secret_text(value: str) -> str:
    """A Secret's data value (base64) as the text a file or variable gets."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        raise ContainerConfigError(f"invalid base64 data in Secret: {value[:16]!r}...") from None


def _service_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _has_cluster_ip(service: dict) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def service_env(services: Iterable[dict], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """Upstream's getServiceEnvVarMap + envvars.FromServices. A service of the pod's own namespace named like a
    master service takes its place."""
    chosen: dict[str, dict] = {}
    for service in services:
        if not _has_cluster_ip(service):
            continue
        meta = service.get("metadata") or {}
        name, service_namespace = meta.get("name", ""), meta.get("namespace", "")
        if service_namespace == DEFAULT_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif service_namespace == namespace and enable_service_links:
            chosen[name] = service
    result: dict[str, str] = {}
    for name in sorted(chosen):
        result.update(_service_vars(chosen[name]))
    return result


def _service_vars(service: dict) -> dict[str, str]:
    spec = service["spec"]
    ip, ports = spec["clusterIP"], spec.get("ports") or []
    if not ports:
        return {}
    prefix = _service_name(service["metadata"]["name"])
    host_port = (lambda port: f"[{ip}]:{port}") if ":" in ip else (lambda port: f"{ip}:{port}")
    result = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0].get("port"))}
    for port in ports:
        if port.get("name"):
            result[f"{prefix}_SERVICE_PORT_{_service_name(port['name'])}"] = str(port.get("port"))
    for index, port in enumerate(ports):
        protocol = port.get("protocol") or "TCP"
        url = f"{protocol.lower()}://{host_port(port.get('port'))}"
        if index == 0:
            result[f"{prefix}_PORT"] = url
        port_prefix = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
        result[port_prefix] = url
        result[f"{port_prefix}_PROTO"] = protocol.lower()
        result[f"{port_prefix}_PORT"] = str(port.get("port"))
        result[f"{port_prefix}_ADDR"] = ip
    return result


class _Objects:
    """ConfigMaps and Secrets read once per resolution (upstream caches them the same way)."""

    def __init__(self, source: ObjectSource, namespace: str):
        self.source, self.namespace = source, namespace
        self._seen: dict[tuple[str, str], dict | None] = {}

    async def get(self, kind: str, name: str, optional: bool) -> dict | None:
        """The object, or None when it is missing and optional; missing and required → upstream's NotFound text."""
        key = (kind, name)
        if key not in self._seen:
            getter = self.source.configmap if kind == "configmap" else self.source.secret
            self._seen[key] = await getter(self.namespace, name)
        found = self._seen[key]
        if found is None and not optional:
            raise ContainerConfigError(f'{kind} "{name}" not found')
        return found


def _data(kind: str, obj: dict) -> dict[str, str]:
    if kind == "secret":
        return {key: secret_text(value) for key, value in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def _field_value(pod: dict, path: str, pod_ips: Sequence[str], host_ips: Sequence[str]) -> str:
    spec = pod.get("spec") or {}
    special = {
        "spec.nodeName": lambda: spec.get("nodeName", ""),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName", ""),
        "status.hostIP": lambda: host_ips[0] if host_ips else "",
        "status.hostIPs": lambda: ",".join(host_ips),
        "status.podIP": lambda: pod_ips[0] if pod_ips else "",
        "status.podIPs": lambda: ",".join(pod_ips),
    }
    if path in special:
        return special[path]()
    try:
        return fieldpath.object_field(pod, path)
    except ValueError as error:
        raise ContainerConfigError(str(error)) from None


async def resolve_env(pod: dict, container: dict, source: ObjectSource, services: Iterable[dict], *,
                      pod_ips: Sequence[str] = (), host_ips: Sequence[str] = (),
                      node_allocatable: dict | None = None) -> ResolvedEnv:
    """The container's environment. `services`: the Services the kubelet's informer holds (any namespaces; only
    the pod's own and `default`'s `kubernetes` count); `pod_ips`/`host_ips`: the sandbox's and node's addresses,
    primary first (for a hostNetwork pod the node's); `node_allocatable`: the Node's status.allocatable (the
    default of unset limits in resourceFieldRef). Call it right before CreateContainer, each time."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace = meta.get("namespace", "")
    objects = _Objects(source, namespace)
    links = spec.get("enableServiceLinks")
    services_vars = service_env(services, namespace, links is None or bool(links))
    result: dict[str, str] = {}
    events: list[Event] = []

    for source_ref in container.get("envFrom") or []:
        prefix = source_ref.get("prefix") or ""
        kind, ref = ("configmap", source_ref["configMapRef"]) if source_ref.get("configMapRef") else \
            ("secret", source_ref.get("secretRef") or {})
        obj = await objects.get(kind, ref.get("name", ""), bool(ref.get("optional")))
        if obj is None:
            continue
        invalid = []
        for key, value in _data(kind, obj).items():
            if not _ENV_NAME.match(prefix + key):
                invalid.append(prefix + key)
                continue
            result[prefix + key] = value
        if invalid:
            label = "configMap" if kind == "configmap" else "secret"
            events.append(Event("Warning", "InvalidEnvironmentVariableNames",
                                f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {label} "
                                f"{namespace}/{ref.get('name', '')} were skipped since they are considered invalid "
                                "environment variable names."))

    for var in container.get("env") or []:
        name, value, value_from = var.get("name", ""), var.get("value") or "", var.get("valueFrom")
        if value:
            value = expand(value, {**services_vars, **result})
        elif value_from:
            resolved = await _value_from(pod, container, value_from, objects, namespace, pod_ips, host_ips,
                                         node_allocatable)
            if resolved is None:
                continue  # an optional reference that is missing: the variable is not set
            value = resolved
        result[name] = value

    for name, value in services_vars.items():
        result.setdefault(name, value)
    return ResolvedEnv(list(result.items()), events)


async def _value_from(pod: dict, container: dict, value_from: dict, objects: _Objects, namespace: str,
                      pod_ips: Sequence[str], host_ips: Sequence[str], allocatable: dict | None) -> str | None:
    if value_from.get("fieldRef"):
        return _field_value(pod, value_from["fieldRef"].get("fieldPath", ""), pod_ips, host_ips)
    if value_from.get("resourceFieldRef"):
        try:
            return fieldpath.resource_value(pod, value_from["resourceFieldRef"], allocatable, container.get("name"))
        except ValueError as error:
            raise ContainerConfigError(str(error)) from None
    for kind, field_name, label in (("configmap", "configMapKeyRef", "ConfigMap"),
                                    ("secret", "secretKeyRef", "Secret")):
        ref = value_from.get(field_name)
        if not ref:
            continue
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        obj = await objects.get(kind, name, optional)
        if obj is None:
            return None
        data = _data(kind, obj)
        if key not in data:
            if optional:
                return None
            raise ContainerConfigError(f"couldn't find key {key} in {label} {namespace}/{name}")
        return data[key]
    return ""
