"""Pod specs: the defaults Kubernetes' SetDefaults_PodSpec/Container set (kubectl relies on them, e.g. `debug` on
spec.securityContext) and their validation, shared by pods and every pod template (deployments, jobs, ...)."""
from __future__ import annotations

from kpy_components.api import meta
from kpy_components.api.errors import Cause
from kpy_components.api.meta import field_invalid, field_required

from .. import validation

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]


def _pull_policy(image: str) -> str:
    """Always for `:latest` or untagged images, IfNotPresent otherwise (digests count as tagged)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if not tag or tag == "latest" else "IfNotPresent"


def default_container(container: dict) -> None:
    if not isinstance(container, dict):
        return
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    if isinstance(container.get("image"), str):
        container.setdefault("imagePullPolicy", _pull_policy(container["image"]))
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        source = env.get("valueFrom", {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(source, dict):
            source.setdefault("apiVersion", "v1")


def default_pod_spec(spec: dict) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and not (set(volume) - {"name"}):
            volume["emptyDir"] = {}
        for kind in ("configMap", "secret"):
            if isinstance(volume, dict) and isinstance(volume.get(kind), dict):
                volume[kind].setdefault("defaultMode", 0o644)


def default_template(template: dict) -> None:
    if isinstance(template, dict):
        meta.metadata(template)
        default_pod_spec(template.setdefault("spec", {}))


def _validate_container(container, path: str) -> list[Cause]:
    if not isinstance(container, dict):
        return [field_invalid(path, container, "must be an object")]
    causes = []
    name = container.get("name")
    if not name:
        causes.append(field_required(f"{path}.name"))
    else:
        causes.extend(meta.validate_dns1123_label(name, f"{path}.name"))
    if not container.get("image"):
        causes.append(field_required(f"{path}.image"))
    causes.extend(validation.one_of(container.get("imagePullPolicy"), f"{path}.imagePullPolicy", _PULL_POLICIES))
    for index, port in enumerate(container.get("ports") or []):
        here = f"{path}.ports[{index}]"
        if not isinstance(port, dict):
            causes.append(field_invalid(here, port, "must be an object"))
            continue
        causes.extend(validation.port_number(port.get("containerPort"), f"{here}.containerPort"))
        if port.get("hostPort") not in (None, 0):
            causes.extend(validation.port_number(port.get("hostPort"), f"{here}.hostPort"))
        causes.extend(validation.one_of(port.get("protocol"), f"{here}.protocol", _PROTOCOLS))
    return causes


def validate_pod_spec(spec, path: str, restart_policies: list[str] = RESTART_POLICIES) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field_required(path)]
    causes = []
    containers = spec.get("containers")
    if not containers:
        causes.append(field_required(f"{path}.containers"))
    elif not isinstance(containers, list):
        causes.append(field_invalid(f"{path}.containers", containers, "must be a list"))
    seen = set()  # container names are unique across init and regular containers
    for field in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(field) or [] if isinstance(spec.get(field), list) else []):
            causes.extend(_validate_container(container, f"{path}.{field}[{index}]"))
            name = container.get("name") if isinstance(container, dict) else None
            if name and name in seen:
                causes.append(meta.field_duplicate(f"{path}.{field}[{index}].name", name))
            seen.add(name)
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        causes.append(meta.field_not_supported(f"{path}.restartPolicy", policy, restart_policies))
    causes.extend(validation.one_of(spec.get("dnsPolicy"), f"{path}.dnsPolicy", _DNS_POLICIES))
    causes.extend(validation.non_negative(spec.get("terminationGracePeriodSeconds"),
                                          f"{path}.terminationGracePeriodSeconds"))
    causes.extend(validation.unique_names(spec.get("volumes"), f"{path}.volumes"))
    causes.extend(_validate_volume_mounts(spec, path))
    return causes


def _validate_volume_mounts(spec: dict, path: str) -> list[Cause]:
    """Every container's volumeMounts name a volume of the pod and say where (upstream's validateVolumeMounts)."""
    volumes = {v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict)}
    causes = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        containers = spec.get(field)
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            mounts = container.get("volumeMounts") if isinstance(container, dict) else None
            for number, mount in enumerate(mounts if isinstance(mounts, list) else []):
                here = f"{path}.{field}[{index}].volumeMounts[{number}]"
                if not isinstance(mount, dict):
                    causes.append(field_invalid(here, mount, "must be an object"))
                    continue
                if not mount.get("name"):
                    causes.append(field_required(f"{here}.name"))
                elif mount["name"] not in volumes:
                    causes.append(meta.field_not_found(f"{here}.name", mount["name"]))
                if not mount.get("mountPath"):
                    causes.append(field_required(f"{here}.mountPath"))
    return causes


