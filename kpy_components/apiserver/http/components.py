"""core/v1 ComponentStatus (deprecated upstream, still what `kubectl get componentstatuses` reads): the health of
storage, the scheduler and the controller manager, probed when asked as kube-apiserver probes them (the storage's
revision; /healthz of the components' secure ports on this host, their certificates not checked, as upstream)."""
from __future__ import annotations

import asyncio
import ssl

import aiohttp

from kpy_components.api import errors

_PROBE_TIMEOUT = 2.0  # seconds per probe
_COMPONENTS = {"scheduler": "https://127.0.0.1:10259/healthz",
               "controller-manager": "https://127.0.0.1:10257/healthz"}


def _status(name: str, healthy: bool, message: str, error: str = "") -> dict:
    condition = {"type": "Healthy", "status": "True" if healthy else "False", "message": message}
    if error:
        condition["error"] = error
    return {"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": name}, "conditions": [condition]}


async def _probe(session: aiohttp.ClientSession, name: str, url: str) -> dict:
    try:
        async with session.get(url) as response:
            body = (await response.text()).strip()
            if response.status == 200:
                return _status(name, True, body or "ok")
            return _status(name, False, "", f"HTTP probe failed with statuscode: {response.status}")
    except aiohttp.ClientConnectorError as error:
        refused = isinstance(error.os_error, ConnectionRefusedError)
        reason = "connect: connection refused" if refused else str(error.os_error)
        return _status(name, False, "", f'Get "{url}": dial tcp {error.host}:{error.port}: {reason}')
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return _status(name, False, "", f'Get "{url}": {error or type(error).__name__}')


async def _storage(api) -> dict:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            await api.storage.current_revision()
    except Exception as error:  # any failure is the component's state, reported, never raised
        return _status("etcd-0", False, "", str(error) or type(error).__name__)
    return _status("etcd-0", True, "ok")


async def component_statuses(api) -> list[dict]:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(ssl=context)) as session:
        found = await asyncio.gather(_storage(api), *(_probe(session, n, u) for n, u in _COMPONENTS.items()))
    return sorted(found, key=lambda s: s["metadata"]["name"])


async def component_status(api, name: str) -> dict:
    for status in await component_statuses(api):
        if status["metadata"]["name"] == name:
            return status
    raise errors.not_found("componentstatuses", name)
