"""DefaultTolerationSeconds admission (plugin/pkg/admission/defaulttolerationseconds): a pod created without a
toleration for the node.kubernetes.io/not-ready or node.kubernetes.io/unreachable NoExecute taints gets one with
tolerationSeconds 300, so the node lifecycle controller evicts it five minutes after its node fails, not at once.
"""
from __future__ import annotations

from kpy_components.apiserver.admission.chain import Attributes

NOT_READY, UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300  # kube-apiserver's --default-not-ready-toleration-seconds / --default-unreachable-...


def _tolerates_no_execute(tolerations: list, key: str) -> bool:
    """Whether an existing toleration already covers `key`'s NoExecute taint (an empty key or effect matches)."""
    return any(isinstance(t, dict) and (t.get("key") or "") in ("", key) and (t.get("effect") or "") in
               ("", "NoExecute") for t in tolerations)


class DefaultTolerationSeconds:
    def __init__(self, not_ready_seconds: int = DEFAULT_SECONDS, unreachable_seconds: int = DEFAULT_SECONDS):
        self.seconds = {NOT_READY: not_ready_seconds, UNREACHABLE: unreachable_seconds}

    async def admit(self, attributes: Attributes) -> None:
        if attributes.operation != "CREATE" or not attributes.targets("", "pods") or attributes.obj is None:
            return
        spec = attributes.obj.setdefault("spec", {})
        tolerations = spec.get("tolerations") or []
        added = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
                 for key, seconds in self.seconds.items() if not _tolerates_no_execute(tolerations, key)]
        if added:
            spec["tolerations"] = [*tolerations, *added]
