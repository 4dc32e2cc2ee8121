"""The review resources: created, never stored; each answer is the posted object with `status` filled in.

authorization.k8s.io    SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview (`kubectl auth can-i`),
                        SelfSubjectRulesReview (`kubectl auth can-i --list`)
authentication.k8s.io   TokenReview, SelfSubjectReview (`kubectl auth whoami`; v1, v1beta1 and v1alpha1 bodies alike)

Each handler is an http.context.VirtualCreate: (body, user, request info) -> the filled-in object.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kpy_components.api import errors
from kpy_components.apiserver.auth.authz import Rules, aggregate
from kpy_components.apiserver.auth.tokens import InvalidToken, TokenResult
from kpy_components.apiserver.http.context import RequestInfo, User, VirtualCreate, resolve

AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"

Authorize = Callable[[User, RequestInfo], "tuple[bool, str] | Awaitable[tuple[bool, str]]"]
RulesFor = Callable[[User, str], Rules]
ValidateToken = Callable[[str, "tuple[str, ...] | None"], Awaitable[TokenResult]]


def _answer(body: dict, info: RequestInfo, kind: str, status: dict) -> dict:
    """The posted object as Kubernetes returns it: same kind and version, metadata kept, status set."""
    group_version = f"{info.api_group}/{info.api_version}" if info.api_group else info.api_version
    return {"kind": kind, "apiVersion": group_version or body.get("apiVersion", ""),
            "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None},
            "spec": body.get("spec") or {}, "status": status}


def _invalid(kind: str, group: str, field: str, message: str) -> errors.APIError:
    return errors.invalid(kind, "", [errors.Cause(field, message)], group)


def user_info(user: User) -> dict:
    info = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra.items()}
    return info


def _attributes(kind: str, spec: dict) -> RequestInfo:
    """The request a review asks about, from spec.resourceAttributes or spec.nonResourceAttributes."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise _invalid(kind, AUTHZ, "spec.resourceAttributes", 'Invalid value: "null": exactly one of '
                       "nonResourceAttributes or resourceAttributes must be specified")
    if non_resource is not None:
        return RequestInfo(verb=non_resource.get("verb", ""), path=non_resource.get("path", ""),
                           is_resource_request=False)
    return RequestInfo(verb=resource.get("verb", ""), path="", is_resource_request=True,
                       api_group=resource.get("group", ""), api_version=resource.get("version", ""),
                       resource=resource.get("resource", ""), subresource=resource.get("subresource", ""),
                       namespace=resource.get("namespace", ""), name=resource.get("name", ""))


def _access_status(allowed: bool, reason: str) -> dict:
    status = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status


@dataclass
class Reviews:
    authorize: Authorize
    rules_for: RulesFor
    validate_token: ValidateToken

    async def _access(self, kind: str, body: dict, subject: User, info: RequestInfo) -> dict:
        attributes = _attributes(kind, body.get("spec") or {})
        allowed, reason = await resolve(self.authorize(subject, attributes))
        return _answer(body, info, kind, _access_status(allowed, reason))

    async def self_subject_access_review(self, body: dict, user: User, info: RequestInfo) -> dict:
        return await self._access("SelfSubjectAccessReview", body, user, info)

    async def subject_access_review(self, body: dict, user: User, info: RequestInfo) -> dict:
        return await self._access("SubjectAccessReview", body, _subject(body, "SubjectAccessReview"), info)

    async def local_subject_access_review(self, body: dict, user: User, info: RequestInfo) -> dict:
        kind = "LocalSubjectAccessReview"
        spec = body.get("spec") or {}
        namespace = (spec.get("resourceAttributes") or {}).get("namespace", "")
        if spec.get("nonResourceAttributes") is not None:
            raise _invalid(kind, AUTHZ, "spec.nonResourceAttributes", "Invalid value: disallowed on this kind of "
                           "request")
        if namespace != info.namespace:
            raise _invalid(kind, AUTHZ, "spec.resourceAttributes.namespace",
                           f'Invalid value: "{namespace}": must match metadata.namespace')
        answer = await self._access(kind, body, _subject(body, kind), info)
        answer["metadata"]["namespace"] = info.namespace
        return answer

    async def self_subject_rules_review(self, body: dict, user: User, info: RequestInfo) -> dict:
        namespace = (body.get("spec") or {}).get("namespace", "")
        rules = self.rules_for(user, namespace)
        status = {
            "resourceRules": [_without_empty({"verbs": list(r.verbs), "apiGroups": list(r.api_groups),
                                              "resources": list(r.resources),
                                              "resourceNames": list(r.resource_names)})
                              for r in rules.resource_rules],
            "nonResourceRules": [{"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)}
                                 for r in rules.non_resource_rules],
            "incomplete": rules.incomplete,
        }
        if rules.errors:
            status["evaluationError"] = aggregate(rules.errors)
        return _answer(body, info, "SelfSubjectRulesReview", status)

    async def token_review(self, body: dict, user: User, info: RequestInfo) -> dict:
        spec = body.get("spec") or {}
        token = spec.get("token")
        if not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        audiences = tuple(spec.get("audiences") or ()) or None
        try:
            result = await self.validate_token(token, audiences)
        except InvalidToken as error:
            return _answer(body, info, "TokenReview", {"authenticated": False, "user": {}, "error": str(error)})
        status = {"authenticated": True, "user": user_info(result.user)}
        if audiences or result.audiences:
            status["audiences"] = list(result.audiences)
        return _answer(body, info, "TokenReview", status)

    async def self_subject_review(self, body: dict, user: User, info: RequestInfo) -> dict:
        answer = _answer(body, info, "SelfSubjectReview", {"userInfo": user_info(user)})
        answer.pop("spec")  # SelfSubjectReview has no spec
        return answer

    def handlers(self) -> dict[tuple[str, str], VirtualCreate]:
        """(group, plural) -> handler, for http.context.Security.virtual."""
        return {(AUTHZ, "selfsubjectaccessreviews"): self.self_subject_access_review,
                (AUTHZ, "subjectaccessreviews"): self.subject_access_review,
                (AUTHZ, "localsubjectaccessreviews"): self.local_subject_access_review,
                (AUTHZ, "selfsubjectrulesreviews"): self.self_subject_rules_review,
                (AUTHN, "tokenreviews"): self.token_review,
                (AUTHN, "selfsubjectreviews"): self.self_subject_review}


def _subject(body: dict, kind: str) -> User:
    spec = body.get("spec") or {}
    if not spec.get("user") and not spec.get("groups"):
        raise _invalid(kind, AUTHZ, "spec.user", 'Invalid value: "": at least one of user or group must be '
                       "specified")
    extra = {key: tuple(values) for key, values in (spec.get("extra") or {}).items() if isinstance(values, list)}
    return User(spec.get("user") or "", tuple(spec.get("groups") or ()), uid=spec.get("uid") or "", extra=extra)


def _without_empty(rule: dict) -> dict:
    return {key: value for key, value in rule.items() if value or key == "verbs"}
