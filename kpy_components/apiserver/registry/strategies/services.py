"""Services: defaults, validation, ClusterIP from the service CIDR and NodePorts from 30000-32767."""
from __future__ import annotations

import re

from kpy_components.api import errors, meta
from kpy_components.api.meta import field_invalid, field_required

from .. import validation
from ..allocators import AllocationError, ClusterIPAllocator, NodePortAllocator
from ..strategy import Strategy

_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_RE = re.compile(f"^{_DNS1035_FMT}$")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
                "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
                f"validation is '{_DNS1035_FMT}')")


def _has_cluster_ip(spec: dict) -> bool:
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"


def _wants_node_ports(spec: dict) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


class ServiceStrategy(Strategy):
    return_deleted_object = True  # as upstream: clients parse the DELETE reply as the Service
    def __init__(self, info, cluster_ips: ClusterIPAllocator, node_ports: NodePortAllocator):
        super().__init__(info)
        self.cluster_ips, self.node_ports = cluster_ips, node_ports

    def validate_name(self, name):
        if len(name) <= 63 and _DNS1035_RE.match(name):
            return []
        return [field_invalid("metadata.name", name, _DNS1035_MSG)]

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        if _wants_node_ports(spec):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "targetPort" not in port and "port" in port:
                    port["targetPort"] = port["port"]
        obj.setdefault("status", {}).setdefault("loadBalancer", {})

    def validate(self, obj):
        spec = obj.get("spec") or {}
        causes = validation.one_of(spec.get("type"), "spec.type", _TYPES)
        ports = spec.get("ports") or []
        if not ports and _has_cluster_ip(spec):
            causes.append(field_required("spec.ports"))
        for index, port in enumerate(ports):
            here = f"spec.ports[{index}]"
            if not isinstance(port, dict):
                causes.append(field_invalid(here, port, "must be an object"))
                continue
            if len(ports) > 1 and not port.get("name"):
                causes.append(field_required(f"{here}.name"))
            causes.extend(validation.port_number(port.get("port"), f"{here}.port"))
            target = port.get("targetPort")
            if isinstance(target, int):
                causes.extend(validation.port_number(target, f"{here}.targetPort"))
            causes.extend(validation.one_of(port.get("protocol"), f"{here}.protocol", ["SCTP", "TCP", "UDP"]))
            if port.get("nodePort") and not _wants_node_ports(spec):
                causes.append(meta.field_forbidden(f"{here}.nodePort", "may not be used when `type` is "
                                                   f"'{spec.get('type')}'"))
        causes.extend(validation.unique_names(ports, "spec.ports"))
        if spec.get("type") == "ExternalName" and not spec.get("externalName"):
            causes.append(field_required("spec.externalName"))
        return causes

    def validate_immutable(self, new, old):
        old_ip, new_ip = (old.get("spec") or {}).get("clusterIP"), (new.get("spec") or {}).get("clusterIP")
        if old_ip and new_ip and old_ip != new_ip:
            return [field_invalid("spec.clusterIPs[0]", [new_ip], "may not change once set")]
        return []

    def prepare_for_update(self, new, old):
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        if _has_cluster_ip(spec) and not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"], spec["clusterIPs"] = old_spec["clusterIP"], old_spec.get("clusterIPs")
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        if _wants_node_ports(spec):
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    kept = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                    if kept:
                        port["nodePort"] = kept
        super().prepare_for_update(new, old)

    @staticmethod
    def _owner(obj: dict) -> str:
        return f"{meta.namespace_of(obj)}/{meta.name_of(obj)}"

    async def allocate(self, ctx, new, old):
        spec, owner = new.setdefault("spec", {}), self._owner(new)
        try:
            if _has_cluster_ip(spec):
                wanted = spec.get("clusterIP")
                if wanted:
                    await self.cluster_ips.reserve(wanted, owner, ctx.dry_run)
                else:
                    wanted = await self.cluster_ips.allocate(owner, ctx.dry_run)
                spec["clusterIP"], spec["clusterIPs"] = wanted, [wanted]
            if _wants_node_ports(spec):
                for port in spec.get("ports") or []:
                    if port.get("nodePort"):
                        await self.node_ports.reserve(str(port["nodePort"]), owner, ctx.dry_run)
                    else:
                        port["nodePort"] = int(await self.node_ports.allocate(owner, ctx.dry_run))
        except AllocationError as error:
            field = "spec.clusterIPs" if "IP" in str(error) else "spec.ports"
            raise errors.invalid("Service", meta.name_of(new), [field_invalid(field, spec.get("clusterIP") or "",
                                                                              f"failed to allocate: {error}")])

    async def release(self, obj, kept=None):
        owner = self._owner(obj)
        spec, kept_spec = obj.get("spec") or {}, (kept or {}).get("spec") or {}
        if spec.get("clusterIP") and _has_cluster_ip(spec) and kept_spec.get("clusterIP") != spec["clusterIP"]:
            await self.cluster_ips.release(spec["clusterIP"], owner)
        kept_ports = {p.get("nodePort") for p in kept_spec.get("ports") or [] if isinstance(p, dict)}
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and port.get("nodePort") and port["nodePort"] not in kept_ports:
                await self.node_ports.release(str(port["nodePort"]), owner)
