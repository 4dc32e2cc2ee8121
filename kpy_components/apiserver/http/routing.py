"""URL paths to `RequestInfo`, as Kubernetes' RequestInfoFactory reads them.

    /api/v1/<resource>[/<name>[/<subresource>]]                         core group, cluster scope or all namespaces
    /api/v1/namespaces/<ns>/<resource>[/<name>[/<subresource>]]         core group, one namespace
    /apis/<group>/<version>/...                                         the same shapes for named groups
    /api/v1/namespaces/<ns>[/status|/finalize]                          the namespace itself (namespace = its name)
Anything else (`/api`, `/apis/<group>`, `/version`, `/openapi/v3`, ...) is a non-resource request.
"""
from __future__ import annotations

from .context import RequestInfo

# Subresources of a namespace that are not a resource inside it: /namespaces/foo/status is namespace foo's status.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_info(method: str, path: str, query) -> RequestInfo:
    """`query` is a mapping of query parameters (`watch=true` turns a GET into a watch)."""
    parts = [p for p in path.strip("/").split("/") if p]
    non_resource = RequestInfo(verb=method.lower(), path=path, is_resource_request=False)
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    if parts[0] == "api":
        if len(parts) < 3:  # /api, /api/v1
            return non_resource
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:  # /apis, /apis/<group>, /apis/<group>/<version>
            return non_resource
        group, version, rest = parts[1], parts[2], parts[3:]

    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if len(rest) > 3:
        return non_resource  # deeper paths (proxy) are not served

    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    if method.upper() in ("GET", "HEAD"):
        watching = str(query.get("watch", "")).lower() in ("true", "1")
        verb = "watch" if watching else ("get" if name else "list")
    elif verb == "delete" and not name:
        verb = "deletecollection"
    return RequestInfo(verb=verb, path=path, is_resource_request=True, api_group=group, api_version=version,
                       resource=resource, subresource=subresource, namespace=namespace, name=name)
