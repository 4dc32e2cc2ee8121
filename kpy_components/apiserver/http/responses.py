"""JSON responses, Status errors and `Warning:` headers, as kube-apiserver writes them."""
from __future__ import annotations

from aiohttp import web

from kpy_components.api.errors import APIError
from kpy_components.apiserver.storage.codec import dumps

JSON_TYPE = "application/json"
GZIP_THRESHOLD = 128 * 1024  # bytes: upstream's defaultGzipThresholdBytes


def json_response(obj, status: int = 200, warnings: list[str] | None = None,
                  content_type: str = JSON_TYPE, headers: dict | None = None) -> web.Response:
    response = web.Response(body=dumps(obj), status=status, headers=headers)
    response.headers["Content-Type"] = content_type
    for warning in dict.fromkeys(warnings or ()):  # once each, in order
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def compressed(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """gzip a complete response larger than GZIP_THRESHOLD when the client accepts it (upstream's
    APIResponseCompression: lists of many objects shrink a lot); `Vary: Accept-Encoding` on every such response
    so caches keep the two forms apart. Streams (watches, logs) are left alone."""
    if not isinstance(response, web.Response) or response.body is None or response.prepared:
        return response
    body = response.body
    if not isinstance(body, bytes) or len(body) <= GZIP_THRESHOLD:
        return response
    response.headers.add("Vary", "Accept-Encoding")
    offered = request.headers.get("Accept-Encoding", "").split(",")
    if "gzip" in {coding.split(";")[0].strip().lower() for coding in offered}:
        response.enable_compression(web.ContentCoding.gzip)
    return response


def error_response(error: APIError) -> web.Response:
    """The error's Status, then a newline, as upstream's JSON encoder writes it."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    response = json_response(error.status(), error.code, headers=headers)
    response.body = response.body + b"\n"
    return response


async def relay(request: web.Request, response: web.StreamResponse, upstream) -> web.StreamResponse:
    """Stream an upstream aiohttp response's body to the client as it comes (kubelet logs, aggregated APIs), then
    release the upstream connection, whatever happens."""
    try:
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        upstream.release()
