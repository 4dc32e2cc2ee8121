"""JSON responses, Status errors and `Warning:` headers, as kube-apiserver writes them."""
from __future__ import annotations

from aiohttp import web

from kpy_components.api.errors import APIError
from kpy_components.apiserver.storage.codec import dumps

JSON_TYPE = "application/json"


def json_response(obj, status: int = 200, warnings: list[str] | None = None,
                  content_type: str = JSON_TYPE, headers: dict | None = None) -> web.Response:
    response = web.Response(body=dumps(obj), status=status, headers=headers)
    response.headers["Content-Type"] = content_type
    for warning in dict.fromkeys(warnings or ()):  # once each, in order
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def error_response(error: APIError) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return json_response(error.status(), error.code, headers=headers)
