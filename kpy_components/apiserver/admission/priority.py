"""Priority admission (plugin/pkg/admission/priority), mutating and validating:

- pod CREATE: spec.priorityClassName (or else the global default class, whose name is then filled in) resolves
  into spec.priority and spec.preemptionPolicy; with no class at all they are 0 and PreemptLowerPriority. An
  unknown class is refused (`no PriorityClass with name foo was found`), and so is a priority or preemptionPolicy
  the client gave that disagrees with the class.
- pod UPDATE: a priority the update drops is kept from the old pod (it was set here at create).
- PriorityClass CREATE/UPDATE: at most one class is the global default.
- PriorityClass DELETE: the built-in system classes cannot be deleted. (kube-apiserver refuses this in the
  PriorityClass REST storage; kpy's one generic store has no per-resource delete hook, so it is refused here, with
  the same 403 and words.)

When several classes are global defaults (a race), the lowest value wins, as upstream.
"""
from __future__ import annotations

from kpy_components.api import scheduling
from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.apiserver.http.context import InternalAPI

_CLASSES = (scheduling.GROUP, "priorityclasses")


class PriorityAdmission:
    def __init__(self, api: InternalAPI):
        self.api = api

    # --- mutating ------------------------------------------------------------------------------------------------
    async def admit(self, attributes: Attributes) -> None:
        if attributes.info.subresource or not attributes.targets("", "pods") or attributes.obj is None:
            return
        spec = attributes.obj.setdefault("spec", {})
        if attributes.operation == "UPDATE":
            old = (attributes.old or {}).get("spec") or {}
            if spec.get("priority") is None and old.get("priority") is not None:
                spec["priority"] = old["priority"]
            return
        if attributes.operation == "CREATE":
            await self._admit_new_pod(attributes, spec)

    async def _admit_new_pod(self, attributes: Attributes, spec: dict) -> None:
        name = spec.get("priorityClassName") or ""
        if name:
            try:
                found = await self.api.peek(*_CLASSES, "", name)
            except APIError as error:
                if error.code == 404:
                    raise forbidden(attributes, f"no PriorityClass with name {name} was found") from None
                raise
        else:
            found = await self.default_class()
            if found is not None:
                spec["priorityClassName"] = found["metadata"]["name"]
        priority = found.get("value", 0) if found else scheduling.DEFAULT_PRIORITY
        policy = (found or {}).get("preemptionPolicy") or scheduling.PREEMPT_LOWER_PRIORITY
        if spec.get("priority") is not None and spec["priority"] != priority:
            raise forbidden(attributes, f"the integer value of priority ({spec['priority']}) must not be provided "
                            f"in pod spec; priority admission controller computed {priority} from the given "
                            "PriorityClass name")
        if spec.get("preemptionPolicy") is not None and spec["preemptionPolicy"] != policy:
            raise forbidden(attributes, f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must "
                            f"not be provided in pod spec; priority admission controller computed {policy} from "
                            "the given PriorityClass name")
        spec["priority"], spec["preemptionPolicy"] = priority, policy

    async def default_class(self) -> dict | None:
        defaults = [c for c in await self.api.list(*_CLASSES, resource_version="0") if c.get("globalDefault")]
        return min(defaults, key=lambda c: c.get("value", 0), default=None)

    # --- validating ----------------------------------------------------------------------------------------------
    async def validate(self, attributes: Attributes) -> None:
        if attributes.info.subresource or not attributes.targets(*_CLASSES):
            return
        if attributes.operation == "DELETE":
            if attributes.name in scheduling.SYSTEM_PRIORITY_CLASSES:
                raise forbidden(attributes, "this is a system priority class and cannot be deleted")
            return
        if attributes.obj is None or attributes.obj.get("globalDefault") is not True:
            return
        current = await self.default_class()
        if current is not None and (attributes.operation == "CREATE"
                                    or current["metadata"]["name"] != attributes.name):
            raise forbidden(attributes, f"PriorityClass {current['metadata']['name']} is already marked as default. "
                            "Only one default can exist")
