"""What kube-apiserver's apiextensions controllers do, in one loop inside the API server: follow the
CustomResourceDefinitions (list, then watch from the watch cache) and for each one
- naming: accept its names unless another CRD of the group already holds one of them (NamesAccepted, then
  Established, as the naming and establishing controllers set them);
- serving: put every served version of an established CRD into the registry and give its storage version the one
  generic store (discovery, OpenAPI and routing follow at once); take them out when the CRD is gone;
- finalizing: a deleted CRD (Terminating, with the cleanup finalizer) has its custom resources deleted first, then
  loses the finalizer, and so goes.
Every API server runs it; status writes happen only when the status differs, so several agree without fighting.
"""
from __future__ import annotations

import asyncio
import json
import logging

from kpy_components.api import errors, meta

from ..registry.api import API
from ..registry.context import WriteContext
from ..registry.following import follow, settle_each
from . import definitions
from .definitions import CLEANUP_FINALIZER, GROUP

log = logging.getLogger(__name__)
_PLURAL = "customresourcedefinitions"
_RECHECK = 1.0  # seconds before looking again at a CRD whose custom resources are still going away
_NAME_FIELDS = ("plural", "singular", "kind", "listKind")


class CRDController:
    def __init__(self, api: API):
        self.api = api
        self.known: dict[str, dict] = {}  # CRD name -> latest object seen
        self._served: dict[str, str] = {}  # CRD name -> what it is served from (to rebuild only on change)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._revision = "0"

    @property
    def store(self):
        return self.api.store(GROUP, _PLURAL)

    async def start(self) -> None:
        """List every CRD and settle each one (served before /readyz turns ready)."""
        listed = await self.store.list(resource_version="0")
        self._revision = listed["metadata"]["resourceVersion"]
        for crd in listed["items"]:
            self.known[meta.name_of(crd)] = crd
        for name in list(self.known):
            await self._sync(name)

    async def run(self) -> None:
        """Watch for changes and settle the CRDs they touch, one at a time, for as long as the server runs."""
        worker = asyncio.create_task(self._work(), name="crd-controller-worker")
        try:
            await follow(self.store, self.known, self._queue.put_nowait, self._revision)
        finally:
            worker.cancel()

    async def _work(self) -> None:
        await settle_each(self._queue, self._sync, "CustomResourceDefinition", _RECHECK)

    # --- one CRD -------------------------------------------------------------------------------------------------
    async def _sync(self, name: str) -> None:
        crd = self.known.get(name)
        if crd is None:
            self._serve(name, None)
            return
        if (crd.get("metadata") or {}).get("deletionTimestamp"):
            self._serve(name, crd)
            await self._finalize(crd)
            return
        status = self._desired_status(crd)
        if _comparable(status) != _comparable(crd.get("status") or {}):
            updated = dict(crd, status=status)
            try:
                crd = await self.api.update_status(GROUP, _PLURAL, "", updated)
            except errors.APIError as error:
                if error.code not in (404, 409):
                    raise
                return  # changed or gone meanwhile: its watch event brings it back
            self.known[name] = crd
        self._serve(name, crd)

    def _serve(self, name: str, crd: dict | None) -> None:
        infos = definitions.served_resources(crd) if crd is not None else []
        source = json.dumps([crd.get("spec"), definitions.is_established(crd)], sort_keys=True) if infos else ""
        if self._served.get(name, "") == source:
            return
        self.api.serve_custom(name, infos)
        if source:
            self._served[name] = source
            log.info("Serving custom resource crd=%s versions=%s", name, ",".join(i.version for i in infos))
        else:
            self._served.pop(name, None)
            log.info("Stopped serving custom resource crd=%s", name)

    def _desired_status(self, crd: dict) -> dict:
        status = meta.deep_copy(crd.get("status") or {})
        names = dict(definitions.spec_of(crd).get("names") or {})
        conflict = self._conflict(crd, names)
        if conflict:
            definitions.set_condition(status, "NamesAccepted", "False", conflict[0], conflict[1])
            definitions.set_condition(status, "Established", "False", "NotAccepted", "not all names are accepted")
            return status
        status["acceptedNames"] = {k: v for k, v in names.items() if v}
        definitions.set_condition(status, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
        definitions.set_condition(status, "Established", "True", "InitialNamesAccepted",
                                  "the initial names have been accepted")
        return status

    def _conflict(self, crd: dict, names: dict) -> tuple[str, str] | None:
        """(reason, message) when another CRD of the group accepted one of these names first."""
        group, mine = definitions.spec_of(crd).get("group"), meta.name_of(crd)
        for other in self.known.values():
            if meta.name_of(other) == mine or definitions.spec_of(other).get("group") != group:
                continue
            accepted = (other.get("status") or {}).get("acceptedNames") or {}
            for field in _NAME_FIELDS:
                if names.get(field) and names[field] in (accepted.get(f) for f in _NAME_FIELDS):
                    return f"{field[:1].upper()}{field[1:]}Conflict", f'"{names[field]}" is already in use'
            for short in names.get("shortNames") or ():
                if short in (accepted.get("shortNames") or ()):
                    return "ShortNamesConflict", f'"{short}" is already in use'
        return None

    async def _finalize(self, crd: dict) -> None:
        """Delete the CRD's custom resources; once none is left, drop the cleanup finalizer."""
        name = meta.name_of(crd)
        if CLEANUP_FINALIZER not in ((crd.get("metadata") or {}).get("finalizers") or []):
            return
        names = definitions.spec_of(crd).get("names") or {}
        group = definitions.spec_of(crd).get("group", "")
        remaining = 0
        try:
            store = self.api.store(group, names.get("plural", ""))
        except errors.APIError:
            store = None  # never served (names not accepted): nothing was stored
        if store is not None:
            listed = await store.list()
            for obj in listed["items"]:
                try:
                    await store.delete(WriteContext(field_validation="Ignore"), meta.namespace_of(obj),
                                       meta.name_of(obj))
                except errors.APIError as error:
                    if error.code != 404:
                        raise
            remaining = len((await store.list())["items"])
        if remaining:  # finalizers of their own keep some: look again shortly, as upstream's finalizer does
            log.info("Waiting for custom resources to go crd=%s remaining=%d", name, remaining)
            asyncio.get_running_loop().call_later(_RECHECK, self._queue.put_nowait, name)
            return
        updated = meta.deep_copy(crd)
        metadata = meta.metadata(updated)
        metadata["finalizers"] = [f for f in metadata.get("finalizers") or [] if f != CLEANUP_FINALIZER]
        try:
            await self.api.update(GROUP, _PLURAL, "", updated)
        except errors.APIError as error:
            if error.code not in (404, 409):
                raise
            if error.code == 409:
                self._queue.put_nowait(name)


def _comparable(status: dict) -> str:
    """A status without condition times, to tell whether a write would change anything."""
    plain = meta.deep_copy(status)
    for item in plain.get("conditions") or []:
        item.pop("lastTransitionTime", None)
    return json.dumps(plain, sort_keys=True)
