"""One synchronous request to the API server with a client certificate, for Ansible action plugins on the controller
(site.yml's roles keep API objects and gate on the cluster from there): they run inside Ansible's own process, so
this needs no event loop and only the standard library, and costs no module run.
"""
from __future__ import annotations

import json
import ssl
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen


def api_request(url: str, method: str = "GET", body: dict | None = None, *, ca: str, cert: str, key: str,
                content_type: str = "application/json", timeout: float = 30) -> tuple[int | None, object]:
    """(status, decoded JSON body) of one request. A server's error answer comes back as its status and body (the
    Status object, or the reason when the body is not JSON); (None, reason) when no server answered."""
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    headers = {"Accept": "application/json", **({} if body is None else {"Content-Type": content_type})}
    request = Request(url, data=None if body is None else json.dumps(body).encode(), method=method, headers=headers)
    try:
        with urlopen(request, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        except ValueError:
            return error.code, error.reason
    except (URLError, OSError) as error:
        return None, str(getattr(error, "reason", error))
