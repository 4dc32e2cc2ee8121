"""PersistentVolumeClaimResize admission (plugin/pkg/admission/storage/persistentvolume/resize), validating: a claim's
storage request may grow only when its StorageClass (the same before and after) has allowVolumeExpansion: true.

Upstream also refuses growing an unbound claim ("Only bound persistent volume claims can be expanded"), but its
object validation runs first and already refuses that as a spec change; kpy runs admission before validation, so
unbound claims are left to validation here to keep upstream's answer.
"""
from __future__ import annotations

from kpy_components.api import storage
from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.apiserver.http.context import InternalAPI

_NOT_EXPANDABLE = ("only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must "
                   "support resize")


class PersistentVolumeClaimResize:
    def __init__(self, api: InternalAPI):
        self.api = api

    async def validate(self, attributes: Attributes) -> None:
        if attributes.operation != "UPDATE" or attributes.info.subresource \
                or not attributes.targets("", "persistentvolumeclaims"):
            return
        new, old = attributes.obj or {}, attributes.old or {}
        new_size, old_size = storage.requested_storage(new), storage.requested_storage(old)
        if new_size is None or old_size is None or new_size <= old_size \
                or (old.get("status") or {}).get("phase") != "Bound":
            return
        if not await self._expandable(storage.claim_class(new), storage.claim_class(old)):
            raise forbidden(attributes, _NOT_EXPANDABLE)

    async def _expandable(self, new_class: str, old_class: str) -> bool:
        if not new_class or new_class != old_class:
            return False
        try:
            sc = await self.api.peek(storage.STORAGE_GROUP, "storageclasses", "", new_class)
        except APIError as error:
            if error.code == 404:  # a missing class allows nothing, as upstream's lister error does
                return False
            raise
        return sc.get("allowVolumeExpansion") is True
