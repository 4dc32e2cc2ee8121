"""Built-in kinds served in more than one version from one stored version, with upstream's conversion between them:
autoscaling/v1 HorizontalPodAutoscalers are stored as autoscaling/v2 (targetCPUUtilizationPercentage <-> a Resource
cpu Utilization metric). `VERSIONS` maps (group, served version, plural) to (to stored, to served)."""
from __future__ import annotations

import dataclasses

from kpy_components.api import errors, meta
from kpy_components.api.resources import ResourceInfo

from .store import Store


def _hpa_v1_to_v2(obj: dict) -> dict:
    out = meta.deep_copy(obj)
    out["apiVersion"] = "autoscaling/v2"
    spec = out.get("spec")
    if isinstance(spec, dict):
        target = spec.pop("targetCPUUtilizationPercentage", None)
        if target is not None:
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target}}}]
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": current}}}]
    return out


def _cpu(metrics, side: str):
    for metric in metrics or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            return (resource.get(side) or {}).get("averageUtilization")
    return None


def _hpa_v2_to_v1(obj: dict) -> dict:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = "autoscaling/v1"
    spec = obj.get("spec")
    if isinstance(spec, dict):
        out["spec"] = {k: meta.deep_copy(v) for k, v in spec.items() if k not in ("metrics", "behavior")}
        target = _cpu(spec.get("metrics"), "target")
        if target is not None:
            out["spec"]["targetCPUUtilizationPercentage"] = target
    status = obj.get("status")
    if isinstance(status, dict):
        out["status"] = {k: meta.deep_copy(v) for k, v in status.items() if k not in ("currentMetrics",
                                                                                     "conditions")}
        current = _cpu(status.get("currentMetrics"), "current")
        if current is not None:
            out["status"]["currentCPUUtilizationPercentage"] = current
    return out


VERSIONS = {("autoscaling", "v1", "horizontalpodautoscalers"): (_hpa_v1_to_v2, _hpa_v2_to_v1)}


class ConvertedVersion(Store):
    """A version of a built-in kind served from the stored version's store: writes are converted to the stored
    version and go through its store (its strategy defaults and validates); every object read, written or watched
    is converted back. Patches apply to the object as this version, as upstream applies them."""

    def __init__(self, stored: Store, info: ResourceInfo, to_stored, to_served):
        super().__init__(info, stored.strategy, stored.storage, cache=stored.cache, namespaces=stored.namespaces)
        self.stored, self._in, self._out = stored, to_stored, to_served

    def _identity(self, obj, namespace: str) -> dict:
        """The body as the stored version, after this version's apiVersion/kind/namespace checks."""
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the request body must be a {self.info.kind} object")
        obj = meta.deep_copy(obj)
        self._stamp_identity(obj, namespace, self.info.kind, self.info.api_version)
        return self._in(obj)

    async def create(self, ctx, namespace: str, obj: dict) -> dict:
        return self._out(await self.stored.create(ctx, namespace, self._identity(obj, namespace)))

    async def update(self, ctx, namespace: str, name: str, obj: dict, subresource: str = "") -> tuple[dict, bool]:
        stored, created = await self.stored.update(ctx, namespace, name, self._identity(obj, namespace),
                                                   subresource)
        return self._out(stored), created

    async def get(self, namespace: str, name: str, resource_version: str = "") -> dict:
        return self._out(await self.stored.get(namespace, name, resource_version))

    async def peek(self, namespace: str, name: str) -> dict | None:
        found = await self.stored.peek(namespace, name)
        return None if found is None else self._out(found)

    async def list(self, namespace: str = "", **options) -> dict:
        listed = await self.stored.list(namespace, **options)
        return dict(listed, kind=f"{self.info.kind}List", apiVersion=self.info.api_version,
                    items=[self._out(item) for item in listed["items"]])

    async def watch(self, namespace: str = "", **options):
        async for event in self.stored.watch(namespace, **options):
            yield event if event.type == "BOOKMARK" else dataclasses.replace(event, object=self._out(event.object))

    async def write(self, ctx, namespace: str, name: str, desired, subresource: str) -> dict:
        def converted(current: dict) -> dict:
            return self._in(desired(self._out(current)))
        return self._out(await self.stored.write(ctx, namespace, name, converted, subresource))

    async def delete(self, ctx, namespace: str, name: str, options: dict | None = None) -> tuple[dict, bool]:
        obj, deleted_now = await self.stored.delete(ctx, namespace, name, options)
        return self._out(obj), deleted_now
