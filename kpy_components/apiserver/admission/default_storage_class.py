"""DefaultStorageClass admission (plugin/pkg/admission/storage/storageclass/setdefault): a PersistentVolumeClaim
created without a class (no spec.storageClassName, not even "", and no beta class annotation) gets the default
StorageClass's name, the default being the class annotated storageclass.kubernetes.io/is-default-class=true (or the
beta annotation); with several, the newest. Without a default class the claim is left as it is.
"""
from __future__ import annotations

from kpy_components.api import storage
from kpy_components.apiserver.admission.chain import Attributes
from kpy_components.apiserver.http.context import InternalAPI


class DefaultStorageClass:
    def __init__(self, api: InternalAPI):
        self.api = api

    async def admit(self, attributes: Attributes) -> None:
        if attributes.operation != "CREATE" or attributes.info.subresource or attributes.obj is None \
                or not attributes.targets("", "persistentvolumeclaims"):
            return
        claim = attributes.obj
        spec = claim.get("spec")
        if not isinstance(spec, dict) or not storage.has_no_class(claim):
            return
        found = storage.default_class(await self.api.list(storage.STORAGE_GROUP, "storageclasses",
                                                          resource_version="0"))
        if found is not None:
            spec["storageClassName"] = found["metadata"]["name"]
