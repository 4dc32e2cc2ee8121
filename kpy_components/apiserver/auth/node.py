"""The Node authorizer (plugin/pkg/auth/authorizer/node): kubelets, authenticated as `system:node:<name>` in group
`system:nodes`, may read only what the pods bound to their node need.

A graph built from pods (spec.nodeName) relates each node to the secrets, configmaps, persistent volume claims and
service accounts its pods reference, and (through the claims' spec.volumeName) to the persistent volumes bound to
those claims. Requests for those (and for pods by name, and node leases) are decided from
the graph; everything else is checked against the static node rules (the system:node ClusterRole's). Requests the
graph does not relate get no opinion, with Kubernetes' reason, so RBAC may still allow them:
`no relationship found between node 'n1' and this object`.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from kpy_components.apiserver.auth.authz import Decision, Rules
from kpy_components.apiserver.auth.bootstrap import NODE_RULES
from kpy_components.apiserver.auth.rules import PolicyRule
from kpy_components.apiserver.http.context import RequestInfo, User

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"
_STATIC_RULES = tuple(PolicyRule.from_dict(r) for r in NODE_RULES)

Ref = tuple[str, str, str]  # (kind, namespace, name): kind is secret, configmap, pvc, serviceaccount or pod


def node_name(user: User) -> str | None:
    """The node a user is, "" for a member of system:nodes without a usable name, None for anyone else."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_PREFIX):
        return None
    return user.name[len(NODE_PREFIX):]


def _names(items, *path: str) -> list[str]:
    found = []
    for item in items or ():
        value = item
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            found.append(value)
    return found


def pod_references(pod: dict) -> set[Ref]:
    """Everything a pod makes its node read: volumes, env, envFrom, image pull secrets, its service account."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    account = spec.get("serviceAccountName") or "default"
    refs: set[Ref] = {("pod", namespace, name), ("serviceaccount", namespace, account)}

    def add(kind: str, names: list[str]) -> None:
        refs.update((kind, namespace, n) for n in names)

    volumes = spec.get("volumes") or []
    add("secret", _names(volumes, "secret", "secretName") + _names(volumes, "csi", "nodePublishSecretRef", "name")
        + _names(spec.get("imagePullSecrets"), "name"))
    add("configmap", _names(volumes, "configMap", "name"))
    add("pvc", _names(volumes, "persistentVolumeClaim", "claimName"))
    add("pvc", [f"{name}-{v['name']}" for v in volumes if isinstance(v, dict) and v.get("ephemeral") and v.get("name")])
    for volume in volumes:
        sources = ((volume or {}).get("projected") or {}).get("sources") or []
        add("secret", _names(sources, "secret", "name"))
        add("configmap", _names(sources, "configMap", "name"))
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            env, env_from = container.get("env") or [], container.get("envFrom") or []
            add("secret", _names(env, "valueFrom", "secretKeyRef", "name") + _names(env_from, "secretRef", "name"))
            add("configmap", _names(env, "valueFrom", "configMapKeyRef", "name")
                + _names(env_from, "configMapRef", "name"))
    return refs


class NodeGraph:
    """Which objects each node's pods reference; fed like RBACIndex (`replace` after a list, `apply` per event)."""

    def __init__(self):
        self._pods: dict[tuple[str, str], tuple[str, set[Ref]]] = {}
        self._edges: dict[str, Counter] = defaultdict(Counter)
        self._claim_volumes: dict[tuple[str, str], str] = {}  # (namespace, claim) -> the volume it is bound to

    def _remove(self, key: tuple[str, str]) -> None:
        node, refs = self._pods.pop(key, ("", set()))
        if node:
            self._edges[node].subtract(refs)
            self._edges[node] = +self._edges[node]  # drop counts that reached zero

    def _add(self, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        self._remove(key)
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if node:
            refs = pod_references(pod)
            self._pods[key] = (node, refs)
            self._edges[node].update(refs)

    def replace(self, pods: list[dict]) -> None:
        self._pods.clear()
        self._edges.clear()
        for pod in pods:
            self._add(pod)

    def apply(self, event_type: str, pod: dict) -> None:
        if event_type == "DELETED":
            meta = pod.get("metadata") or {}
            self._remove((meta.get("namespace", ""), meta.get("name", "")))
        elif event_type in ("ADDED", "MODIFIED"):
            self._add(pod)

    def related(self, node: str, ref: Ref) -> bool:
        return self._edges.get(node, Counter())[ref] > 0

    def replace_claims(self, claims: list[dict]) -> None:
        self._claim_volumes.clear()
        for claim in claims:
            self.apply_claim("ADDED", claim)

    def apply_claim(self, event_type: str, claim: dict) -> None:
        meta = claim.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        volume = (claim.get("spec") or {}).get("volumeName")
        if event_type == "DELETED" or not volume:
            self._claim_volumes.pop(key, None)
        elif event_type in ("ADDED", "MODIFIED"):
            self._claim_volumes[key] = volume

    def related_volume(self, node: str, volume: str) -> bool:
        """Whether a claim some pod of the node uses is bound to `volume`."""
        return any(kind == "pvc" and self._claim_volumes.get((namespace, name)) == volume
                   for (kind, namespace, name), count in self._edges.get(node, Counter()).items() if count > 0)


_NO_RELATION = "no relationship found between node '{node}' and this object"
_GRAPH_RESOURCES = {("", "secrets"): "secret", ("", "configmaps"): "configmap",
                    ("", "persistentvolumeclaims"): "pvc"}


class NodeAuthorizer:
    def __init__(self, graph: NodeGraph):
        self.graph = graph

    def authorize(self, user: User, info: RequestInfo) -> tuple[Decision, str]:
        node = node_name(user)
        if node is None:
            return Decision.NO_OPINION, ""
        if not node:
            return Decision.NO_OPINION, f'unknown node for user "{user.name}"'
        if info.is_resource_request:
            resource = (info.api_group, info.resource)
            if resource in (("", "secrets"), ("", "configmaps")):
                return self._read_namespaced(node, _GRAPH_RESOURCES[resource], info)
            if resource == ("", "persistentvolumeclaims"):
                return self._pvc(node, info)
            if resource == ("", "persistentvolumes"):
                return self._pv(node, info)
            if resource == ("", "serviceaccounts"):
                return self._create_token(node, info)
            if resource == ("coordination.k8s.io", "leases"):
                return self._lease(node, info)
            if resource == ("", "pods") and info.verb == "get" and not info.subresource:
                return self._related(node, ("pod", info.namespace, info.name))
        if any(rule.allows(info) for rule in _STATIC_RULES):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    def _related(self, node: str, ref: Ref) -> tuple[Decision, str]:
        if not ref[2]:
            return Decision.NO_OPINION, "No Object name found"
        if self.graph.related(node, ref):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, _NO_RELATION.format(node=node)

    def _read_namespaced(self, node: str, kind: str, info: RequestInfo) -> tuple[Decision, str]:
        if info.verb not in ("get", "list", "watch"):
            return Decision.NO_OPINION, "can only read resources of this type"
        if info.subresource:
            return Decision.NO_OPINION, "cannot read subresource"
        if not info.namespace:
            return Decision.NO_OPINION, "can only read namespaced object of this type"
        return self._related(node, (kind, info.namespace, info.name))

    def _pvc(self, node: str, info: RequestInfo) -> tuple[Decision, str]:
        if info.subresource == "status":
            if info.verb not in ("get", "update", "patch"):
                return Decision.NO_OPINION, "can only get, update or patch the status of this type"
        elif info.verb != "get":
            return Decision.NO_OPINION, "can only get individual resources of this type"
        elif info.subresource:
            return Decision.NO_OPINION, "cannot get subresource"
        return self._related(node, ("pvc", info.namespace, info.name))

    def _pv(self, node: str, info: RequestInfo) -> tuple[Decision, str]:
        if info.verb != "get":
            return Decision.NO_OPINION, "can only get individual resources of this type"
        if info.subresource:
            return Decision.NO_OPINION, "cannot get subresource"
        if not info.name:
            return Decision.NO_OPINION, "No Object name found"
        if self.graph.related_volume(node, info.name):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, _NO_RELATION.format(node=node)

    def _create_token(self, node: str, info: RequestInfo) -> tuple[Decision, str]:
        if info.verb != "create" or not info.name:
            return Decision.NO_OPINION, "can only create tokens for individual service accounts"
        if info.subresource != "token":
            return Decision.NO_OPINION, "can only create token subresource of serviceaccount"
        return self._related(node, ("serviceaccount", info.namespace, info.name))

    @staticmethod
    def _lease(node: str, info: RequestInfo) -> tuple[Decision, str]:
        if info.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease"
        if info.namespace != LEASE_NAMESPACE:
            return Decision.NO_OPINION, f'can only access leases in the "{LEASE_NAMESPACE}" system namespace'
        if info.verb != "create" and info.name != node:  # create has no name here: NodeRestriction checks it
            return Decision.NO_OPINION, "can only access node lease with the same name as the requesting node"
        return Decision.ALLOW, ""

    def rules_for(self, user: User, namespace: str) -> Rules:
        if node_name(user) is None:
            return Rules()
        return Rules(incomplete=True, errors=["node authorizer does not support user rule resolution"])
