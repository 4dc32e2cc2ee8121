"""PodSandboxConfig and ContainerConfig for a pod, as the real kubelet builds them (pkg/kubelet/kuberuntime:
kuberuntime_sandbox.go, kuberuntime_container.go, security_context.go, labels.go). Pure functions of the pod dict and
what the kubelet resolved already (environment, mounts, image reference): no I/O, so every rule is unit-tested.

The labels are the real kubelet's, so `crictl` and other tools read kpy's pods as usual and the client selects
pods by them; the container annotations carry what the kubelet must know again after a restart (restart count,
termination message path and policy, grace period, the spec hash that tells whether a container still matches
its pod spec).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from . import api_pb2, dns, expansion, resources
from ..model import Mount

POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
POD_UID_LABEL = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"
HASH_ANNOTATION = "io.kubernetes.container.hash"
RESTART_COUNT_ANNOTATION = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH_ANNOTATION = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY_ANNOTATION = "io.kubernetes.container.terminationMessagePolicy"
TERMINATION_GRACE_PERIOD_ANNOTATION = "io.kubernetes.pod.terminationGracePeriod"
# The image as the pod spec names it: CRI runtimes before v1.30 answer with a tag of their own choosing instead.
IMAGE_ANNOTATION = "kpy.io/container-image"
POD_LOGS_ROOT = "/var/log/pods"
SECCOMP_PROFILE_ROOT = "/var/lib/kubelet/seccomp"  # where Localhost seccomp profiles live (upstream's default)
HOSTNAME_MAX = 63

_PROTOCOLS = {"TCP": api_pb2.TCP, "UDP": api_pb2.UDP, "SCTP": api_pb2.SCTP}
_PROPAGATION = {"None": api_pb2.PROPAGATION_PRIVATE, "HostToContainer": api_pb2.PROPAGATION_HOST_TO_CONTAINER,
                "Bidirectional": api_pb2.PROPAGATION_BIDIRECTIONAL}
_SECCOMP = {"RuntimeDefault": api_pb2.SecurityProfile.RuntimeDefault,
            "Unconfined": api_pb2.SecurityProfile.Unconfined,
            "Localhost": api_pb2.SecurityProfile.Localhost}


class SandboxConfigError(Exception):
    """A pod's sandbox cannot be configured (upstream's CreatePodSandboxConfigError); the message says why."""


def _meta(pod: dict) -> dict:
    return pod.get("metadata") or {}


def _spec(pod: dict) -> dict:
    return pod.get("spec") or {}


def log_directory(pod: dict) -> str:
    meta = _meta(pod)
    return f"{POD_LOGS_ROOT}/{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}"


def container_log_path(container_name: str, attempt: int) -> str:
    """Relative to the sandbox's log directory: `<container>/<restartCount>.log`."""
    return f"{container_name}/{attempt}.log"


def sandbox_labels(pod: dict) -> dict[str, str]:
    meta = _meta(pod)
    return {**(meta.get("labels") or {}), POD_NAME_LABEL: meta.get("name", ""),
            POD_NAMESPACE_LABEL: meta.get("namespace", ""), POD_UID_LABEL: meta.get("uid", "")}


def container_labels(pod: dict, container: dict) -> dict[str, str]:
    meta = _meta(pod)
    return {CONTAINER_NAME_LABEL: container["name"], POD_NAME_LABEL: meta.get("name", ""),
            POD_NAMESPACE_LABEL: meta.get("namespace", ""), POD_UID_LABEL: meta.get("uid", "")}


def container_hash(container: dict) -> str:
    """A stable digest of the container's spec: a running container whose hash differs from its pod spec's was
    created from an older spec."""
    return hashlib.sha256(json.dumps(container, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def container_annotations(pod: dict, container: dict, attempt: int) -> dict[str, str]:
    grace = _spec(pod).get("terminationGracePeriodSeconds")
    annotations = {
        HASH_ANNOTATION: container_hash(container),
        RESTART_COUNT_ANNOTATION: str(attempt),
        TERMINATION_MESSAGE_PATH_ANNOTATION: container.get("terminationMessagePath") or "/dev/termination-log",
        TERMINATION_MESSAGE_POLICY_ANNOTATION: container.get("terminationMessagePolicy") or "File",
        IMAGE_ANNOTATION: container.get("image", ""),
    }
    if grace is not None:
        annotations[TERMINATION_GRACE_PERIOD_ANNOTATION] = str(grace)
    return annotations


def hostname(pod: dict, cluster_domain: str) -> str:
    """The sandbox's hostname: spec.hostname or the pod's name, cut to 63 characters (trailing '-' and '.'
    dropped); with setHostnameAsFQDN and a subdomain, `<hostname>.<subdomain>.<ns>.svc.<domain>` (at most 64
    characters). hostNetwork pods keep the node's (empty here)."""
    spec, meta = _spec(pod), _meta(pod)
    if spec.get("hostNetwork"):
        return ""
    name = spec.get("hostname") or meta.get("name", "")
    if len(name) > HOSTNAME_MAX:
        name = name[:HOSTNAME_MAX].rstrip("-.")
    subdomain = spec.get("subdomain")
    if not (spec.get("setHostnameAsFQDN") and subdomain):
        return name
    fqdn = f"{name}.{subdomain}.{meta.get('namespace')}.svc.{cluster_domain}"
    if len(fqdn) > 64:
        raise SandboxConfigError(f"failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is "
                                 f"too long (64 characters is the max, {len(fqdn)} characters requested)")
    return fqdn


def port_mappings(pod: dict) -> list[api_pb2.PortMapping]:
    """One mapping per container port with a hostPort (portmap publishes those), duplicates once."""
    mappings: dict[tuple, api_pb2.PortMapping] = {}
    for container in _spec(pod).get("containers") or []:
        for port in container.get("ports") or []:
            host_port = port.get("hostPort") or 0
            if host_port <= 0:
                continue
            protocol = port.get("protocol") or "TCP"
            key = (protocol, port.get("containerPort"), host_port, port.get("hostIP") or "")
            mappings.setdefault(key, api_pb2.PortMapping(
                protocol=_PROTOCOLS.get(protocol, api_pb2.TCP), container_port=port.get("containerPort") or 0,
                host_port=host_port, host_ip=port.get("hostIP") or ""))
    return list(mappings.values())


def namespace_options(pod: dict) -> api_pb2.NamespaceOption:
    """hostNetwork/hostPID/hostIPC share the node's; otherwise the pod's network and IPC, and a PID namespace
    per container unless shareProcessNamespace (the CRI default is the pod's, Kubernetes' is the container's)."""
    spec = _spec(pod)
    if spec.get("hostPID"):
        pid = api_pb2.NODE
    elif spec.get("shareProcessNamespace"):
        pid = api_pb2.POD
    else:
        pid = api_pb2.CONTAINER
    return api_pb2.NamespaceOption(network=api_pb2.NODE if spec.get("hostNetwork") else api_pb2.POD, pid=pid,
                                   ipc=api_pb2.NODE if spec.get("hostIPC") else api_pb2.POD)


def _seccomp(profile: dict | None, default: int) -> api_pb2.SecurityProfile:
    if not profile:
        return api_pb2.SecurityProfile(profile_type=default)
    kind = profile.get("type")
    if kind == "Localhost":
        return api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.Localhost,
                                       localhost_ref=f"{SECCOMP_PROFILE_ROOT}/{profile.get('localhostProfile', '')}")
    return api_pb2.SecurityProfile(profile_type=_SECCOMP.get(kind, default))


def _privileged(container: dict) -> bool:
    return bool((container.get("securityContext") or {}).get("privileged"))


def _supplemental_groups(pod_context: dict) -> list[int]:
    groups = [pod_context["fsGroup"]] if pod_context.get("fsGroup") is not None else []
    return groups + list(pod_context.get("supplementalGroups") or [])


def _selinux(options: dict | None) -> api_pb2.SELinuxOption | None:
    if not options:
        return None
    return api_pb2.SELinuxOption(user=options.get("user", ""), role=options.get("role", ""),
                                 type=options.get("type", ""), level=options.get("level", ""))


def pod_sandbox_config(pod: dict, *, dns_settings: dns.DNSSettings, attempt: int = 0,
                       cgroup_parent: str = "") -> api_pb2.PodSandboxConfig:
    """`attempt`: how many sandboxes this pod had before (0 for the first); `cgroup_parent`: the pod's cgroup in
    the kubelet's cgroup driver's syntax (a cgroupfs path or a systemd slice)."""
    meta, spec = _meta(pod), _spec(pod)
    pod_context = spec.get("securityContext") or {}
    context = api_pb2.LinuxSandboxSecurityContext(
        namespace_options=namespace_options(pod),
        supplemental_groups=_supplemental_groups(pod_context),
        privileged=any(_privileged(c) for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]),
        seccomp=api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.RuntimeDefault),
        selinux_options=_selinux(pod_context.get("seLinuxOptions")))
    if pod_context.get("runAsUser") is not None:
        context.run_as_user.value = pod_context["runAsUser"]
    if pod_context.get("runAsGroup") is not None:
        context.run_as_group.value = pod_context["runAsGroup"]
    return api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=meta.get("name", ""), namespace=meta.get("namespace", ""),
                                            uid=meta.get("uid", ""), attempt=attempt),
        hostname=hostname(pod, dns_settings.cluster_domain),
        log_directory=log_directory(pod),
        dns_config=dns.pod_dns_config(pod, dns_settings),
        port_mappings=port_mappings(pod),
        labels=sandbox_labels(pod),
        annotations=dict(meta.get("annotations") or {}),
        linux=api_pb2.LinuxPodSandboxConfig(
            cgroup_parent=cgroup_parent, security_context=context,
            sysctls={s["name"]: str(s.get("value", "")) for s in pod_context.get("sysctls") or []}))


def container_security_context(pod: dict, container: dict) -> api_pb2.LinuxContainerSecurityContext:
    """The pod's securityContext overridden by the container's (runAsUser, runAsGroup, seLinuxOptions,
    seccompProfile), plus the container-only settings. allowPrivilegeEscalation: false sets no_new_privs; unset
    leaves it off. Without a seccompProfile a container runs Unconfined (upstream, seccompDefault off)."""
    pod_context = _spec(pod).get("securityContext") or {}
    own = container.get("securityContext") or {}
    capabilities = own.get("capabilities") or {}
    context = api_pb2.LinuxContainerSecurityContext(
        capabilities=api_pb2.Capability(add_capabilities=capabilities.get("add") or [],
                                        drop_capabilities=capabilities.get("drop") or []),
        privileged=bool(own.get("privileged")),
        namespace_options=namespace_options(pod),
        selinux_options=_selinux(own.get("seLinuxOptions") or pod_context.get("seLinuxOptions")),
        readonly_rootfs=bool(own.get("readOnlyRootFilesystem")),
        supplemental_groups=_supplemental_groups(pod_context),
        no_new_privs=own.get("allowPrivilegeEscalation") is False,
        seccomp=_seccomp(own.get("seccompProfile") or pod_context.get("seccompProfile"),
                         api_pb2.SecurityProfile.Unconfined))
    for field, key in (("run_as_user", "runAsUser"), ("run_as_group", "runAsGroup")):
        value = own[key] if own.get(key) is not None else pod_context.get(key)
        if value is not None:
            getattr(context, field).value = value
    return context


def mount(value: Mount) -> api_pb2.Mount:
    return api_pb2.Mount(container_path=value.container_path, host_path=value.host_path, readonly=value.read_only,
                         propagation=_PROPAGATION.get(value.propagation, api_pb2.PROPAGATION_PRIVATE))


def container_config(pod: dict, container: dict, *, attempt: int, image_ref: str,
                     envs: Sequence[tuple[str, str]], mounts: Sequence[Mount], memory_capacity: int,
                     cpu_cfs_quota: bool = True) -> api_pb2.ContainerConfig:
    """`attempt`: the container's restart count; `image_ref`: the image as the runtime resolved it (PullImage's
    image_ref or ImageStatus's id); `envs`: the resolved environment in order; `mounts`: the resolved volume
    mounts; `memory_capacity`: the node's memory in bytes. Command and args get $(VAR) expansion from `envs`."""
    command, args = expansion.command_and_args(container, envs)
    return api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=container["name"], attempt=attempt),
        image=api_pb2.ImageSpec(image=image_ref, user_specified_image=container.get("image", "")),
        command=command, args=args,
        working_dir=container.get("workingDir") or "",
        envs=[api_pb2.KeyValue(key=name, value=value) for name, value in envs],
        mounts=[mount(m) for m in mounts],
        labels=container_labels(pod, container),
        annotations=container_annotations(pod, container, attempt),
        log_path=container_log_path(container["name"], attempt),
        stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=api_pb2.LinuxContainerConfig(
            resources=resources.linux_resources(pod, container, memory_capacity=memory_capacity,
                                                cpu_cfs_quota=cpu_cfs_quota),
            security_context=container_security_context(pod, container)))
