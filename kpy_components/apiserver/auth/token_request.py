"""The serviceaccounts/token subresource (TokenRequest), as kube-apiserver's token REST storage answers it:
expirationSeconds defaults to 3600 and lies in [600 s, 2^32 s]; audiences default to the API server's; a token may be
bound to a Pod (which must run as the account; the pod's node is recorded too), a Secret or a Node."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from kpy_components.api import errors
from kpy_components.api.meta import format_rfc3339
from kpy_components.apiserver.auth.tokens import BoundObject, Lookup, ServiceAccountTokenSigner

DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
_BOUND_PLURALS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}
_GROUP = "authentication.k8s.io"


@dataclass
class TokenIssuer:
    """`issue(service_account, token_request)` -> the TokenRequest with status.token and status.expirationTimestamp
    (http.context.IssueToken)."""
    signer: ServiceAccountTokenSigner
    audiences: tuple[str, ...]
    lookup: Lookup

    async def issue(self, service_account: dict, request: dict) -> dict:
        meta = service_account.get("metadata") or {}
        namespace, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        spec = dict(request.get("spec") or {})
        if spec.get("expirationSeconds") is None:
            spec["expirationSeconds"] = DEFAULT_EXPIRATION_SECONDS
        spec["audiences"] = list(spec.get("audiences") or self.audiences)
        _validate(name, spec)
        bound, node = await self._bound(namespace, name, spec.get("boundObjectRef"))
        token, expires = self.signer.sign(namespace, name, uid, spec["audiences"], spec["expirationSeconds"],
                                          bound, node)
        return {"kind": "TokenRequest", "apiVersion": f"{_GROUP}/v1",
                "metadata": {**(request.get("metadata") or {}), "name": name, "namespace": namespace,
                             "creationTimestamp": None},
                "spec": spec,
                "status": {"token": token,
                           "expirationTimestamp": format_rfc3339(datetime.fromtimestamp(expires, timezone.utc))}}

    async def _bound(self, namespace: str, account: str, ref) -> tuple[BoundObject | None, BoundObject | None]:
        if not ref:
            return None, None
        kind, name = ref["kind"], ref["name"]
        plural = _BOUND_PLURALS[kind]
        obj = await self.lookup(plural, "" if kind == "Node" else namespace, name)
        if obj is None:
            raise errors.not_found(plural, name)
        uid = (obj.get("metadata") or {}).get("uid", "")
        if ref.get("uid") and ref["uid"] != uid:
            raise errors.conflict(plural, name, why=f"the UID in the bound object reference ({ref['uid']}) does not "
                                  "match the UID in record. The object might have been deleted and then recreated")
        node = None
        if kind == "Pod":
            spec = obj.get("spec") or {}
            if (spec.get("serviceAccountName") or "default") != account:
                raise errors.bad_request(f'cannot bind token for serviceaccount "{account}" to pod running with '
                                         "different serviceaccount name.")
            node_obj = await self.lookup("nodes", "", spec["nodeName"]) if spec.get("nodeName") else None
            if node_obj is not None:
                node = BoundObject("Node", spec["nodeName"], (node_obj.get("metadata") or {}).get("uid", ""))
        return BoundObject(kind, name, uid), node


def _validate(name: str, spec: dict) -> None:
    causes = []
    seconds = spec["expirationSeconds"]
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        causes.append(errors.Cause("spec.expirationSeconds", f"Invalid value: {seconds!r}: must be an integer"))
    elif seconds < MIN_EXPIRATION_SECONDS:
        causes.append(errors.Cause("spec.expirationSeconds",
                                   f"Invalid value: {seconds}: may not specify a duration less than 10 minutes"))
    elif seconds > MAX_EXPIRATION_SECONDS:
        causes.append(errors.Cause("spec.expirationSeconds",
                                   f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"))
    if not all(isinstance(a, str) and a for a in spec["audiences"]):
        causes.append(errors.Cause("spec.audiences", "Invalid value: audiences must be non-empty strings"))
    ref = spec.get("boundObjectRef")
    if ref is not None:
        if not isinstance(ref, dict) or ref.get("kind") not in _BOUND_PLURALS:
            kind = ref.get("kind") if isinstance(ref, dict) else ref
            causes.append(errors.Cause("spec.boundObjectRef.kind", f'Unsupported value: "{kind}": supported '
                                       'values: "Pod", "Secret", "Node"', "FieldValueNotSupported"))
        elif not ref.get("name"):
            causes.append(errors.Cause("spec.boundObjectRef.name", "Required value", "FieldValueRequired"))
        elif ref.get("apiVersion", "v1") != "v1":
            causes.append(errors.Cause("spec.boundObjectRef.apiVersion",
                                       f'Unsupported value: "{ref.get("apiVersion")}": supported values: "v1"',
                                       "FieldValueNotSupported"))
    if causes:
        raise errors.invalid("TokenRequest", name, causes, group=_GROUP)
