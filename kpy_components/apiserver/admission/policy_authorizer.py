"""The `authorizer` variable of ValidatingAdmissionPolicy expressions: upstream's CEL authz library, answered by the
API server's own authorizers (RBAC, Node, privileged groups) for the requesting user.

    authorizer.group('apps').resource('deployments').namespace('ns').name('web').check('update').allowed()
    authorizer.group('').resource('pods').subresource('exec').check('create').reason()
    authorizer.path('/healthz').check('get').allowed()
    authorizer.serviceAccount('ns', 'sa').group('').resource('secrets').check('list').allowed()
    authorizer.requestResource.check('delete').allowed()      # the request's own group/resource/namespace/name

A Decision answers allowed(), reason(), errored() and error(); an authorizer that fails makes a Decision that is
errored and not allowed, as upstream's does.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from celpy import celtypes

from kpy_components.apiserver.http.context import RequestInfo, User

log = logging.getLogger(__name__)
Decide = Callable[[User, RequestInfo], "tuple[bool, str]"]
_REQUEST_RESOURCE = celtypes.StringType("requestResource")


def allow_all(user: User, info: RequestInfo) -> tuple[bool, str]:
    return True, "no authorizer configured"


class Authorizer(celtypes.MapType):
    """`authorizer` (a map, so that `authorizer.requestResource` selects the request's own resource check)."""

    def __init__(self, user: User, decide: Decide, request: RequestInfo | None = None):
        own = {} if request is None else {_REQUEST_RESOURCE: _ResourceCheck(
            self, request.api_group, request.resource, request.subresource, request.namespace, request.name)}
        super().__init__(own)
        self.user, self.decide = user, decide

    def __hash__(self):
        return id(self)


@dataclasses.dataclass(frozen=True)
class _ResourceCheck:
    authorizer: Authorizer
    group: str
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclasses.dataclass(frozen=True)
class _PathCheck:
    authorizer: Authorizer
    path: str


@dataclasses.dataclass(frozen=True)
class _Decision:
    allowed: bool
    reason: str
    error: str = ""


def _check(target, verb) -> _Decision:
    if isinstance(target, _PathCheck):
        info = RequestInfo(verb=str(verb).lower(), path=target.path, is_resource_request=False)
    elif isinstance(target, _ResourceCheck):
        info = RequestInfo(verb=str(verb), path="", is_resource_request=True, api_group=target.group,
                           resource=target.resource, subresource=target.subresource, namespace=target.namespace,
                           name=target.name)
    else:
        raise TypeError(f"no such overload: check on {type(target).__name__}")
    try:
        allowed, reason = target.authorizer.decide(target.authorizer.user, info)
    except Exception as error:  # an authorizer failing: an errored decision, as upstream
        log.warning("Authorizer failed in an admission policy expression error=%r", str(error))
        return _Decision(False, "", str(error))
    return _Decision(bool(allowed), reason or "")


def _service_account(authorizer: Authorizer, namespace, name) -> Authorizer:
    namespace, name = str(namespace), str(name)
    user = User(f"system:serviceaccount:{namespace}:{name}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))
    return Authorizer(user, authorizer.decide)


def _narrow(field: str):
    def narrow(check, value):
        if not isinstance(check, _ResourceCheck):
            raise TypeError(f"no such overload: {field} on {type(check).__name__}")
        return dataclasses.replace(check, **{field: str(value)})
    return narrow


FUNCTIONS = {
    "group": lambda authorizer, group: _ResourceCheck(authorizer, str(group)),
    "path": lambda authorizer, path: _PathCheck(authorizer, str(path)),
    "serviceAccount": _service_account,
    "resource": _narrow("resource"), "subresource": _narrow("subresource"), "namespace": _narrow("namespace"),
    "name": _narrow("name"),
    "check": _check,
    "allowed": lambda decision: celtypes.BoolType(decision.allowed),
    "reason": lambda decision: celtypes.StringType(decision.reason),
    "errored": lambda decision: celtypes.BoolType(bool(decision.error)),
    "error": lambda decision: celtypes.StringType(decision.error),
}
