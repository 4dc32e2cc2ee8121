"""certificates.k8s.io/v1 CertificateSigningRequests: the requester's identity recorded on create, the spec
immutable, conditions changed only through /approval (Approved, Denied) and /status (Failed, the certificate),
validated in upstream's words (pkg/apis/certificates/validation)."""
from __future__ import annotations

import base64
import binascii

from kpy_components.api import meta
from kpy_components.api.errors import Cause
from kpy_components.api.meta import field_invalid, field_required

from .. import validation
from ..strategy import Strategy

_USAGES = ["any", "cert sign", "client auth", "code signing", "content commitment", "crl sign", "data encipherment",
           "decipher only", "digital signature", "email protection", "encipher only", "ipsec end system",
           "ipsec tunnel", "ipsec user", "key agreement", "key encipherment", "microsoft sgc", "netscape sgc",
           "ocsp signing", "s/mime", "server auth", "signing", "timestamping"]
_EXCLUSIVE = ("Approved", "Denied")


def _request_problem(request) -> str | None:
    try:
        text = base64.b64decode(request or "", validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return "PEM block type must be CERTIFICATE REQUEST"
    if "-----BEGIN CERTIFICATE REQUEST-----" not in text and "-----BEGIN NEW CERTIFICATE REQUEST-----" not in text:
        return "PEM block type must be CERTIFICATE REQUEST"
    return None


def with_condition_times(conditions: list) -> list:
    """Conditions as stored: lastUpdateTime and lastTransitionTime filled in when the writer left them out."""
    now = meta.now_rfc3339()
    for condition in conditions:
        if isinstance(condition, dict):
            for key in ("lastUpdateTime", "lastTransitionTime"):
                if not condition.get(key):  # kubectl sends them as null
                    condition[key] = now
    return conditions


class CertificateSigningRequestStrategy(Strategy):
    def prepare_for_update(self, new: dict, old: dict) -> None:
        super().prepare_for_update(new, old)
        if "spec" in old:
            new["spec"] = meta.deep_copy(old["spec"])

    async def allocate(self, ctx, new: dict, old: dict | None) -> None:
        """Who asked is recorded from the request's user, whatever the body said (upstream's PrepareForCreate)."""
        if old is not None or ctx.user is None:
            return
        spec = new.setdefault("spec", {})
        spec["username"] = ctx.user.name
        spec["uid"] = ctx.user.uid
        spec["groups"] = list(ctx.user.groups)
        extra = {key: list(values) for key, values in (ctx.user.extra or {}).items()}
        if extra:
            spec["extra"] = extra
        else:
            spec.pop("extra", None)

    def validate(self, obj: dict) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = []
        if not spec.get("request"):
            causes.append(field_required("spec.request"))
        elif problem := _request_problem(spec["request"]):
            causes.append(field_invalid("spec.request", spec["request"][:32], problem))
        signer = spec.get("signerName") or ""
        if not signer:
            causes.append(field_required("spec.signerName"))
        elif "/" not in signer or not meta.is_dns1123_subdomain(signer.split("/", 1)[0]):
            causes.append(field_invalid("spec.signerName", signer, "must be a fully qualified domain and path of "
                                        "the form 'example.com/signer-name'"))
        if not spec.get("usages"):
            causes.append(field_required("spec.usages"))
        for index, usage in enumerate(spec.get("usages") or []):
            causes += validation.one_of(usage, f"spec.usages[{index}]", _USAGES)
        seconds = spec.get("expirationSeconds")
        if isinstance(seconds, int) and seconds < 600:
            causes.append(field_invalid("spec.expirationSeconds", seconds, "may not specify a duration less than "
                                        "600 seconds (10 minutes)"))
        return causes + self._conditions(obj)

    @staticmethod
    def _conditions(obj: dict) -> list[Cause]:
        causes, seen = [], set()
        for index, condition in enumerate((obj.get("status") or {}).get("conditions") or []):
            here = f"status.conditions[{index}]"
            kind = condition.get("type")
            if not kind:
                causes.append(field_required(f"{here}.type"))
                continue
            if kind in seen:
                causes.append(meta.field_duplicate(f"{here}.type", kind))
            if kind in _EXCLUSIVE and any(other in seen for other in _EXCLUSIVE if other != kind):
                causes.append(field_invalid(f"{here}.type", kind, "Approved and Denied conditions are mutually "
                                            "exclusive"))
            seen.add(kind)
            if kind in _EXCLUSIVE + ("Failed",) and condition.get("status") != "True":
                causes.append(meta.field_not_supported(f"{here}.status", condition.get("status"), ["True"]))
        return causes
