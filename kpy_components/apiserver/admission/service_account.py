"""ServiceAccount admission (plugin/pkg/admission/serviceaccount), on pod creation:
  - spec.serviceAccountName defaults to "default"; a pod naming a missing account is refused (403
    `error looking up service account ns/name: serviceaccount "name" not found`);
  - unless automountServiceAccountToken is false (pod first, then account), a projected volume
    `kube-api-access-<5 chars>` (a bound token valid 3607 s, the cluster CA from configmap kube-root-ca.crt, the
    namespace) is added and mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container
    and init container that has nothing mounted there yet;
  - the account's imagePullSecrets are copied to a pod that names none.
Mirror pods (static pods a kubelet reports) are left alone: they may not use service accounts.
"""
from __future__ import annotations

import random

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.apiserver.http.context import InternalAPI

DEFAULT_ACCOUNT = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TOKEN_EXPIRATION_SECONDS = 3607  # kube-apiserver's warn-only bound token lifetime for projected volumes
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generated-name suffix alphabet


def token_volume(name: str) -> dict:
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def is_mirror_pod(pod: dict) -> bool:
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


class ServiceAccountAdmission:
    def __init__(self, api: InternalAPI):
        self.api = api

    async def admit(self, attributes: Attributes) -> None:
        if attributes.operation != "CREATE" or not attributes.targets("", "pods") or attributes.obj is None:
            return
        pod = attributes.obj
        if is_mirror_pod(pod):
            return
        spec = pod.setdefault("spec", {})
        spec["serviceAccountName"] = spec.get("serviceAccountName") or DEFAULT_ACCOUNT
        account = await self._account(attributes, spec["serviceAccountName"])
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name")} for s in account["imagePullSecrets"]]
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = account.get("automountServiceAccountToken", True)
        if automount is not False:
            mount_token(spec)

    async def _account(self, attributes: Attributes, name: str) -> dict:
        try:
            return await self.api.peek("", "serviceaccounts", attributes.namespace, name)
        except APIError as error:
            if error.code != 404:
                raise
            raise forbidden(attributes, f"error looking up service account {attributes.namespace}/{name}: "
                            f'serviceaccount "{name}" not found') from None


def mount_token(spec: dict) -> None:
    """Mount the token volume into every container lacking a mount at MOUNT_PATH; add the volume if any did."""
    volumes = spec["volumes"] = spec.get("volumes") or []
    existing = next((v["name"] for v in volumes if isinstance(v, dict) and
                     str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + "".join(random.choices(_NAME_ALPHABET, k=5))
    needed = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            mounts = container["volumeMounts"] = container.get("volumeMounts") or []
            if not any(m.get("mountPath") == MOUNT_PATH for m in mounts if isinstance(m, dict)):
                mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
                needed = True
    if needed and existing is None:
        volumes.append(token_volume(name))
    if not volumes:
        del spec["volumes"]
