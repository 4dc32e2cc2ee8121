"""Strategies of networking.k8s.io/v1 (Ingress, IngressClass, NetworkPolicy), autoscaling/v2
(HorizontalPodAutoscaler), node.k8s.io/v1 (RuntimeClass), flowcontrol.apiserver.k8s.io/v1 and core/v1 PodTemplate:
upstream's defaulting and the validation messages users meet most (pkg/apis/*/validation)."""
from __future__ import annotations

from kpy_components.api import meta
from kpy_components.api.errors import Cause
from kpy_components.api.meta import field_invalid, field_required

from .. import validation
from ..strategy import Strategy
from . import podspec

_PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_POLICY_TYPES = ["Ingress", "Egress"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _backend(backend, path: str) -> list[Cause]:
    if not isinstance(backend, dict):
        return [field_required(path)]
    service, resource = backend.get("service"), backend.get("resource")
    if service and resource:
        return [field_invalid(path, backend, "cannot set both resource and service backends")]
    if resource:
        return [] if resource.get("kind") and resource.get("name") else [
            field_invalid(f"{path}.resource", resource, "kind and name are required")]
    if not service:
        return [field_invalid(path, backend, "resource or service backend is required")]
    causes = validation.required(service, "name", f"{path}.service")
    if service.get("name"):
        causes += meta.validate_dns1123_label(service["name"], f"{path}.service.name")
    port = service.get("port") or {}
    if port.get("name") and port.get("number"):
        causes.append(field_invalid(f"{path}.service.port", port, "cannot set both port name & port number"))
    elif port.get("number") is not None:
        causes += validation.port_number(port["number"], f"{path}.service.port.number")
    elif not port.get("name"):
        causes.append(field_invalid(f"{path}.service.port", port, "port name or number is required"))
    return causes


class IngressStrategy(Strategy):
    def validate(self, obj: dict) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = []
        if not spec.get("defaultBackend") and not spec.get("rules"):
            causes.append(field_invalid("spec", spec, "either `defaultBackend` or `rules` must be specified"))
        if spec.get("defaultBackend"):
            causes += _backend(spec["defaultBackend"], "spec.defaultBackend")
        if spec.get("ingressClassName"):
            causes += meta.validate_dns1123_subdomain(spec["ingressClassName"], "spec.ingressClassName")
        for index, rule in enumerate(spec.get("rules") or []):
            here = f"spec.rules[{index}]"
            host = rule.get("host") or ""
            if host and not meta.is_dns1123_subdomain(host.removeprefix("*.")):
                causes += meta.validate_dns1123_subdomain(host, f"{here}.host")
            for number, item in enumerate((rule.get("http") or {}).get("paths") or []):
                where = f"{here}.http.paths[{number}]"
                kind = item.get("pathType")
                if not kind:
                    causes.append(field_required(f"{where}.pathType", "pathType must be specified"))
                else:
                    causes += validation.one_of(kind, f"{where}.pathType", _PATH_TYPES)
                path = item.get("path")
                if kind in ("Exact", "Prefix") and not str(path or "").startswith("/"):
                    causes.append(field_invalid(f"{where}.path", path or "", "must be an absolute path"))
                causes += _backend(item.get("backend"), f"{where}.backend")
        for index, tls in enumerate(spec.get("tls") or []):
            for number, host in enumerate(tls.get("hosts") or []):
                if not meta.is_dns1123_subdomain(host.removeprefix("*.")):
                    causes += meta.validate_dns1123_subdomain(host, f"spec.tls[{index}].hosts[{number}]")
        return causes


class IngressClassStrategy(Strategy):
    def validate(self, obj: dict) -> list[Cause]:
        controller = (obj.get("spec") or {}).get("controller") or ""
        if not controller:
            return [field_required("spec.controller")]
        if len(controller) > 250:
            return [meta.field_too_long("spec.controller", controller, 250)]
        return []

    def validate_immutable(self, new: dict, old: dict) -> list[Cause]:
        controller = (new.get("spec") or {}).get("controller")
        if controller != (old.get("spec") or {}).get("controller"):
            return [field_invalid("spec.controller", controller, "field is immutable")]
        return []


class NetworkPolicyStrategy(Strategy):
    tracks_generation = True

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                for port in rule.get("ports") or []:
                    port.setdefault("protocol", "TCP")

    def validate(self, obj: dict) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = []
        types = spec.get("policyTypes") or []
        if len(types) > 2:
            causes.append(field_invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
        for index, kind in enumerate(types):
            causes += validation.one_of(kind, f"spec.policyTypes[{index}]", _POLICY_TYPES)
        causes += _selector_labels(spec.get("podSelector"), "spec.podSelector")
        for direction, peers in (("ingress", "from"), ("egress", "to")):
            for index, rule in enumerate(spec.get(direction) or []):
                for number, port in enumerate(rule.get("ports") or []):
                    where = f"spec.{direction}[{index}].ports[{number}]"
                    causes += validation.one_of(port.get("protocol"), f"{where}.protocol", _PROTOCOLS)
                    if isinstance(port.get("port"), int):
                        causes += validation.port_number(port["port"], f"{where}.port")
                for number, peer in enumerate(rule.get(peers) or []):
                    where = f"spec.{direction}[{index}].{peers}[{number}]"
                    chosen = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if k in peer]
                    if not chosen:
                        causes.append(field_required(where, "must specify a peer"))
                    elif "ipBlock" in peer and len(chosen) > 1:
                        causes.append(field_invalid(where, peer, "may not specify both ipBlock and another peer"))
                    elif "ipBlock" in peer and not (peer["ipBlock"] or {}).get("cidr"):
                        causes.append(field_required(f"{where}.ipBlock.cidr"))
        return causes


def _selector_labels(selector, path: str) -> list[Cause]:
    if not isinstance(selector, dict):
        return []
    return validation.labels(selector.get("matchLabels"), f"{path}.matchLabels")


class HorizontalPodAutoscalerStrategy(Strategy):
    """autoscaling/v2: minReplicas 1 and the 80% CPU metric by default; behavior's defaults when behavior is set."""

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 80}}}]
        behavior = spec.get("behavior")
        if isinstance(behavior, dict):
            up = behavior.setdefault("scaleUp", {})
            up.setdefault("stabilizationWindowSeconds", 0)
            up.setdefault("selectPolicy", "Max")
            up.setdefault("policies", [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                       {"type": "Percent", "value": 100, "periodSeconds": 15}])
            down = behavior.setdefault("scaleDown", {})
            down.setdefault("stabilizationWindowSeconds", 300)
            down.setdefault("selectPolicy", "Max")
            down.setdefault("policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])

    def validate(self, obj: dict) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = []
        ref = spec.get("scaleTargetRef") or {}
        for key in ("kind", "name"):
            causes += validation.required(ref, key, "spec.scaleTargetRef")
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if isinstance(low, int) and low < 1:
            causes.append(field_invalid("spec.minReplicas", low, "must be greater than or equal to 1"))
        if not isinstance(high, int) or high < 1:
            causes.append(field_invalid("spec.maxReplicas", high, "must be greater than 0"))
        elif isinstance(low, int) and high < low:
            causes.append(field_invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
        for index, metric in enumerate(spec.get("metrics") or []):
            causes += validation.one_of(metric.get("type"), f"spec.metrics[{index}].type",
                                        ["ContainerResource", "External", "Object", "Pods", "Resource"])
            target = ((metric.get("resource") or {}).get("target") or {}) if metric.get("type") == "Resource" else {}
            utilization = target.get("averageUtilization")
            if isinstance(utilization, int) and utilization < 1:
                causes.append(field_invalid(f"spec.metrics[{index}].resource.target.averageUtilization",
                                            utilization, "must be greater than 0"))
        return causes


class RuntimeClassStrategy(Strategy):
    def validate(self, obj: dict) -> list[Cause]:
        handler = obj.get("handler")
        if not handler:
            return [field_required("handler")]
        return meta.validate_dns1123_label(handler, "handler")

    def validate_immutable(self, new: dict, old: dict) -> list[Cause]:
        if new.get("handler") != old.get("handler"):
            return [field_invalid("handler", new.get("handler"), "field is immutable")]
        return []


class FlowSchemaStrategy(Strategy):
    tracks_generation = True

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("matchingPrecedence", 1000)

    def validate(self, obj: dict) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = validation.required(spec.get("priorityLevelConfiguration") or {}, "name",
                                     "spec.priorityLevelConfiguration")
        precedence = spec.get("matchingPrecedence")
        if isinstance(precedence, int) and not 1 <= precedence <= 10000:
            causes.append(field_invalid("spec.matchingPrecedence", precedence, "must be between 1 and 10000, "
                                        "inclusive"))
        return causes


class PriorityLevelConfigurationStrategy(Strategy):
    tracks_generation = True

    def default(self, obj: dict) -> None:
        limited = (obj.get("spec") or {}).get("limited")
        if not isinstance(limited, dict):
            return
        limited.setdefault("nominalConcurrencyShares", 30)
        limited.setdefault("lendablePercent", 0)
        response = limited.setdefault("limitResponse", {"type": "Reject"})
        if response.get("type") == "Queue":
            queuing = response.setdefault("queuing", {})
            queuing.setdefault("queues", 64)
            queuing.setdefault("handSize", 8)
            queuing.setdefault("queueLengthLimit", 50)

    def validate(self, obj: dict) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = validation.one_of(spec.get("type"), "spec.type", ["Exempt", "Limited"])
        if not spec.get("type"):
            causes.append(field_required("spec.type"))
        if spec.get("type") == "Limited" and not spec.get("limited"):
            causes.append(field_required("spec.limited", "must not be empty when type is Limited"))
        return causes


class PodTemplateStrategy(Strategy):
    def default(self, obj: dict) -> None:
        if isinstance(obj.get("template"), dict):
            podspec.default_template(obj["template"])

    def validate(self, obj: dict) -> list[Cause]:
        template = obj.get("template")
        if not isinstance(template, dict):
            return [field_required("template")]
        return podspec.validate_pod_spec(template.get("spec"), "template.spec")


class APIServiceStrategy(Strategy):
    """apiregistration.k8s.io/v1: the name is `<version>.<group>`, priorities in range, TLS settings coherent."""

    def validate(self, obj: dict) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = []
        expected = f"{spec.get('version', '')}.{spec.get('group', '')}" if spec.get("group") else \
            spec.get("version", "")
        if meta.name_of(obj) != expected:
            causes.append(field_invalid("metadata.name", meta.name_of(obj), f"must be {expected}"))
        if not spec.get("version"):
            causes.append(field_required("spec.version"))
        if spec.get("service"):
            for key, limit in (("groupPriorityMinimum", 20000), ("versionPriority", 1000)):
                value = spec.get(key)
                if not isinstance(value, int) or not 0 < value <= limit:
                    causes.append(field_invalid(f"spec.{key}", value, f"must be positive and less than {limit}"))
            causes += validation.required(spec["service"], "name", "spec.service")
            causes += validation.required(spec["service"], "namespace", "spec.service")
        if spec.get("insecureSkipTLSVerify") and spec.get("caBundle"):
            causes.append(field_invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
        return causes
