"""The RBAC authorizer over Roles, ClusterRoles, RoleBindings and ClusterRoleBindings held in memory.

`RBACIndex` keeps the four kinds as the server hands them over (`replace` after a list, `apply` per watch event)
and rebuilds its lookups lazily after a change. ClusterRoles with an aggregationRule also carry the rules of every
ClusterRole their selectors match (transitively), so admin/edit/view work before any aggregation controller runs.

Decisions and reasons are worded as kube-apiserver's (plugin/pkg/auth/authorizer/rbac): allowed requests say
`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`; denials carry no reason unless a
binding points at a missing role: `RBAC: clusterrole.rbac.authorization.k8s.io "y" not found`.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

from kpy_components.api.errors import APIError
from kpy_components.api.meta import labels_of
from kpy_components.api.selectors import label_selector_from_dict
from kpy_components.apiserver.auth.authz import Decision, Rules, aggregate
from kpy_components.apiserver.auth.rules import PolicyRule, describe_subject, rules_of, subject_key, user_keys
from kpy_components.apiserver.http.context import RequestInfo, User

GROUP = "rbac.authorization.k8s.io"
PLURALS = ("clusterroles", "clusterrolebindings", "roles", "rolebindings")

Binding = tuple[dict, dict]  # (binding object, the subject of it that matched)


def _key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class RBACIndex:
    def __init__(self):
        self._objects: dict[str, dict[tuple[str, str], dict]] = {plural: {} for plural in PLURALS}
        self._stale = True
        self._cluster_bindings: dict[tuple[str, str], list[Binding]] = {}
        self._role_bindings: dict[str, dict[tuple[str, str], list[Binding]]] = {}
        self._effective: dict[str, tuple[PolicyRule, ...]] = {}

    # --- feeding ---------------------------------------------------------------------------------------------------

    def replace(self, plural: str, items: list[dict]) -> None:
        self._objects[plural] = {_key(obj): obj for obj in items}
        self._stale = True

    def apply(self, plural: str, event_type: str, obj: dict) -> None:
        """A watch event (ADDED, MODIFIED, DELETED; BOOKMARK is ignored)."""
        if event_type == "DELETED":
            self._objects[plural].pop(_key(obj), None)
        elif event_type in ("ADDED", "MODIFIED"):
            self._objects[plural][_key(obj)] = obj
        else:
            return
        self._stale = True

    # --- lookups ---------------------------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        cluster: dict[tuple[str, str], list[Binding]] = defaultdict(list)
        namespaced: dict[str, dict[tuple[str, str], list[Binding]]] = defaultdict(lambda: defaultdict(list))
        for plural, target in (("clusterrolebindings", None), ("rolebindings", namespaced)):
            for (namespace, _), binding in sorted(self._objects[plural].items()):
                for subject in binding.get("subjects") or []:
                    key = subject_key(subject, namespace) if isinstance(subject, dict) else None
                    if key is not None:
                        (cluster if target is None else target[namespace])[key].append((binding, subject))
        self._cluster_bindings, self._role_bindings, self._effective = cluster, namespaced, {}
        self._stale = False

    def _fresh(self) -> None:
        if self._stale:
            self._rebuild()

    def cluster_bindings_for(self, user: User) -> list[Binding]:
        self._fresh()
        return _matching(self._cluster_bindings, user)

    def role_bindings_for(self, user: User, namespace: str) -> list[Binding]:
        self._fresh()
        return _matching(self._role_bindings.get(namespace, {}), user)

    def role_rules(self, namespace: str, name: str) -> tuple[PolicyRule, ...] | None:
        role = self._objects["roles"].get((namespace, name))
        return None if role is None else rules_of(role)

    def cluster_role_rules(self, name: str) -> tuple[PolicyRule, ...] | None:
        """The ClusterRole's own rules plus those aggregated into it; None when it does not exist."""
        self._fresh()
        if name not in self._effective:
            if ("", name) not in self._objects["clusterroles"]:
                return None
            self._effective[name] = self._aggregate(name, frozenset())
        return self._effective[name]

    def _aggregate(self, name: str, seen: frozenset[str]) -> tuple[PolicyRule, ...]:
        role = self._objects["clusterroles"][("", name)]
        rules = list(rules_of(role))
        selectors = []
        for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
            try:
                selectors.append(label_selector_from_dict(selector))
            except APIError:
                continue  # validation refuses bad selectors on write; an old bad one selects nothing
        for (_, other), obj in sorted(self._objects["clusterroles"].items()):
            if other != name and other not in seen and any(s.matches(labels_of(obj)) for s in selectors):
                rules.extend(self._aggregate(other, seen | {name}))
        return tuple(dict.fromkeys(rules))


def _matching(index: dict[tuple[str, str], list[Binding]], user: User) -> list[Binding]:
    found, seen = [], set()
    for key in user_keys(user):
        for binding, subject in index.get(key, ()):
            if id(binding) not in seen:
                seen.add(id(binding))
                found.append((binding, subject))
    return found


# --- the authorizer --------------------------------------------------------------------------------------------------

Visit = tuple[Callable[[], str] | None, PolicyRule | None, str | None]  # (describe source, rule, error)


class RBACAuthorizer:
    def __init__(self, index: RBACIndex):
        self.index = index

    def _role_ref_rules(self, ref: dict, namespace: str) -> tuple[tuple[PolicyRule, ...], str | None]:
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "ClusterRole":
            rules = self.index.cluster_role_rules(name)
            return (rules, None) if rules is not None else ((), f'clusterrole.{GROUP} "{name}" not found')
        if kind == "Role" and namespace:
            rules = self.index.role_rules(namespace, name)
            return (rules, None) if rules is not None else ((), f'role.{GROUP} "{name}" not found')
        return (), f"unsupported role reference kind: {kind!r}"

    def visit(self, user: User, namespace: str) -> Iterator[Visit]:
        """Every rule that applies to the user in the namespace (cluster-wide ones first), with its source."""
        for binding, subject in self.index.cluster_bindings_for(user):
            yield from self._visit_binding("ClusterRoleBinding", binding, subject, "")
        if namespace:
            for binding, subject in self.index.role_bindings_for(user, namespace):
                yield from self._visit_binding("RoleBinding", binding, subject, namespace)

    def _visit_binding(self, kind: str, binding: dict, subject: dict, namespace: str) -> Iterator[Visit]:
        ref = binding.get("roleRef") or {}
        rules, error = self._role_ref_rules(ref, namespace)
        if error:
            yield None, None, error
            return
        name = binding["metadata"]["name"] + (f"/{namespace}" if namespace else "")

        def describe() -> str:
            return (f'{kind} "{name}" of {ref.get("kind")} "{ref.get("name")}" to '
                    f"{describe_subject(subject, namespace)}")
        for rule in rules:
            yield describe, rule, None

    def authorize(self, user: User, info: RequestInfo) -> tuple[Decision, str]:
        problems = []
        for describe, rule, error in self.visit(user, info.namespace):
            if error:
                problems.append(error)
            elif rule.allows(info):
                return Decision.ALLOW, f"RBAC: allowed by {describe()}"
        return Decision.NO_OPINION, f"RBAC: {aggregate(problems)}" if problems else ""

    def rules_for(self, user: User, namespace: str) -> Rules:
        rules = Rules()
        for _, rule, error in self.visit(user, namespace):
            if error:
                rules.errors.append(error)
                rules.incomplete = True
                continue
            if rule.resources:
                rules.resource_rules.append(rule)
            if rule.non_resource_urls:
                rules.non_resource_rules.append(rule)
        return rules
