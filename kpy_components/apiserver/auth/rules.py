"""RBAC policy rules and subjects, matched as k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go does.

A rule allows a resource request when verb, API group, resource and resource name all match:
  - `*` matches every verb / group / resource; `pods` does not match the subresource `pods/log` (name it, or `*/log`,
    or `*`);
  - resourceNames, when set, restrict the rule to those names (a list or create, having no name, never matches);
A rule allows a non-resource request (`/healthz`, `/api`) when its verb matches and a nonResourceURL is the path,
`*`, or a prefix ending in `*`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from kpy_components.apiserver.auth.tokens import service_account_username
from kpy_components.apiserver.http.context import RequestInfo, User


@dataclass(frozen=True)
class PolicyRule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, rule: dict) -> PolicyRule:
        def strings(name):
            value = rule.get(name) or ()
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()
        return cls(strings("verbs"), strings("apiGroups"), strings("resources"), strings("resourceNames"),
                   strings("nonResourceURLs"))

    def to_dict(self) -> dict:
        fields = (("verbs", self.verbs), ("apiGroups", self.api_groups), ("resources", self.resources),
                  ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls))
        return {name: list(values) for name, values in fields if values or name == "verbs"}

    def allows(self, info: RequestInfo) -> bool:
        if not _verb_matches(self.verbs, info.verb):
            return False
        if not info.is_resource_request:
            return _url_matches(self.non_resource_urls, info.path)
        return (("*" in self.api_groups or info.api_group in self.api_groups)
                and _resource_matches(self.resources, info.resource, info.subresource)
                and (not self.resource_names or info.name in self.resource_names))

    def __str__(self) -> str:
        """As Kubernetes' CompactString prints a rule (escalation errors): `{APIGroups:["apps"], Verbs:["get"]}`."""
        parts = [f"{label}:{go_quoted(values)}" for label, values in (
            ("APIGroups", self.api_groups), ("Resources", self.resources), ("NonResourceURLs", self.non_resource_urls),
            ("ResourceNames", self.resource_names), ("Verbs", self.verbs)) if values]
        return "{" + ", ".join(parts) + "}"


def go_quoted(values) -> str:
    """Go's `%q` of a []string: `["a" "b"]`."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _verb_matches(verbs: tuple[str, ...], verb: str) -> bool:
    return "*" in verbs or verb in verbs


def _resource_matches(resources: tuple[str, ...], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    return any(r == "*" or r == combined or (subresource and r == f"*/{subresource}") for r in resources)


def _url_matches(urls: tuple[str, ...], path: str) -> bool:
    return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])) for u in urls)


def rules_of(obj: dict) -> tuple[PolicyRule, ...]:
    rules = obj.get("rules") or []
    return tuple(PolicyRule.from_dict(r) for r in rules if isinstance(r, dict))


# --- subjects ------------------------------------------------------------------------------------------------------

def subject_key(subject: dict, binding_namespace: str) -> tuple[str, str] | None:
    """("user", name) or ("group", name) the subject stands for; a ServiceAccount is the user
    system:serviceaccount:<ns>:<name> (its namespace defaults to the binding's). None for a subject that can
    match nobody."""
    kind, name = subject.get("kind"), subject.get("name") or ""
    if not name:
        return None
    if kind == "User":
        return "user", name
    if kind == "Group":
        return "group", name
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("user", service_account_username(namespace, name)) if namespace else None
    return None


def user_keys(user: User) -> list[tuple[str, str]]:
    return [("user", user.name), *(("group", group) for group in user.groups)]


def describe_subject(subject: dict, binding_namespace: str) -> str:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


# --- coverage (reconciling default roles; privilege-escalation checks) ------------------------------------------------

def _atoms(rule: PolicyRule):
    """The rule as (verb, group, resource, name) / (verb, url) atoms; name "" stands for "any name"."""
    for verb in rule.verbs:
        for url in rule.non_resource_urls:
            yield verb, url
        for group in rule.api_groups:
            for resource in rule.resources:
                for name in rule.resource_names or ("",):
                    yield verb, group, resource, name


def _atom_covered(owner: PolicyRule, atom: tuple) -> bool:
    if not _verb_matches(owner.verbs, atom[0]):
        return False
    if len(atom) == 2:
        return any(u == "*" or u == atom[1] or (u.endswith("*") and atom[1].startswith(u[:-1]))
                   for u in owner.non_resource_urls)
    _, group, resource, name = atom
    base, _, subresource = resource.partition("/")
    if not ("*" in owner.api_groups or group in owner.api_groups):
        return False
    if not any(r == "*" or r == resource or (subresource and base != "*" and r == f"*/{subresource}")
               for r in owner.resources):
        return False
    return not owner.resource_names or (name != "" and name in owner.resource_names)


def covers(owner_rules: tuple[PolicyRule, ...] | list[PolicyRule], rule: PolicyRule) -> bool:
    """True when every permission `rule` grants is granted by some rule of `owner_rules` (rbac validation.Covers)."""
    return all(any(_atom_covered(owner, atom) for owner in owner_rules) for atom in _atoms(rule))


def missing_rules(owner_rules, rules) -> list[PolicyRule]:
    """The permissions of `rules` that `owner_rules` do not grant, one rule per group/resource/name (or URL) with
    its verbs gathered, sorted by their text: what an escalation error lists."""
    verbs: dict[tuple, list[str]] = {}
    for rule in rules:
        for atom in _atoms(rule):
            if not any(_atom_covered(owner, atom) for owner in owner_rules):
                target = atom[1:]
                if atom[0] not in verbs.setdefault(target, []):
                    verbs[target].append(atom[0])
    missing = []
    for target, target_verbs in verbs.items():
        if len(target) == 1:
            missing.append(PolicyRule(tuple(target_verbs), non_resource_urls=target))
        else:
            group, resource, name = target
            missing.append(PolicyRule(tuple(target_verbs), (group,), (resource,), (name,) if name else ()))
    return sorted(missing, key=str)
