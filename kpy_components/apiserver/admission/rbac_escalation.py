"""RBAC privilege-escalation prevention (pkg/registry/rbac: escalation_check.go, validation/rule.go): nobody grants
permissions they do not hold.
  - Writing a Role/ClusterRole needs every rule in it to be covered by the writer's own rules (in the role's
    namespace), unless the writer may `escalate` that role; an aggregationRule needs full authority (`*` on `*.*`).
  - Writing a RoleBinding/ClusterRoleBinding needs the writer to hold every rule of the referenced role, unless they
    may `bind` it.
system:masters is never checked. The refusal reads as kube-apiserver's:
    clusterroles.rbac.authorization.k8s.io "x" is forbidden: user "alice" (groups=["dev" "system:authenticated"])
    is attempting to grant RBAC permissions not currently held:
    {APIGroups:["apps"], Resources:["deployments"], Verbs:["delete"]}
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.apiserver.auth.authz import MASTERS, Rules
from kpy_components.apiserver.auth.rules import PolicyRule, go_quoted, missing_rules, rules_of
from kpy_components.apiserver.http.context import InternalAPI, RequestInfo, User

GROUP = "rbac.authorization.k8s.io"
_ROLES = ("roles", "clusterroles")
_BINDINGS = {"rolebindings": "Role", "clusterrolebindings": "ClusterRole"}
_FULL_AUTHORITY = [PolicyRule(("*",), ("*",), ("*",)), PolicyRule(("*",), non_resource_urls=("*",))]

Authorize = Callable[[User, RequestInfo], Awaitable[tuple[bool, str]]]
RulesFor = Callable[[User, str], Rules]


class RBACEscalation:
    def __init__(self, api: InternalAPI, authorize: Authorize, rules_for: RulesFor,
                 refresh: Callable[[], Awaitable[None]] | None = None):
        """`refresh` brings `rules_for`'s view up to date; it is awaited once before a refusal."""
        self.api, self.authorize, self.rules_for, self.refresh = api, authorize, rules_for, refresh

    async def validate(self, attributes: Attributes) -> None:
        info = attributes.info
        if info.api_group != GROUP or info.subresource or attributes.operation not in ("CREATE", "UPDATE"):
            return
        if MASTERS in attributes.user.groups or attributes.obj is None:
            return
        if info.resource in _ROLES:
            await self._role(attributes)
        elif info.resource in _BINDINGS:
            await self._binding(attributes)

    async def _allowed(self, user: User, verb: str, resource: str, namespace: str, name: str) -> bool:
        allowed, _ = await self.authorize(user, RequestInfo(
            verb=verb, path="", is_resource_request=True, api_group=GROUP, api_version="v1", resource=resource,
            namespace=namespace, name=name))
        return allowed

    async def _role(self, attributes: Attributes) -> None:
        info, user, role = attributes.info, attributes.user, attributes.obj
        if await self._allowed(user, "escalate", info.resource, info.namespace, attributes.name):
            return
        await self._confirm_held(attributes, list(rules_of(role)))
        if role.get("aggregationRule"):
            held = self.rules_for(user, "")
            if missing_rules(held.resource_rules + held.non_resource_rules, _FULL_AUTHORITY):
                raise forbidden(attributes, "must have cluster-admin privileges to use the aggregationRule")

    async def _binding(self, attributes: Attributes) -> None:
        info, user, binding = attributes.info, attributes.user, attributes.obj
        ref = binding.get("roleRef") or {}
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind not in ("Role", "ClusterRole") or (kind == "Role" and info.resource == "clusterrolebindings"):
            return  # validation refuses the reference
        plural = "roles" if kind == "Role" else "clusterroles"
        if await self._allowed(user, "bind", plural, info.namespace, name):
            return
        try:
            role = await self.api.get(GROUP, plural, info.namespace if kind == "Role" else "", name)
        except APIError as error:
            if error.code != 404:
                raise
            raise forbidden(attributes, f'{plural[:-1]}.{GROUP} "{name}" not found') from None
        await self._confirm_held(attributes, list(rules_of(role)))

    def _missing(self, attributes: Attributes, rules: list[PolicyRule]) -> tuple[list[PolicyRule], Rules]:
        held = self.rules_for(attributes.user, attributes.namespace)
        return missing_rules(held.resource_rules + held.non_resource_rules, rules), held

    async def _confirm_held(self, attributes: Attributes, rules: list[PolicyRule]) -> None:
        missing, held = self._missing(attributes, rules)
        if missing and self.refresh is not None:
            await self.refresh()
            missing, held = self._missing(attributes, rules)
        if missing:
            user = attributes.user
            message = (f'user "{user.name}" (groups={go_quoted(user.groups)}) is attempting to grant RBAC '
                       "permissions not currently held:\n" + "\n".join(str(rule) for rule in missing))
            if held.errors:
                message += f"; resolution errors: [{', '.join(held.errors)}]"
            raise forbidden(attributes, message)
