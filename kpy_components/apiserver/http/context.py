"""The seam between the HTTP layer and security (authentication, authorization, admission).

The HTTP app parses every request into a `RequestInfo`, then calls, in this order:
  1. `Security.authenticate(request)` -> `User | None`  (None: 401 Unauthorized)
  2. `Security.authorize(user, info)`  -> `(allowed, reason)` (denied: 403 worded by `api.errors.forbidden`)
  3. for writes, after the strategy's defaulting and before validation and storage:
     `Security.admit(operation, info, obj, old, user)` — may change `obj` in place or raise `APIError`.
Each hook may be a plain function or a coroutine function; the app awaits results that are awaitable.

Security code reads and writes other objects (RBAC roles, namespaces, quotas, service accounts) through the
`InternalAPI` the server hands to its factory: no HTTP, no authorization, no admission.
"""
from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclass(frozen=True)
class User:
    """Who made the request. x509: name = CN, groups = O. Authenticated users also carry `system:authenticated`."""
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class RequestInfo:
    """What a request is about, as Kubernetes' RequestInfoFactory sees it.

    Resource requests (`/api/v1/...`, `/apis/<group>/<version>/...`) fill group/version/resource and, when present,
    subresource, namespace and name; `verb` is one of `Verb` (a GET with `watch=true` is "watch", a GET of a
    collection is "list", a DELETE of a collection "deletecollection"). Other requests (`/version`, `/healthz`,
    `/api`, `/openapi/v3`, ...) have is_resource_request False and verb = the lower-case HTTP method ("get").
    """
    verb: str
    path: str
    is_resource_request: bool
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


Authenticate = Callable[[Any], "User | None | Awaitable[User | None]"]  # gets the aiohttp web.Request
Authorize = Callable[[User, RequestInfo], "tuple[bool, str] | Awaitable[tuple[bool, str]]"]
Admit = Callable[[str, RequestInfo, "dict | None", "dict | None", User], "None | Awaitable[None]"]
# A virtual resource's create (the reviews): gets the posted object, returns it with `status` filled in.
VirtualCreate = Callable[[dict, User, RequestInfo], "dict | Awaitable[dict]"]
# serviceaccounts/token: (service account, TokenRequest object) -> TokenRequest with status.token and
# status.expirationTimestamp filled in.
IssueToken = Callable[[dict, dict], "dict | Awaitable[dict]"]


@dataclass
class Security:
    """Everything security plugs into the API server. `bootstrap` lists objects the server creates at start when
    missing (default ClusterRoles and bindings)."""
    authenticate: Authenticate
    authorize: Authorize
    admit: Admit
    virtual: dict[tuple[str, str], VirtualCreate] = field(default_factory=dict)  # (group, plural) -> handler
    issue_token: IssueToken | None = None
    bootstrap: list[dict] = field(default_factory=list)


class InternalAPI(Protocol):
    """In-process access to stored objects for security code; errors are `api.errors.APIError` (e.g. 404)."""

    async def get(self, group: str, plural: str, namespace: str, name: str) -> dict:
        """May be served from the watch cache (slightly stale, never missing an object storage has)."""

    async def peek(self, group: str, plural: str, namespace: str, name: str) -> dict:
        """As get, without copying the watch cache's object: the caller only reads it, never changes it."""

    async def list(self, group: str, plural: str, namespace: str = "", label_selector: str = "",
                   field_selector: str = "", resource_version: str = "") -> list[dict]:
        """A quorum read; resource_version="0" accepts the watch cache's (possibly slightly stale) state."""

    async def create(self, group: str, plural: str, namespace: str, obj: dict) -> dict: ...

    async def update(self, group: str, plural: str, namespace: str, obj: dict) -> dict:
        """Replace obj (optimistic concurrency on metadata.resourceVersion when set)."""


@dataclass
class WriteOptions:
    """What admission plugins that call out (webhooks, policies) need of the write being admitted: whether it is a
    dry run (webhooks with side effects refuse those) and where its `Warning:` headers go."""
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)


# Set around each admission call by the write being admitted (registry.context.WriteContext.admission).
write_options: ContextVar[WriteOptions | None] = ContextVar("write_options", default=None)


async def resolve(value):
    """Await hook results that are awaitable, so hooks may be plain functions or coroutines."""
    return await value if inspect.isawaitable(value) else value


def insecure_allow_all(authenticate: Authenticate) -> Security:
    """DEVELOPMENT ONLY (`kpy-apiserver --insecure-allow-all`): authenticate normally, then allow every request and
    admit everything unchanged. Never a default; used until the RBAC authorizer and admission plugins exist."""
    return Security(authenticate=authenticate, authorize=lambda user, info: (True, "insecure-allow-all"),
                    admit=lambda operation, info, obj, old, user: None)
