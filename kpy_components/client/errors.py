"""The client's one exception tree: nothing above the client sees the HTTP library's (aiohttp's) exceptions.

- `kpy_components.api.errors.APIError`: the API server answered with an error (a `Status`, or an HTTP error
  without one, turned into the Status Kubernetes would have sent). `code`, `reason` and `message` are the server's.
- `ClientConnectionError`: the API server could not be reached or the connection broke (after retries).
- `KubeconfigError` (a ValueError): a kubeconfig or in-cluster environment is wrong; the message names the file and
  the field.

The predicates below read like client-go's `apierrors.IsNotFound(err)`.
"""
from __future__ import annotations

import json
from typing import Awaitable, TypeVar

from kpy_components.api.errors import APIError

T = TypeVar("T")

# Reasons Kubernetes puts in a Status for a bare HTTP status code (k8s.io/apimachinery/pkg/api/errors).
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


class ClientConnectionError(Exception):
    """The request never got an answer: refused, reset, TLS failure, timeout. `__cause__` holds the transport's
    exception."""


class KubeconfigError(ValueError):
    """A client configuration problem; the message names the source and the field (`users[admin].user.token`)."""


def error_from_response(code: int, body: bytes, retry_after: str | None = None) -> APIError:
    """The APIError for an HTTP error answer: the server's Status when the body is one, else a Status built from
    the code (as client-go's `NewGenericServerResponse`)."""
    status = None
    try:
        decoded = json.loads(body) if body else None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            status = decoded
    except ValueError:
        pass
    if status is None:
        text = body.decode("utf-8", "replace").strip()[:512]
        reason = _REASONS.get(code, "InternalError" if code >= 500 else "BadRequest")
        status = {"code": code, "reason": reason,
                  "message": text or f"the server responded with HTTP {code} and no explanation"}
    error = APIError.from_status(status)
    error.code = code  # the HTTP code is the truth when a Status body disagrees
    error.retry_after = _seconds(retry_after)
    return error


def _seconds(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value else None
    except ValueError:  # an HTTP date: Kubernetes always sends seconds, so treat it as "soon"
        return 1


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, APIError) and error.code == 404


async def ignore_not_found(call: Awaitable[T], gone=None) -> T:
    """Await a request whose object may already be gone: its result, or `gone` when the answer is 404."""
    try:
        return await call
    except APIError as error:
        if not is_not_found(error):
            raise
        return gone


def is_already_exists(error: BaseException) -> bool:
    return isinstance(error, APIError) and error.code == 409 and error.reason == "AlreadyExists"


def is_conflict(error: BaseException) -> bool:
    """A resourceVersion precondition failed (409 Conflict, not AlreadyExists): re-read and retry."""
    return isinstance(error, APIError) and error.code == 409 and error.reason != "AlreadyExists"


def is_gone(error: BaseException) -> bool:
    """410: the requested resourceVersion is too old (compacted); informers re-list."""
    return isinstance(error, APIError) and error.code == 410


def is_invalid(error: BaseException) -> bool:
    return isinstance(error, APIError) and error.code == 422


def is_forbidden(error: BaseException) -> bool:
    return isinstance(error, APIError) and error.code == 403


def is_retryable(error: BaseException) -> bool:
    """Worth trying again later without changing the request: connection failures, 429 and 5xx."""
    if isinstance(error, ClientConnectionError):
        return True
    return isinstance(error, APIError) and (error.code == 429 or error.code >= 500)
