"""Where a pod's containers go in the cgroup tree: upstream's QoS hierarchy under `kubepods`.

Guaranteed pods sit right under kubepods, Burstable and BestEffort under a class cgroup of their own; each pod gets
`pod<uid>` below. With the systemd driver these are slices named by systemd's dash convention
(`kubepods-burstable-pod<uid with _>.slice`, whose parents systemd implies from the name); with cgroupfs, paths.
"""
from __future__ import annotations

from .status import qos_class


def pod_cgroup_parent(pod: dict, driver: str) -> str:
    uid, qos = pod["metadata"]["uid"], qos_class(pod)
    level = "" if qos == "Guaranteed" else qos.lower()
    if driver == "systemd":
        return "-".join(part for part in ("kubepods", level, f"pod{uid.replace('-', '_')}") if part) + ".slice"
    return "/" + "/".join(part for part in ("kubepods", level, f"pod{uid}") if part)
