"""NodeRestriction (plugin/pkg/admission/noderestriction): what the Node authorizer lets every kubelet do is narrowed
to its own objects. A node (`system:node:<name>` in system:nodes) may
  - create and update only its own Node, never change its taints after registration, and never set or change
    labels reserved to administrators (kubernetes.io / k8s.io domains other than the kubelet's own labels, and
    anything under node-restriction.kubernetes.io/);
  - create only mirror pods bound to itself, owned by its Node, referencing no service account, secret, configmap
    or persistent volume claim; delete, update the status of and evict only pods bound to itself;
  - request service-account tokens only when bound to a pod that runs on it;
  - touch only its own lease in kube-node-lease.
"""
from __future__ import annotations

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.apiserver.admission.service_account import MIRROR_ANNOTATION
from kpy_components.apiserver.auth.node import node_name, pod_references
from kpy_components.apiserver.http.context import InternalAPI

RESTRICTED_DOMAIN = "node-restriction.kubernetes.io"
# Labels a kubelet sets on its own Node (k8s.io/kubelet/pkg/apis well_known_labels.go).
KUBELET_LABELS = {"kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch",
                  "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
                  "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
                  "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone"}
KUBELET_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _in_domain(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def forbidden_labels(keys: set[str]) -> list[str]:
    forbidden_keys = []
    for key in sorted(keys):
        domain = key.split("/", 1)[0] if "/" in key else ""
        if _in_domain(domain, RESTRICTED_DOMAIN):
            forbidden_keys.append(key)
        elif (_in_domain(domain, "kubernetes.io") or _in_domain(domain, "k8s.io")) and key not in KUBELET_LABELS \
                and not any(_in_domain(domain, allowed) for allowed in KUBELET_DOMAINS):
            forbidden_keys.append(key)
    return forbidden_keys


def modified_labels(new: dict, old: dict) -> set[str]:
    return {key for key in set(new) | set(old) if new.get(key) != old.get(key)}


def _labels(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


class NodeRestriction:
    def __init__(self, api: InternalAPI):
        self.api = api

    async def validate(self, attributes: Attributes) -> None:
        node = node_name(attributes.user)
        if node is None:
            return
        if not node:
            raise forbidden(attributes, f'could not determine node from user "{attributes.user.name}"')
        info = attributes.info
        if (info.api_group, info.resource) == ("", "pods"):
            await self._pod(node, attributes)
        elif (info.api_group, info.resource) == ("", "nodes"):
            self._node(node, attributes)
        elif attributes.targets("", "serviceaccounts", "token"):
            await self._token(node, attributes)
        elif (info.api_group, info.resource) == ("coordination.k8s.io", "leases"):
            if attributes.namespace != "kube-node-lease" or attributes.name != node:
                raise forbidden(attributes, "can only access node lease with the same name as the requesting node")

    # --- pods ----------------------------------------------------------------------------------------------------
    async def _pod(self, node: str, attributes: Attributes) -> None:
        subresource, operation = attributes.info.subresource, attributes.operation
        if subresource == "" and operation == "CREATE":
            self._mirror_pod(node, attributes)
        elif subresource == "" and operation == "DELETE":
            await self._bound_here(node, attributes, "can only delete pods with spec.nodeName set to itself")
        elif subresource == "":
            raise forbidden(attributes, f'unexpected operation "{operation}", node "{node}" can only create and '
                            "delete mirror pods")
        elif subresource == "status" and operation == "UPDATE":
            await self._bound_here(node, attributes, "can only update pod status for pods with spec.nodeName set "
                                   "to itself")
        elif subresource == "eviction" and operation == "CREATE":
            await self._bound_here(node, attributes, "can only evict pods with spec.nodeName set to itself")
        elif subresource in ("status", "eviction"):
            raise forbidden(attributes, f'unexpected operation "{operation}"')
        else:
            raise forbidden(attributes, f"unexpected pod subresource \"{subresource}\", only 'status' and "
                            "'eviction' are allowed")

    async def _bound_here(self, node: str, attributes: Attributes, refusal: str) -> None:
        pod = attributes.old
        if pod is None:  # eviction: the object is an Eviction; the pod is the one named by the request
            pod = await self.api.get("", "pods", attributes.namespace, attributes.info.name or attributes.name)
        if ((pod.get("spec") or {}).get("nodeName") or "") != node:
            raise forbidden(attributes, f'node "{node}" {refusal}')

    @staticmethod
    def _mirror_pod(node: str, attributes: Attributes) -> None:
        pod = attributes.obj or {}
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        refuse = f'node "{node}"'
        if MIRROR_ANNOTATION not in (meta.get("annotations") or {}):
            raise forbidden(attributes, f'pod does not have "{MIRROR_ANNOTATION}" annotation, {refuse} can only '
                            "create mirror pods")
        if spec.get("nodeName") != node:
            raise forbidden(attributes, f"{refuse} can only create pods with spec.nodeName set to itself")
        owners = meta.get("ownerReferences") or []
        if len(owners) > 1:
            raise forbidden(attributes, f"{refuse} can only create pods with a single owner reference set to itself")
        owner = owners[0] if owners else {}
        if (owner.get("apiVersion"), owner.get("kind"), owner.get("name")) != ("v1", "Node", node):
            raise forbidden(attributes, f"{refuse} can only create pods with an owner reference set to itself")
        if not owner.get("controller"):
            raise forbidden(attributes, f"{refuse} can only create pods with a controller owner reference set to "
                            "itself")
        if owner.get("blockOwnerDeletion"):
            raise forbidden(attributes, f"{refuse} must not set blockOwnerDeletion on an owner reference")
        if spec.get("serviceAccountName"):
            raise forbidden(attributes, f"{refuse} can not create pods that reference a service account")
        kinds = {kind for kind, _, _ in pod_references(pod)}
        for kind, plural in (("secret", "secrets"), ("configmap", "configmaps"), ("pvc", "persistentvolumeclaims")):
            if kind in kinds:
                raise forbidden(attributes, f"{refuse} can not create pods that reference {plural}")

    # --- nodes ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _node(node: str, attributes: Attributes) -> None:
        if attributes.name != node:
            raise forbidden(attributes, f'node "{node}" is not allowed to modify node "{attributes.name}"')
        if attributes.operation == "CREATE":
            refused = forbidden_labels(set(_labels(attributes.obj)))
            if refused:
                raise forbidden(attributes, f'node "{node}" is not allowed to set the following labels: '
                                f"{', '.join(refused)}")
        elif attributes.operation == "UPDATE":
            taints = ((attributes.obj or {}).get("spec") or {}).get("taints") or []
            old_taints = ((attributes.old or {}).get("spec") or {}).get("taints") or []
            if taints != old_taints:
                raise forbidden(attributes, f'node "{node}" is not allowed to modify taints')
            refused = forbidden_labels(modified_labels(_labels(attributes.obj), _labels(attributes.old)))
            if refused:
                raise forbidden(attributes, f"is not allowed to modify labels: {', '.join(refused)}")

    # --- service account tokens ----------------------------------------------------------------------------------
    async def _token(self, node: str, attributes: Attributes) -> None:
        ref = ((attributes.obj or {}).get("spec") or {}).get("boundObjectRef") or {}
        if ref.get("kind") != "Pod":
            raise forbidden(attributes, "node requested token not bound to a pod")
        try:
            pod = await self.api.get("", "pods", attributes.namespace, ref.get("name", ""))
        except APIError as error:
            if error.code != 404:
                raise
            raise forbidden(attributes, "node requested token bound to a pod that does not exist") from None
        if ref.get("uid") and ref["uid"] != (pod.get("metadata") or {}).get("uid"):
            raise forbidden(attributes, f"the UID in the bound object reference ({ref['uid']}) does not match the "
                            "UID in record. The object might have been deleted and then recreated")
        if ((pod.get("spec") or {}).get("nodeName") or "") != node:
            raise forbidden(attributes, "node requested token bound to a pod scheduled on a different node")
