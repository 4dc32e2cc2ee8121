"""Authorization decisions and the union of authorizers kube-apiserver runs: the privileged group system:masters,
then Node, then RBAC. The first authorizer to allow (or deny) decides; otherwise the request is denied with the
reasons the others gave, joined by ", " (k8s.io/apiserver/pkg/authorization/union)."""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kpy_components.api import errors
from kpy_components.api.errors import APIError
from kpy_components.apiserver.auth.rules import PolicyRule
from kpy_components.apiserver.http.context import RequestInfo, User

MASTERS = "system:masters"


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass
class Rules:
    """What a user may do in a namespace (SelfSubjectRulesReview): `incomplete` when an authorizer cannot list
    everything it would allow; `errors` say why."""
    resource_rules: list[PolicyRule] = field(default_factory=list)
    non_resource_rules: list[PolicyRule] = field(default_factory=list)
    incomplete: bool = False
    errors: list[str] = field(default_factory=list)

    def extend(self, other: Rules) -> None:
        self.resource_rules += other.resource_rules
        self.non_resource_rules += other.non_resource_rules
        self.incomplete = self.incomplete or other.incomplete
        self.errors += other.errors


class Authorizer(Protocol):
    def authorize(self, user: User, info: RequestInfo) -> tuple[Decision, str]: ...

    def rules_for(self, user: User, namespace: str) -> Rules: ...


def aggregate(messages: Sequence[str]) -> str:
    """Kubernetes' utilerrors aggregate text: one message as is, several as `[a, b]`."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


class PrivilegedGroups:
    """system:masters may do everything, whatever RBAC says (kube-apiserver's privileged-group authorizer)."""

    def __init__(self, groups: tuple[str, ...] = (MASTERS,)):
        self.groups = groups

    def _privileged(self, user: User) -> bool:
        return any(group in self.groups for group in user.groups)

    def authorize(self, user: User, info: RequestInfo) -> tuple[Decision, str]:
        return (Decision.ALLOW, "") if self._privileged(user) else (Decision.NO_OPINION, "")

    def rules_for(self, user: User, namespace: str) -> Rules:
        """Nothing: as in kube-apiserver, this authorizer is no rule resolver; masters' rules come from the
        cluster-admin ClusterRoleBinding."""
        return Rules()


class Union:
    def __init__(self, authorizers: Sequence[Authorizer]):
        self.authorizers = list(authorizers)

    def decide(self, user: User, info: RequestInfo) -> tuple[bool, str]:
        reasons = []
        for authorizer in self.authorizers:
            decision, reason = authorizer.authorize(user, info)
            if decision is not Decision.NO_OPINION:
                return decision is Decision.ALLOW, reason
            if reason:
                reasons.append(reason)
        return False, ", ".join(reasons)

    def rules_for(self, user: User, namespace: str) -> Rules:
        rules = Rules()
        for authorizer in self.authorizers:
            rules.extend(authorizer.rules_for(user, namespace))
        return rules


def forbidden(user: User, info: RequestInfo, reason: str) -> APIError:
    """The 403 Kubernetes answers for a denied request (responsewriters.forbiddenMessage): resource requests as
    api.errors.forbidden words them, others `forbidden: User "alice" cannot get path "/metrics"`."""
    if info.is_resource_request:
        return errors.forbidden(user.name, info.verb, info.resource, info.api_group, info.namespace, info.name,
                                info.subresource, reason)
    message = f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"'
    return APIError(403, "Forbidden", f"{message}: {reason}" if reason else message, {})
