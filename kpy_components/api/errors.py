"""API errors as Kubernetes words them. Each renders as a `Status` object; clients map them back (from_status).

Messages follow Kubernetes' conventions, e.g. `pods "x" not found`, `deployments.apps "web" already exists`,
`Operation cannot be fulfilled on configmaps "c": the object has been modified; please apply your changes to the
latest version and try again`.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cause:
    """One field error: `field` is a path such as `spec.replicas` or `metadata.labels[app]`."""
    field: str
    message: str
    reason: str = "FieldValueInvalid"


_DETAILS_ORDER = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")


@dataclass
class APIError(Exception):
    code: int
    reason: str
    message: str
    details: dict = field(default_factory=dict)
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict:
        """The Status, its fields in upstream's order (kind, apiVersion, metadata, status, message, reason,
        details{name, group, kind, uid, causes, retryAfterSeconds}, code): clients and tests compare the bytes."""
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": self.message, "reason": self.reason}
        if self.details:
            ordered = {name: self.details[name] for name in _DETAILS_ORDER if name in self.details}
            status["details"] = {**ordered, **self.details}
        status["code"] = self.code
        return status

    @classmethod
    def from_status(cls, status: dict) -> APIError:
        return cls(status.get("code", 500), status.get("reason", "InternalError"), status.get("message", ""),
                   status.get("details", {}))


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource})


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    details = {"name": name, "kind": resource, **({"group": group} if group else {})}
    return APIError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists', details)


def conflict(resource: str, name: str, group: str = "", why: str = "the object has been modified; please apply "
             "your changes to the latest version and try again") -> APIError:
    details = {"name": name, "kind": resource, **({"group": group} if group else {})}
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}', details)


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> APIError:
    """422 worded as NewInvalid: `Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be
    greater than or equal to 0` (kubectl prints `The Deployment "web" is invalid: ...` from the details)."""
    # utilerrors.Aggregate's wording: one error as is, several as "[a, b]".
    parts = [f"{c.field}: {c.message}" for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = {"name": name, "kind": kind, **({"group": group} if group else {}),
               "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes]}
    what = f'{kind}.{group} "{name}"' if group else f'{kind} "{name}"'  # GroupKind.String() and %q
    return APIError(422, "Invalid", f"{what} is invalid: {summary}" if causes else f"{what} is invalid", details)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden(user: str, verb: str, resource: str, group: str, namespace: str = "", name: str = "",
              subresource: str = "", reason: str = "") -> APIError:
    """403 worded as Kubernetes does: `pods is forbidden: User "alice" cannot list resource "pods" in API group ""
    in the namespace "default"`."""
    full = f"{resource}/{subresource}" if subresource else resource
    subject = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = f'{subject} is forbidden: User "{user}" cannot {verb} resource "{full}" in API group "{group}"{scope}'
    if reason:
        message += f": {reason}"
    details = {"kind": resource, **({"name": name} if name else {}), **({"group": group} if group else {})}
    return APIError(403, "Forbidden", message, details)


def gone(message: str) -> APIError:
    """410, e.g. a watch or list from a compacted resourceVersion: informers re-list on it."""
    return APIError(410, "Expired", message)


def too_many_requests(message: str, retry_after: int = 5) -> APIError:
    return APIError(429, "TooManyRequests", message, retry_after=retry_after)


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                    f'accepted media types include: application/json, application/yaml, '
                    f'application/vnd.kubernetes.protobuf (got "{content_type}")')


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")
