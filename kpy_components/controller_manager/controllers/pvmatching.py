"""Which PersistentVolume a claim gets (pkg/controller/volume/persistentvolume/index.go findByClaim and
component-helpers' FindMatchingVolume / CheckVolumeSatisfyClaim), without a scheduler (no node to check affinity
against: Immediate binding ignores node affinity, as upstream does when no node is given).

A volume fits when its capacity covers the request, its volumeMode equals the claim's (Filesystem when unset), its
access modes include all of the claim's, its class is the claim's ("" for a claim without one), the claim's
selector matches its labels, it is Available with no claimRef and not being deleted. A volume already pre-bound to
the claim (claimRef naming it, uid empty or the claim's) wins regardless of phase, class and selector. Among the
others: the fewest access modes, then the smallest capacity.
"""
from __future__ import annotations

from kpy_components.api import meta, selectors, storage
from kpy_components.api.errors import APIError


def _mode(obj: dict) -> str:
    return (obj.get("spec") or {}).get("volumeMode") or "Filesystem"


def is_bound_to(volume: dict, claim: dict) -> bool:
    """IsVolumeBoundToClaim: the volume's claimRef names the claim (and its uid, when the ref has one)."""
    ref = (volume.get("spec") or {}).get("claimRef") or {}
    if (ref.get("name"), ref.get("namespace")) != (meta.name_of(claim), meta.namespace_of(claim)):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.metadata(claim).get("uid")


def unsuitable(volume: dict, claim: dict) -> str | None:
    """CheckVolumeSatisfyClaim: why a volume the claim asked for by name cannot be its, None when it can."""
    requested = storage.requested_storage(claim)
    capacity = storage.storage_quantity((volume.get("spec") or {}).get("capacity"))
    if requested is not None and (capacity is None or capacity < requested):
        return "requested PV is too small"
    if storage.volume_class(volume) != storage.claim_class(claim):
        return "storageClassName does not match"
    if _mode(volume) != _mode(claim):
        return "incompatible volumeMode"
    if not set((claim.get("spec") or {}).get("accessModes") or ()) <= set((volume.get("spec") or {}).get(
            "accessModes") or ()):
        return "incompatible accessMode"
    return None


def _selector_matches(claim: dict, volume: dict) -> bool:
    selector = (claim.get("spec") or {}).get("selector")
    if selector is None:
        return True
    try:
        return selectors.label_selector_from_dict(selector).matches(meta.labels_of(volume))
    except APIError:
        return False


def find_match(claim: dict, volumes: list[dict]) -> dict | None:
    spec = claim.get("spec") or {}
    requested = storage.requested_storage(claim)
    modes = set(spec.get("accessModes") or ())
    if requested is None or not modes:
        return None
    best, best_key = None, None
    for volume in volumes:
        volume_spec = volume.get("spec") or {}
        capacity = storage.storage_quantity(volume_spec.get("capacity"))
        volume_modes = set(volume_spec.get("accessModes") or ())
        if capacity is None or capacity < requested or _mode(volume) != _mode(claim) or not modes <= volume_modes \
                or meta.metadata(volume).get("deletionTimestamp"):
            continue
        if is_bound_to(volume, claim):
            return volume
        if (volume.get("status") or {}).get("phase") != "Available" or volume_spec.get("claimRef") \
                or not _selector_matches(claim, volume) or storage.volume_class(volume) != storage.claim_class(claim):
            continue
        key = (len(volume_modes), capacity.value, meta.name_of(volume))
        if best_key is None or key < best_key:
            best, best_key = volume, key
    return best
