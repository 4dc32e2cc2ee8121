"""Taint/toleration matching (k8s.io/api/core/v1 Toleration.ToleratesTaint), shared by the scheduler and the
node-lifecycle and DaemonSet controllers."""
from __future__ import annotations

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"


def tolerates(toleration: dict, taint: dict) -> bool:
    """An empty toleration effect matches every effect; an empty key with operator Exists matches every taint;
    operator Exists ignores the value, Equal (the default) compares it."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(tolerations: list, taint: dict) -> bool:
    return any(tolerates(toleration, taint) for toleration in tolerations)


def first_untolerated(taints: list, tolerations: list, effects: tuple[str, ...]) -> dict | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerated(tolerations, taint):
            return taint
    return None
