"""ResourceQuota admission: a create that would take a namespace over one of its ResourceQuotas' hard limits is
refused with Kubernetes' words —
    pods "web" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2
    pods "web" is forbidden: failed quota: q: must specify limits.cpu for: app; requests.cpu for: app
— and an admitted one is charged to the quota's status.used.

Usage is counted from the objects in the namespace at admission time (through the InternalAPI's list), not by
adding to status.used: a write that fails after admission, a dry run or a deletion is then never charged twice,
with no controller needed to correct it. Quotas are written back with optimistic concurrency; on a conflict the
whole evaluation is retried, so two API servers admitting into one quota serialise on the quota object. (Two
creates racing inside the few milliseconds between a status write and the object reaching the watch cache can
still both pass at the boundary; likewise a quota created a few milliseconds before a create, not yet in the watch
cache the quotas are read from, does not apply to it.)
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy
from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.api.quantity import Quantity, QuantityError, pretty, resource_list
from kpy_components.apiserver.admission.quota_usage import matches_scopes, missing_requests, tracks, usage
from kpy_components.apiserver.http.context import InternalAPI

WriteStatus = Callable[[dict], Awaitable[dict]]  # writes a ResourceQuota's status (optimistic on resourceVersion)
_RETRIES = 5
_ZERO = Quantity.parse("0")


class ResourceQuotaAdmission:
    def __init__(self, api: InternalAPI, write_status: WriteStatus | None):
        """`write_status` None: quotas are enforced but their status is not written."""
        self.api, self.write_status = api, write_status

    async def validate(self, attributes: Attributes) -> None:
        info = attributes.info
        if attributes.operation != "CREATE" or info.subresource or attributes.obj is None or not info.namespace:
            return
        for attempt in range(_RETRIES):
            try:
                await self._evaluate(attributes, quotas_from_cache=attempt == 0)
                return
            except APIError as error:
                if error.code != 409 or attempt == _RETRIES - 1:
                    raise

    async def _evaluate(self, attributes: Attributes, quotas_from_cache: bool) -> None:
        """The quotas come from the watch cache first (as Kubernetes' quota lister: no storage round trip for a
        create into a namespace without quotas); after a conflict on a quota's status, from storage."""
        info = attributes.info
        group, resource = info.api_group, info.resource
        quotas = sorted(await self.api.list("", "resourcequotas", info.namespace,
                                            resource_version="0" if quotas_from_cache else ""),
                        key=lambda q: q["metadata"]["name"])
        relevant = [q for q in quotas if matches_scopes(q, group, resource, attributes.obj)
                    and any(tracks(group, resource, name) for name in _hard(q))]
        if not relevant:
            return
        try:
            delta = usage(group, resource, attributes.obj)
        except QuantityError:
            return  # a malformed quantity: the object's validation answers 422 naming the field
        existing = await self.api.list(group, resource, info.namespace)
        charged = []
        for quota in relevant:
            hard = _hard(quota)
            tracked = {name for name in hard if tracks(group, resource, name)}
            name = quota["metadata"]["name"]
            if (group, resource) == ("", "pods"):
                missing = missing_requests(attributes.obj, tracked)
                if missing:
                    raise forbidden(attributes, f"failed quota: {name}: must specify {missing}")
            used = _used(existing, quota, group, resource, tracked)
            requested = {n: delta[n] for n in tracked if n in delta and delta[n].value != 0}
            if not requested:
                continue
            exceeded = sorted(n for n in requested if used.get(n, _ZERO) + requested[n] > hard[n])
            if exceeded:
                raise forbidden(attributes, f"exceeded quota: {name}, requested: "
                                f"{pretty({n: requested[n] for n in exceeded})}, used: "
                                f"{pretty({n: used.get(n, _ZERO) for n in exceeded})}, limited: "
                                f"{pretty({n: hard[n] for n in exceeded})}")
            charged.append((quota, {n: used.get(n, _ZERO) + requested.get(n, _ZERO) for n in tracked}))
        if self.write_status is not None:
            for quota, new_usage in charged:
                await self.write_status(_with_usage(quota, new_usage))


def _hard(quota: dict) -> dict[str, Quantity]:
    try:
        return resource_list((quota.get("spec") or {}).get("hard"))
    except QuantityError:
        return {}  # validation refuses such quotas on write; an old bad one limits nothing


def _used(existing: list[dict], quota: dict, group: str, resource: str, tracked: set[str]) -> dict[str, Quantity]:
    used: dict[str, Quantity] = {}
    for obj in existing:
        if not matches_scopes(quota, group, resource, obj):
            continue
        try:
            charges = usage(group, resource, obj)
        except QuantityError:
            continue
        for name in tracked & set(charges):
            used[name] = used.get(name, _ZERO) + charges[name]
    return used


def _with_usage(quota: dict, new_usage: dict[str, Quantity]) -> dict:
    """The quota with status.hard = spec.hard and the tracked names of status.used replaced."""
    updated = deep_copy(quota)
    status = updated.setdefault("status", {})
    status["hard"] = deep_copy((quota.get("spec") or {}).get("hard") or {})
    used = {k: v for k, v in (status.get("used") or {}).items() if k in status["hard"]}
    used.update({name: str(value) for name, value in new_usage.items()})
    status["used"] = used
    return updated
