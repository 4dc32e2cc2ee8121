"""VolumeBinding, the part of kube-scheduler's plugin that needs no binding at scheduling time: a pod's
persistentVolumeClaim volumes must name claims that exist, are not being deleted and are bound (the
persistentvolume-binder binds Immediate claims), and a node must satisfy the required node affinity of every bound
volume (local PersistentVolumes). Reasons are upstream's words.

Not done (kpy has no delayed binding or provisioning): an unbound claim of a WaitForFirstConsumer class is never
bound by the scheduler, so its pod is rejected on every node with "node(s) didn't find available persistent volumes
to bind". The claims/volumes/classes stores are given by the scheduler (`use_stores`); without them the plugin
skips every pod.
"""
from __future__ import annotations

from kpy_components.api import storage
from kpy_components.api.nodeaffinity import Term

from ..framework import NODE_ADD, NODE_UPDATE, OK, SKIPPED, unschedulable

PVC_ADD, PVC_UPDATE, PV_ADD, PV_UPDATE = "PvcAdd", "PvcUpdate", "PvAdd", "PvUpdate"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NODE_CONFLICT = "node(s) had volume node affinity conflict"
PV_MISSING = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
_STATE = "VolumeBinding"


class VolumeBinding:
    name = "VolumeBinding"
    events = frozenset({NODE_ADD, NODE_UPDATE, PVC_ADD, PVC_UPDATE, PV_ADD, PV_UPDATE})

    def __init__(self):
        self.claims = self.volumes = self.classes = None

    def use_stores(self, claims, volumes, classes) -> None:
        """The informers' stores (read only) of claims, volumes and storage classes."""
        self.claims, self.volumes, self.classes = claims, volumes, classes

    def pre_filter(self, state, pod, nodes):
        names = storage.claim_names(pod.spec)
        if not names or self.claims is None:
            return SKIPPED
        affinities, reason = [], None
        for name in names:
            claim = self.claims.get(f"{pod.namespace}/{name}")
            if claim is None:
                return unschedulable(self.name, f'persistentvolumeclaim "{name}" not found', resolvable=False)
            if (claim.get("metadata") or {}).get("deletionTimestamp"):
                return unschedulable(self.name, f'persistentvolumeclaim "{name}" is being deleted', resolvable=False)
            volume_name = (claim.get("spec") or {}).get("volumeName")
            if not volume_name:
                if not self._waits_for_first_consumer(claim):
                    return unschedulable(self.name, UNBOUND_IMMEDIATE, resolvable=False)
                reason = reason or BIND_CONFLICT
                continue
            volume = self.volumes.get(volume_name)
            if volume is None:
                reason = reason or PV_MISSING
                continue
            required = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required")
            if required:
                affinities.append([Term(term) for term in required.get("nodeSelectorTerms") or ()])
        if reason is None and not affinities:
            return SKIPPED
        state[_STATE] = (reason, affinities)
        return OK

    def _waits_for_first_consumer(self, claim: dict) -> bool:
        class_name = storage.claim_class(claim)
        storage_class = self.classes.get(class_name) if class_name else None
        return bool(storage_class) and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"

    def filter(self, state, pod, node):
        reason, affinities = state.get(_STATE) or (None, ())
        if reason is not None:
            return unschedulable(self.name, reason, resolvable=False)
        if not all(any(term.matches(node) for term in terms) for terms in affinities):
            return unschedulable(self.name, NODE_CONFLICT, resolvable=False)
        return None
