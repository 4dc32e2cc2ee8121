"""ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in 1.30): policies with CEL `validations`, bound
by ValidatingAdmissionPolicyBindings, evaluated in-process with cel-python.

A binding applies its policy to writes that the policy's matchConstraints and the binding's matchResources pick
(rules, excluded rules, resource names, namespace and object selectors) and whose matchConditions hold. With a
paramKind, the binding's paramRef names the parameter object (by name, in the request's namespace unless it says
one, or by selector: each match is evaluated); none found is a denial unless parameterNotFoundAction is Allow.
With matchPolicy Equivalent (the default) a rule naming another served version of the same resource (HPAs in
autoscaling/v1 and v2, a CRD's versions) matches too, and the expressions see the object in the rule's version.
Expressions see object, oldObject, request, params, namespaceObject (the request's Namespace; null for cluster-scoped
resources), variables (spec.variables, in order) and authorizer (policy_authorizer.py: the server's authorizers for
the requesting user). A false validation is reported per the binding's validationActions: Deny (422 Invalid,
upstream's wording), Warn (a `Warning:` header), Audit (logged). auditAnnotations are evaluated for every admitted
or denied request and logged as `<policy>/<key>=<value>` (kpy keeps no audit log of its own; null values are left
out). An expression that fails to evaluate follows the policy's failurePolicy.
"""
from __future__ import annotations

import dataclasses
import logging

import celpy

from kpy_components.api import errors, meta, selectors
from kpy_components.api.errors import Cause
from kpy_components.apiserver.http.context import write_options
from kpy_components.apiserver.registry import conversion

from . import policy_authorizer
from .chain import Attributes
from .webhooks import GROUP, matches, review_request

log = logging.getLogger(__name__)
_environment = celpy.Environment()
_REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}
_programs: dict[str, object] = {}


class _Failed(Exception):
    """An expression could not be evaluated."""


def _evaluate(expression: str, activation: dict):
    program = _programs.get(expression)
    try:
        if program is None:
            program = _programs[expression] = _environment.program(_environment.compile(expression),
                                                                   functions=policy_authorizer.FUNCTIONS)
        result = program.evaluate(activation)
    except Exception as error:  # parse or evaluation errors alike: the policy's failure policy decides
        raise _Failed(f"expression '{expression}' resulted in error: {error}") from error
    if isinstance(result, celpy.CELEvalError):
        raise _Failed(f"expression '{expression}' resulted in error: {result.args[0] if result.args else result}")
    return result


def _converted(obj: dict | None, group: str, plural: str, version: str) -> dict | None:
    """An object of one served version of a resource as another served version sees it (built-in conversions; the
    versions of a CRD with conversion None differ only in apiVersion)."""
    if obj is None:
        return None
    stored = obj
    current = str(obj.get("apiVersion", "")).rsplit("/", 1)[-1]
    if (group, current, plural) in conversion.VERSIONS:
        stored = conversion.VERSIONS[(group, current, plural)][0](obj)
    if (group, version, plural) in conversion.VERSIONS:
        return conversion.VERSIONS[(group, version, plural)][1](stored)
    out = dict(stored)
    out["apiVersion"] = f"{group}/{version}" if group else version
    return out


class ValidatingAdmissionPolicies:
    def __init__(self, api, decide: policy_authorizer.Decide | None = None):
        self.api = api
        self.decide = decide or policy_authorizer.allow_all

    def _equivalents(self, attributes: Attributes) -> list[Attributes]:
        """The write as each other served version of its resource sees it (matchPolicy Equivalent)."""
        info = attributes.info
        out = []
        for other in self.api.registry:
            if (other.group, other.plural) == (info.api_group, info.resource) and other.version != info.api_version:
                out.append(dataclasses.replace(
                    attributes, info=dataclasses.replace(info, api_version=other.version),
                    obj=_converted(attributes.obj, other.group, other.plural, other.version),
                    old=_converted(attributes.old, other.group, other.plural, other.version)))
        return out

    async def _matched(self, attributes: Attributes, constraints: dict) -> Attributes | None:
        """The write as the policy's matchConstraints match it: as made, else (matchPolicy Equivalent, the
        default) as an equivalent version of its resource; None if neither."""
        candidates = [attributes]
        if constraints.get("matchPolicy", "Equivalent") == "Equivalent":
            candidates += self._equivalents(attributes)
        for candidate in candidates:
            if await matches(self.api, candidate, constraints.get("resourceRules"),
                             constraints.get("namespaceSelector"), constraints.get("objectSelector"),
                             constraints.get("excludeResourceRules")):
                return candidate
        return None

    async def validate(self, attributes: Attributes) -> None:
        bindings = await self.api.list(GROUP, "validatingadmissionpolicybindings", resource_version="0")
        if not bindings:
            return
        policies = {meta.name_of(p): p for p in await self.api.list(GROUP, "validatingadmissionpolicies",
                                                                    resource_version="0")}
        for binding in sorted(bindings, key=meta.name_of):
            spec = binding.get("spec") or {}
            policy = policies.get(spec.get("policyName", ""))
            if policy is not None:
                await self._apply(policy, binding, attributes)

    async def _apply(self, policy: dict, binding: dict, attributes: Attributes) -> None:
        spec, bound = policy.get("spec") or {}, binding.get("spec") or {}
        attributes = await self._matched(attributes, spec.get("matchConstraints") or {})
        if attributes is None:
            return
        chosen = bound.get("matchResources")
        if chosen and not await matches(self.api, attributes, chosen.get("resourceRules") or [{
                "operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
                chosen.get("namespaceSelector"), chosen.get("objectSelector"), chosen.get("excludeResourceRules")):
            return
        who = f"ValidatingAdmissionPolicy '{meta.name_of(policy)}' with binding '{meta.name_of(binding)}'"
        try:
            namespace = await self._namespace_object(attributes)
            for params in await self._params(spec, bound, attributes, who):
                self._check(spec, bound, attributes, params, who, namespace, meta.name_of(policy))
        except _Failed as failure:
            if spec.get("failurePolicy") == "Ignore":
                log.warning("Ignored a failing admission policy %s: %s", who, failure)
                return
            raise self._denial(attributes, f"{who} denied request: {failure}", "Invalid") from failure

    async def _namespace_object(self, attributes: Attributes) -> dict | None:
        info = attributes.info
        resource = self.api.registry.get(info.api_group, info.api_version, info.resource)
        if resource is None or not resource.namespaced or not attributes.namespace:
            return None
        try:
            return await self.api.peek("", "namespaces", "", attributes.namespace)
        except errors.APIError:
            return None

    async def _params(self, spec: dict, bound: dict, attributes: Attributes, who: str) -> list:
        kind = spec.get("paramKind")
        if not kind:
            return [None]
        ref = bound.get("paramRef") or {}
        info = self.api.registry.for_kind(kind.get("apiVersion", ""), kind.get("kind", ""))
        found = []
        if info is not None:
            namespace = (ref.get("namespace") or attributes.namespace) if info.namespaced else ""
            if ref.get("name"):
                try:
                    found = [await self.api.get(info.group, info.plural, namespace, ref["name"])]
                except errors.APIError as error:
                    if error.code != 404:
                        raise
            elif ref.get("selector") is not None:
                selector = selectors.format_label_selector(ref["selector"])
                found = await self.api.list(info.group, info.plural, namespace, label_selector=selector,
                                            resource_version="0")
        if found:
            return found
        if ref.get("parameterNotFoundAction") == "Allow":
            return []
        raise self._denial(attributes, f"{who} denied request: failed to configure binding: no params found for "
                           "policy binding with `Deny` parameterNotFoundAction", "Invalid")

    def _check(self, spec: dict, bound: dict, attributes: Attributes, params, who: str,
               namespace: dict | None = None, policy_name: str = "") -> dict[str, str]:
        """Evaluates one policy for one param; raises the denial, returns the audit annotations."""
        request = review_request(self.api, attributes, False)
        activation = {"object": celpy.json_to_cel(attributes.obj), "oldObject": celpy.json_to_cel(attributes.old),
                      "request": celpy.json_to_cel(request), "params": celpy.json_to_cel(params),
                      "namespaceObject": celpy.json_to_cel(namespace),
                      "authorizer": policy_authorizer.Authorizer(attributes.user, self.decide, attributes.info)}
        computed = {}
        for variable in spec.get("variables") or []:
            activation["variables"] = celpy.json_to_cel({}) if not computed else celpy.celtypes.MapType(computed)
            computed[celpy.celtypes.StringType(variable.get("name", ""))] = _evaluate(variable.get("expression", ""),
                                                                                      activation)
        activation["variables"] = celpy.celtypes.MapType(computed)
        for condition in spec.get("matchConditions") or []:
            if not bool(_evaluate(condition.get("expression", "false"), activation)):
                return {}
        actions = bound.get("validationActions") or ["Deny"]
        annotations = self._audit_annotations(spec, activation, policy_name)
        for validation in spec.get("validations") or []:
            expression = validation.get("expression", "")
            if bool(_evaluate(expression, activation)):
                continue
            message = validation.get("message") or ""
            if not message and validation.get("messageExpression"):
                try:
                    message = str(_evaluate(validation["messageExpression"], activation))
                except _Failed:
                    message = ""
            message = message or f"failed expression: {expression}"
            if "Warn" in actions:
                options = write_options.get()
                if options is not None:
                    options.warnings.append(f"Validation failed for {who}: {message}")
            if "Audit" in actions:
                log.info("Admission policy failed (audit) %s message=%s", who, message)
            if "Deny" in actions:
                raise self._denial(attributes, f"{who} denied request: {message}", validation.get("reason") or
                                   "Invalid")
        return annotations

    @staticmethod
    def _audit_annotations(spec: dict, activation: dict, policy_name: str) -> dict[str, str]:
        """`<policy>/<key>` -> value of each auditAnnotation whose valueExpression is not null (logged)."""
        out = {}
        for annotation in spec.get("auditAnnotations") or []:
            expression = annotation.get("valueExpression", "")
            value = _evaluate(expression, activation)
            if value is None:
                continue
            if not isinstance(value, str):
                raise _Failed(f"valueExpression '{expression}' resulted in error: must evaluate to a string or null, "
                              f"got {type(value).__name__}")
            key = f"{policy_name}/{annotation.get('key', '')}"
            out[key] = str(value)
            log.info("Admission policy audit annotation %s=%s", key, value)
        return out

    @staticmethod
    def _denial(attributes: Attributes, message: str, reason: str) -> errors.APIError:
        info = attributes.info
        if reason == "Invalid":
            return errors.invalid(info.resource, attributes.name, [Cause("", message)], info.api_group)
        code = _REASON_CODES.get(reason, 403)
        return errors.APIError(code, reason, message)
