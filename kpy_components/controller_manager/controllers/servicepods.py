"""What the endpoints and endpoint-slice controllers share: which pods back a Service, the port a service port
reaches on a pod (named targetPorts included), and the wiring that queues a Service when it or one of its pods
changes.
"""
from __future__ import annotations

from kpy_components.api import selectors
from kpy_components.client import Informer

from ..controller import Controller
from .pods import is_terminating, phase


def selector(service: dict) -> selectors.LabelSelector | None:
    """The Service's pod selector; None when it has none (its endpoints are someone else's business)."""
    wanted = (service.get("spec") or {}).get("selector")
    if not wanted:
        return None
    return selectors.label_selector_from_dict({"matchLabels": wanted})


def backing_pods(service: dict, pods: list[dict], include_terminating: bool) -> list[dict]:
    """The Service's pods that can be endpoints (ShouldPodBeInEndpoints): selected, with an IP, not finished;
    terminating ones only when asked."""
    chosen = selector(service)
    if chosen is None:
        return []
    return [pod for pod in pods if chosen.matches((pod.get("metadata") or {}).get("labels") or {})
            and (pod.get("status") or {}).get("podIP") and phase(pod) not in ("Succeeded", "Failed")
            and (include_terminating or not is_terminating(pod))]


def find_port(pod: dict, service_port: dict) -> int | None:
    """podutil.FindPort: a numeric targetPort (or none: the service port) as is; a named one is the containerPort
    of that name and protocol; None when the pod has no such port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def target_ref(pod: dict) -> dict:
    metadata = pod["metadata"]
    return {"kind": "Pod", "namespace": metadata["namespace"], "name": metadata["name"], "uid": metadata["uid"]}


def service_labels(service: dict) -> dict:
    """Labels the generated objects carry: the Service's, plus service.kubernetes.io/headless for headless ones."""
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    return labels


def watch_services_and_pods(controller: Controller) -> tuple[Informer, Informer]:
    """Services queue themselves; a pod change queues every Service in its namespace selecting it before or
    after the change."""
    services, pods = controller.informer("services"), controller.informer("pods")
    services.add_handler(on_add=controller.enqueue, on_update=lambda _old, new: controller.enqueue(new),
                         on_delete=controller.enqueue)

    def pod_changed(*versions: dict) -> None:
        namespace = versions[-1]["metadata"]["namespace"]
        for service in services.store.list(namespace):
            chosen = selector(service)
            if chosen is not None and any(chosen.matches(v["metadata"].get("labels") or {}) for v in versions):
                controller.enqueue(service)
    pods.add_handler(on_add=pod_changed, on_update=pod_changed, on_delete=pod_changed)
    return services, pods
