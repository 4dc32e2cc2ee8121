"""A StatefulSet's volumeClaimTemplates, as pkg/controller/statefulset does them:

- each pod `<set>-<i>` has one claim per template, named `<template>-<set>-<i>`, labelled with the template's labels
  plus the set's selector matchLabels; the claims are created before the pod (a missing one is created again for a
  live pod), and the pod gets a persistentVolumeClaim volume per template, replacing a template volume of the same
  name;
- an existing claim is never recreated, changed or deleted, except for the ownerReferences that carry
  spec.persistentVolumeClaimRetentionPolicy: whenDeleted=Delete makes the set the claim's controller (the garbage
  collector deletes it with the set), whenScaled=Delete makes the pod the controller once its ordinal is scaled
  away (deleted with the pod). A claim controlled by anything else, or holding a reference to an older set or pod of
  the same name, is left alone (upstream's hasUnexpectedController / hasStaleOwnerRef);
- a pod whose claim is being deleted is not created until the claim is gone; a Pending pod whose claim went away
  gets it created again (upstream's createMissingPersistentVolumeClaims for pending pods): a deleted claim queues
  the sets whose selector matches its labels.
"""
from __future__ import annotations

from collections.abc import Callable

from kpy_components.api import meta
from kpy_components.api.errors import APIError
from kpy_components.client import ignore_not_found, is_already_exists, key_of

from ..controller import Controller

SET_REF, POD_REF = ("apps/v1", "StatefulSet"), ("v1", "Pod")


def claim_name(template: dict, sts: dict, ordinal: int) -> str:
    return f"{meta.name_of(template)}-{meta.name_of(sts)}-{ordinal}"


def claims_for(sts: dict, ordinal: int) -> dict[str, dict]:
    """template name -> the claim the pod of `ordinal` uses (getPersistentVolumeClaims)."""
    spec = sts.get("spec") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    claims = {}
    for template in spec.get("volumeClaimTemplates") or []:
        template_meta = template.get("metadata") or {}
        metadata = {"name": claim_name(template, sts, ordinal), "namespace": meta.namespace_of(sts),
                    "labels": {**(template_meta.get("labels") or {}), **match_labels}}
        if template_meta.get("annotations"):
            metadata["annotations"] = dict(template_meta["annotations"])
        claims[meta.name_of(template)] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata,
                                          "spec": meta.deep_copy(template.get("spec") or {})}
    return claims


def add_claim_volumes(sts: dict, pod: dict, ordinal: int) -> None:
    """updateStorage: the claims' volumes first (in template order), then the template's other volumes."""
    claims = claims_for(sts, ordinal)
    if not claims:
        return
    spec = pod.setdefault("spec", {})
    volumes = [{"name": name, "persistentVolumeClaim": {"claimName": meta.name_of(claim)}}
               for name, claim in claims.items()]
    spec["volumes"] = volumes + [v for v in spec.get("volumes") or [] if v.get("name") not in claims]


def in_range(sts: dict, ordinal: int) -> bool:
    spec = sts.get("spec") or {}
    start = (spec.get("ordinals") or {}).get("start", 0)
    return start <= ordinal < start + spec.get("replicas", 1)


def _ref(owner: dict, kind: tuple[str, str]) -> dict:
    return {"apiVersion": kind[0], "kind": kind[1], "name": meta.name_of(owner),
            "uid": meta.metadata(owner).get("uid"), "controller": True, "blockOwnerDeletion": True}


def _points_at(ref: dict, owner: dict, kind: tuple[str, str]) -> bool:
    return (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) == (*kind, meta.name_of(owner))


def wanted_owner_refs(claim: dict, sts: dict, pod: dict, ordinal: int) -> list[dict] | None:
    """The claim's ownerReferences as the retention policy wants them, None when they need no change."""
    refs = meta.metadata(claim).get("ownerReferences") or []
    ours = ((sts, SET_REF), (pod, POD_REF))
    if any(_points_at(r, o, k) and r.get("uid") != meta.metadata(o).get("uid") for r in refs for o, k in ours):
        return None  # a reference to an earlier set or pod of this name: not ours to touch
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    when_deleted, when_scaled = policy.get("whenDeleted", "Retain"), policy.get("whenScaled", "Retain")
    kept = [r for r in refs if not any(_points_at(r, o, k) for o, k in ours)]
    wanted = list(kept)
    foreign_controller = any(r.get("controller") for r in kept)
    if not foreign_controller or (when_deleted, when_scaled) == ("Retain", "Retain"):
        scaled_away = not in_range(sts, ordinal)
        if when_scaled == "Delete" and scaled_away:
            wanted.append(_ref(pod, POD_REF))
        elif when_deleted == "Delete":
            wanted.append(_ref(sts, SET_REF))
    return None if wanted == refs else wanted


class StatefulSetClaims:
    """The claims side of the StatefulSet controller: reads claims from the shared informer, writes through the
    API, and records events on the set worded as upstream's recordClaimEvent/recordPodEvent."""

    def __init__(self, controller: Controller, on_claim_deleted: Callable[[dict], None]):
        self.client, self.recorder = controller.client, controller.recorder
        self.informer = controller.informer("persistentvolumeclaims")
        self.informer.add_handler(on_delete=on_claim_deleted)
        self.info = self.client.resource("persistentvolumeclaims")

    async def ensure(self, sts: dict, ordinal: int, new_pod: bool = True) -> bool:
        """Create the missing claims of the pod of `ordinal`; True when all exist and none is being deleted
        (`new_pod`: the pod waits for them, which an event on the set says)."""
        pod_name = f"{meta.name_of(sts)}-{ordinal}"
        ready = True
        for claim in claims_for(sts, ordinal).values():
            existing = self.informer.store.get(key_of(claim)) or await self._create(sts, pod_name, claim)
            if existing is None:
                ready = False
            elif meta.metadata(existing).get("deletionTimestamp"):
                ready = False
                if new_pod:
                    self.recorder.event(sts, "Warning", "FailedCreate", f"create Pod {pod_name} in StatefulSet "
                                        f"{meta.name_of(sts)} failed error: pvc {meta.name_of(claim)} is being "
                                        "deleted")
        return ready

    async def _create(self, sts: dict, pod_name: str, claim: dict) -> dict | None:
        name, set_name = meta.name_of(claim), meta.name_of(sts)
        try:
            created = await self.client.create(self.info, claim, meta.namespace_of(sts))
        except APIError as error:
            if is_already_exists(error):  # the cache lags: read what is there
                return await self.client.get(self.info, name, meta.namespace_of(sts))
            self.recorder.event(sts, "Warning", "FailedCreate", f"create Claim {name} for Pod {pod_name} in "
                                f"StatefulSet {set_name} failed error: {error.message}")
            return None
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Claim {name} Pod {pod_name} in StatefulSet {set_name} success")
        return created

    async def apply_retention_policy(self, sts: dict, pods: dict[int, dict]) -> None:
        """Bring the ownerReferences of every existing claim of these pods (ordinal -> pod) in line with the
        retention policy; a claim that went away meanwhile is skipped."""
        for ordinal, pod in pods.items():
            for claim in claims_for(sts, ordinal).values():
                existing = self.informer.store.get(key_of(claim))
                refs = None if existing is None else wanted_owner_refs(existing, sts, pod, ordinal)
                if refs is None:
                    continue
                body = meta.deep_copy(existing)
                body["metadata"]["ownerReferences"] = refs
                await ignore_not_found(self.client.update(self.info, body))
