"""Every controller kpy-controller-manager can run, by its --controllers name.

`select(spec)` reads the flag as kube-controller-manager does: "*" enables the defaults, "foo" enables foo,
"-foo" disables foo; unknown names are an error naming them.
"""
from __future__ import annotations

import importlib

from ..controller import Controller

# name -> "module:Class" (one module per controller); modules load only when their controller is enabled.
CONTROLLERS: dict[str, str] = {
    "deployment": "deployment:DeploymentController",
    "replicaset": "replicaset:ReplicaSetController",
    "daemonset": "daemonset:DaemonSetController",
    "statefulset": "statefulset:StatefulSetController",
    "job": "job:JobController",
    "cronjob": "cronjob:CronJobController",
    "namespace": "namespace:NamespaceController",
    "serviceaccount": "serviceaccount:ServiceAccountController",
    "serviceaccount-token": "serviceaccount:TokenController",
    "endpoints": "endpoints:EndpointsController",
    "endpointslice": "endpointslice:EndpointSliceController",
    "nodeipam": "nodeipam:NodeIpamController",
    "nodelifecycle": "nodelifecycle:NodeLifecycleController",
    "garbagecollector": "garbagecollector:GarbageCollector",
    "podgc": "podgc:PodGCController",
    "disruption": "disruption:DisruptionController",
    "root-ca-cert-publisher": "rootcacertpublisher:RootCACertPublisher",
    "ttl-after-finished": "ttlafterfinished:TTLAfterFinishedController",
    "csrsigning": "csrsigning:CSRSigningController",
    "csrapproving": "csrapproving:CSRApprovingController",
    "persistentvolume-binder": "persistentvolume:PersistentVolumeBinder",
    "pvc-protection": "storageprotection:PVCProtectionController",
    "pv-protection": "storageprotection:PVProtectionController",
}


def load(name: str) -> type[Controller]:
    module_name, _, class_name = CONTROLLERS[name].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module_name}"), class_name)


def select(spec: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(enabled controller names in a stable order, problems)."""
    problems, enabled = [], set()
    wildcard = "*" in spec
    if wildcard:
        enabled.update(CONTROLLERS)
    for item in spec:
        if item == "*":
            continue
        name = item[1:] if item.startswith("-") else item
        if name not in CONTROLLERS:
            problems.append(f"{item!r} is not a controller (known: {', '.join(sorted(CONTROLLERS))})")
        elif item.startswith("-"):
            enabled.discard(name)
        else:
            enabled.add(name)
    return sorted(enabled), problems
