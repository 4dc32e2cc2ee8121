"""pods/log: checked here (the pod is scheduled, the container is one of its own, the options are valid), then
streamed from the node's kubelet (GET /containerLogs/<namespace>/<pod>/<container>) to the client as it comes,
so `kubectl logs -f` follows. Errors are worded as kube-apiserver words them."""
from __future__ import annotations

from aiohttp import web

from kpy_components.api import errors
from kpy_components.apiserver.kubelet import KubeletClient, pod_node
from kpy_components.apiserver.http.responses import relay
from kpy_components.apiserver.registry.api import API

# query parameters of PodLogOptions the kubelet understands, passed on as given
_PASSED_ON = ("follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes")
_POSITIVE = ("sinceSeconds", "limitBytes")
_NOT_NEGATIVE = ("tailLines",)


def _container(pod: dict, requested: str) -> str:
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    containers = [c["name"] for c in spec.get("containers") or ()]
    init = [c["name"] for c in spec.get("initContainers") or ()]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or ()]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        if ephemeral:
            message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
        raise errors.bad_request(message)
    if requested not in containers + init + ephemeral:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _options(query) -> dict[str, str]:
    options = {name: query[name] for name in _PASSED_ON if query.get(name) not in (None, "")}
    causes = []
    for name in _POSITIVE + _NOT_NEGATIVE:
        if name not in options:
            continue
        value = options[name]
        if not value.lstrip("-").isdigit():
            raise errors.bad_request(f'{name}: Invalid value: "{value}": must be an integer')
        if int(value) < (1 if name in _POSITIVE else 0):
            causes.append({"reason": "FieldValueInvalid", "field": name,
                           "message": f"Invalid value: {value}: must be {'greater than 0' if name in _POSITIVE else 'greater than or equal to 0'}"})
    if "sinceSeconds" in options and "sinceTime" in options:
        causes.append({"reason": "FieldValueForbidden", "field": "sinceSeconds",
                       "message": "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"})
    if causes:
        raise errors.APIError(422, "Invalid", "PodLogOptions \"\" is invalid: " +
                              ", ".join(f"{c['field']}: {c['message']}" for c in causes),
                              {"kind": "PodLogOptions", "causes": causes})
    return options


async def serve_log(request: web.Request, api: API, kubelets: KubeletClient | None, namespace: str,
                    name: str) -> web.StreamResponse:
    pod = await api.store("", "pods").get(namespace, name)
    container = _container(pod, request.query.get("container", ""))
    options = _options(request.query)
    node = await pod_node(api, kubelets, pod)
    upstream = await kubelets.get(node, f"/containerLogs/{namespace}/{name}/{container}", options)
    return await relay(request, web.StreamResponse(headers={"Content-Type": "text/plain"}), upstream)
