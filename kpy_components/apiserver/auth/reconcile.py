"""Reconciling the default RBAC policy at start, as kube-apiserver's rbac/bootstrap-roles post-start hook does:
missing objects are created; existing ones are topped up (missing permissions, subjects, labels, annotations,
aggregation selectors added; nothing removed) only while they carry rbac.authorization.kubernetes.io/autoupdate=true,
so an operator who sets it to false keeps their edits."""
from __future__ import annotations

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy
from kpy_components.apiserver.auth.bootstrap import AUTOUPDATE, GROUP, default_policy
from kpy_components.apiserver.auth.rules import PolicyRule, covers, rules_of
from kpy_components.apiserver.http.context import InternalAPI

_PLURALS = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "Role": "roles",
            "RoleBinding": "rolebindings"}


def _merge_metadata(existing: dict, expected: dict) -> None:
    for field in ("labels", "annotations"):
        wanted = expected["metadata"].get(field) or {}
        current = existing["metadata"].setdefault(field, {})
        for key, value in wanted.items():
            current.setdefault(key, value)


def reconciled_role(existing: dict, expected: dict) -> dict:
    """`existing` plus what `expected` grants that it lacks."""
    result = deep_copy(existing)
    _merge_metadata(result, expected)
    have = list(rules_of(result))
    for rule in expected.get("rules") or []:
        if not covers(have, PolicyRule.from_dict(rule)):
            result.setdefault("rules", []).append(deep_copy(rule))
            have.append(PolicyRule.from_dict(rule))
    wanted = (expected.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if wanted:
        selectors = result.setdefault("aggregationRule", {}).setdefault("clusterRoleSelectors", [])
        selectors.extend(deep_copy(s) for s in wanted if s not in selectors)
    return result


def reconciled_binding(existing: dict, expected: dict) -> dict:
    result = deep_copy(existing)
    _merge_metadata(result, expected)
    have = {(s.get("kind"), s.get("name"), s.get("namespace", "")) for s in result.get("subjects") or []}
    for subject in expected.get("subjects") or []:
        if (subject["kind"], subject["name"], subject.get("namespace", "")) not in have:
            result.setdefault("subjects", []).append(deep_copy(subject))
    return result


async def reconcile(api: InternalAPI, policy: list[dict] | None = None) -> list[str]:
    """Bring the store in line with the default policy; one line per action taken or refused, for the log."""
    report = []
    for expected in policy if policy is not None else default_policy():
        plural = _PLURALS[expected["kind"]]
        namespace, name = expected["metadata"].get("namespace", ""), expected["metadata"]["name"]
        what = f"{plural}/{namespace + '/' if namespace else ''}{name}"
        try:
            report.extend(await _reconcile_one(api, plural, namespace, what, expected))
        except APIError as error:
            report.append(f"failed {what}: {error.message}")
    return report


async def _reconcile_one(api: InternalAPI, plural: str, namespace: str, what: str, expected: dict) -> list[str]:
    try:
        existing = await api.get(GROUP, plural, namespace, expected["metadata"]["name"])
    except APIError as error:
        if error.code != 404:
            raise
        await api.create(GROUP, plural, namespace, deep_copy(expected))
        return [f"created {what}"]
    if (existing["metadata"].get("annotations") or {}).get(AUTOUPDATE) != "true":
        return []
    if plural.endswith("bindings"):
        if existing.get("roleRef") != expected.get("roleRef"):
            return [f"kept {what}: its roleRef differs from the default and roleRef cannot change"]
        updated = reconciled_binding(existing, expected)
    else:
        updated = reconciled_role(existing, expected)
    if updated == existing:
        return []
    await api.update(GROUP, plural, namespace, updated)
    return [f"updated {what}"]
