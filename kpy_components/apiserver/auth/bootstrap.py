"""The default RBAC policy kube-apiserver creates at start (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), as data:
the user-facing roles (cluster-admin, admin/edit/view built by aggregation), the system roles of the control-plane
components and nodes, the `system:controller:*` roles the controller manager's controllers run as (one service account
each in kube-system), the kube-system/kube-public Roles, and their bindings.

Every object carries the label kubernetes.io/bootstrapping=rbac-defaults and the annotation
rbac.authorization.kubernetes.io/autoupdate=true; `reconcile.py` creates what is missing and tops up objects that
still say autoupdate=true.
"""
from __future__ import annotations

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
CONTROLLER_PREFIX = "system:controller:"

READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
READ_WRITE = READ + WRITE
CPU = ("create", "patch", "update")  # what event recorders need

_CORE, _APPS, _BATCH, _EXT = "", "apps", "batch", "extensions"
_AUTHN, _AUTHZ, _COORD = "authentication.k8s.io", "authorization.k8s.io", "coordination.k8s.io"
_STORAGE, _CERTS, _POLICY, _NET = "storage.k8s.io", "certificates.k8s.io", "policy", "networking.k8s.io"


def rule(verbs, groups=(), resources=(), names=(), urls=()) -> dict:
    """A PolicyRule dict. `groups` may be one group name or several."""
    groups = (groups,) if isinstance(groups, str) else groups
    out: dict = {"verbs": list(verbs)}
    if urls:
        out["nonResourceURLs"] = list(urls)
        return out
    out["apiGroups"] = list(groups)
    out["resources"] = list(resources)
    if names:
        out["resourceNames"] = list(names)
    return out


def _events() -> dict:
    return rule(CPU, (_CORE, "events.k8s.io"), ("events",))


def _reviews(*extra_sar: str) -> list[dict]:
    return [rule(("create",), _AUTHN, ("tokenreviews",)),
            rule(("create",), _AUTHZ, ("subjectaccessreviews", *extra_sar))]


# --- nodes (also the static rules of the Node authorizer) -------------------------------------------------------------

NODE_RULES: list[dict] = [
    *_reviews("localsubjectaccessreviews"),
    rule(READ, _CORE, ("services",)),
    rule(("create", "get", "list", "watch"), _CORE, ("nodes",)),
    rule(("patch", "update"), _CORE, ("nodes/status",)),
    rule(("patch", "update"), _CORE, ("nodes",)),
    rule(CPU, _CORE, ("events",)),
    rule(READ, _CORE, ("pods",)),
    rule(("create", "delete"), _CORE, ("pods",)),
    rule(("patch", "update"), _CORE, ("pods/status",)),
    rule(("create",), _CORE, ("pods/eviction",)),
    rule(READ, _CORE, ("configmaps", "secrets")),
    rule(("get",), _CORE, ("persistentvolumeclaims", "persistentvolumes")),
    rule(READ, _CORE, ("endpoints",)),
    rule(("create", "get", "list", "watch"), _CERTS, ("certificatesigningrequests",)),
    rule(("create", "delete", "get", "patch", "update"), _COORD, ("leases",)),
    rule(("get",), _STORAGE, ("volumeattachments",)),
    rule(("create",), _CORE, ("serviceaccounts/token",)),
    rule(("get", "patch", "update"), _CORE, ("persistentvolumeclaims/status",)),
    rule(READ, _STORAGE, ("csidrivers",)),
    rule(("create", "delete", "get", "patch", "update"), _STORAGE, ("csinodes",)),
    rule(READ, "node.k8s.io", ("runtimeclasses",)),
]

# --- cluster roles ----------------------------------------------------------------------------------------------------

_AGGREGATED = {  # name -> (aggregates roles labelled aggregate-to-<name>, is itself aggregated into)
    "admin": ("admin", None),
    "edit": ("edit", "admin"),
    "view": ("view", "edit"),
}

_CLUSTER_ROLES: dict[str, list[dict]] = {
    "cluster-admin": [rule(("*",), "*", ("*",)), rule(("*",), urls=("*",))],
    "system:discovery": [rule(("get",), urls=("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                              "/openapi/*", "/readyz", "/version", "/version/"))],
    "system:public-info-viewer": [rule(("get",), urls=("/healthz", "/livez", "/readyz", "/version", "/version/"))],
    "system:monitoring": [rule(("get",), urls=("/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics",
                                               "/metrics/slis", "/readyz", "/readyz/*"))],
    "system:basic-user": [rule(("create",), _AUTHZ, ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
                          rule(("create",), _AUTHN, ("selfsubjectreviews",))],
    "system:aggregate-to-admin": [
        rule(("create",), _AUTHZ, ("localsubjectaccessreviews",)),
        rule(READ_WRITE, GROUP, ("rolebindings", "roles")),
    ],
    "system:aggregate-to-edit": [
        rule(READ, _CORE, ("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy")),
        rule(("impersonate",), _CORE, ("serviceaccounts",)),
        rule(WRITE, _CORE, ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy")),
        rule(("create",), _CORE, ("pods/eviction",)),
        rule(WRITE, _CORE, ("configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                            "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                            "services/proxy")),
        rule(("create",), _CORE, ("serviceaccounts/token",)),
        rule(WRITE, _APPS, ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                            "replicasets/scale", "statefulsets", "statefulsets/scale")),
        rule(WRITE, "autoscaling", ("horizontalpodautoscalers",)),
        rule(WRITE, _BATCH, ("cronjobs", "jobs")),
        rule(WRITE, _EXT, ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
                           "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale")),
        rule(WRITE, _POLICY, ("poddisruptionbudgets",)),
        rule(WRITE, _NET, ("ingresses", "networkpolicies")),
        rule(READ_WRITE, _COORD, ("leases",)),
    ],
    "system:aggregate-to-view": [
        rule(READ, _CORE, ("configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
                           "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                           "services", "services/status")),
        rule(READ, _CORE, ("bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                           "replicationcontrollers/status", "resourcequotas", "resourcequotas/status")),
        rule(READ, _CORE, ("namespaces",)),
        rule(READ, "discovery.k8s.io", ("endpointslices",)),
        rule(READ, _APPS, ("controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                           "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                           "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status")),
        rule(READ, "autoscaling", ("horizontalpodautoscalers", "horizontalpodautoscalers/status")),
        rule(READ, _BATCH, ("cronjobs", "cronjobs/status", "jobs", "jobs/status")),
        rule(READ, _EXT, ("daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                          "deployments/status", "ingresses", "ingresses/status", "networkpolicies", "replicasets",
                          "replicasets/scale", "replicasets/status", "replicationcontrollers/scale")),
        rule(READ, _POLICY, ("poddisruptionbudgets", "poddisruptionbudgets/status")),
        rule(READ, _NET, ("ingresses", "ingresses/status", "networkpolicies")),
    ],
    "system:auth-delegator": _reviews(),
    "system:heapster": [rule(READ, _CORE, ("events", "namespaces", "nodes", "pods")),
                        rule(READ, _EXT, ("deployments",))],
    "system:node": NODE_RULES,
    "system:node-bootstrapper": [rule(("create", "get", "list", "watch"), _CERTS, ("certificatesigningrequests",))],
    "system:node-problem-detector": [rule(("get",), _CORE, ("nodes",)), rule(("patch",), _CORE, ("nodes/status",)),
                                     _events()],
    "system:node-proxier": [rule(("list", "watch"), _CORE, ("endpoints", "services")),
                            rule(READ, _CORE, ("nodes",)), _events(),
                            rule(("list", "watch"), "discovery.k8s.io", ("endpointslices",))],
    "system:kubelet-api-admin": [rule(READ, _CORE, ("nodes",)), rule(("proxy",), _CORE, ("nodes",)),
                                 rule(("*",), _CORE, ("nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"))],
    "system:kube-aggregator": [rule(READ, _CORE, ("endpoints", "services"))],
    "system:kube-dns": [rule(("list", "watch"), _CORE, ("endpoints", "services"))],
    "system:kube-controller-manager": [
        _events(),
        rule(("create",), _COORD, ("leases",)),
        rule(("get", "update"), _COORD, ("leases",), names=("kube-controller-manager",)),
        rule(("create",), _CORE, ("secrets", "serviceaccounts")),
        rule(("delete",), _CORE, ("secrets",)),
        rule(("get",), _CORE, ("configmaps", "namespaces", "secrets", "serviceaccounts")),
        rule(("update",), _CORE, ("secrets", "serviceaccounts")),
        *_reviews(),
        rule(("list", "watch"), "*", ("*",)),
        rule(("create",), _CORE, ("serviceaccounts/token",)),
    ],
    "system:kube-scheduler": [
        _events(),
        rule(("create",), _COORD, ("leases",)),
        rule(("get", "update"), _COORD, ("leases",), names=("kube-scheduler",)),
        rule(READ, _CORE, ("nodes",)),
        rule(("delete", "get", "list", "watch"), _CORE, ("pods",)),
        rule(("create",), _CORE, ("bindings", "pods/binding")),
        rule(("patch", "update"), _CORE, ("pods/status",)),
        rule(READ, _CORE, ("replicationcontrollers", "services")),
        rule(READ, (_APPS, _EXT), ("replicasets",)),
        rule(READ, _APPS, ("statefulsets",)),
        rule(READ, _POLICY, ("poddisruptionbudgets",)),
        rule(READ, _CORE, ("persistentvolumeclaims", "persistentvolumes")),
        *_reviews(),
        rule(READ, _STORAGE, ("csinodes",)),
        rule(READ, _CORE, ("namespaces",)),
        rule(READ, _STORAGE, ("csidrivers",)),
        rule(READ, _STORAGE, ("csistoragecapacities",)),
    ],
    "system:volume-scheduler": [rule(("get", "list", "patch", "update", "watch"), _CORE, ("persistentvolumes",)),
                                rule(READ, _STORAGE, ("storageclasses",)),
                                rule(("get", "list", "patch", "update", "watch"), _CORE,
                                     ("persistentvolumeclaims",))],
    "system:persistent-volume-provisioner": [
        rule(("create", "delete", "get", "list", "watch"), _CORE, ("persistentvolumes",)),
        rule(("get", "list", "update", "watch"), _CORE, ("persistentvolumeclaims",)),
        rule(READ, _STORAGE, ("storageclasses",)), rule(("watch",), _CORE, ("events",)), _events()],
    "system:service-account-issuer-discovery": [rule(("get",), urls=("/.well-known/openid-configuration",
                                                                      "/openid/v1/jwks"))],
    # What csrapproving asks of a kubelet client CSR's requester: a new node's first certificate, a node's renewal.
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": [
        rule(("create",), _CERTS, ("certificatesigningrequests/nodeclient",))],
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": [
        rule(("create",), _CERTS, ("certificatesigningrequests/selfnodeclient",))],
    # Who may approve (certificatesigningrequests/approval) requests for each built-in signer.
    **{f"system:certificates.k8s.io:{signer}-approver": [
        rule(("approve",), _CERTS, ("signers",), names=(f"kubernetes.io/{signer}",))]
       for signer in ("legacy-unknown", "kubelet-serving", "kube-apiserver-client", "kube-apiserver-client-kubelet")},
}

# The controllers' roles, by controller name (role system:controller:<name>, service account kube-system/<name>).
_CONTROLLER_ROLES: dict[str, list[dict]] = {
    "certificate-controller": [  # csrapproving and csrsigning
        rule(("delete", "get", "list", "watch"), _CERTS, ("certificatesigningrequests",)),
        rule(("update",), _CERTS, ("certificatesigningrequests/approval", "certificatesigningrequests/status")),
        rule(("approve",), _CERTS, ("signers",), names=("kubernetes.io/kube-apiserver-client-kubelet",)),
        rule(("sign",), _CERTS, ("signers",), names=("kubernetes.io/kube-apiserver-client",
                                                     "kubernetes.io/kube-apiserver-client-kubelet",
                                                     "kubernetes.io/kubelet-serving",
                                                     "kubernetes.io/legacy-unknown")),
        rule(("create",), _AUTHZ, ("subjectaccessreviews",)), _events()],
    "clusterrole-aggregation-controller": [rule(("escalate", "get", "list", "patch", "update", "watch"), GROUP,
                                                ("clusterroles",))],
    "cronjob-controller": [
        rule(("get", "list", "update", "watch"), _BATCH, ("cronjobs",)),
        rule(("create", "delete", "get", "list", "patch", "update", "watch"), _BATCH, ("jobs",)),
        rule(("update",), _BATCH, ("cronjobs/status",)), rule(("update",), _BATCH, ("cronjobs/finalizers",)),
        rule(("delete", "list", "watch"), _CORE, ("pods",)), _events()],
    "daemon-set-controller": [
        rule(READ, (_APPS, _EXT), ("daemonsets",)), rule(("update",), (_APPS, _EXT), ("daemonsets/status",)),
        rule(("update",), (_APPS, _EXT), ("daemonsets/finalizers",)), rule(("list", "watch"), _CORE, ("nodes",)),
        rule(("create", "delete", "list", "patch", "watch"), _CORE, ("pods",)),
        rule(("create",), _CORE, ("pods/binding",)),
        rule(("create", "delete", "get", "list", "patch", "update", "watch"), _APPS, ("controllerrevisions",)),
        _events()],
    "deployment-controller": [
        rule(("get", "list", "update", "watch"), (_APPS, _EXT), ("deployments",)),
        rule(("update",), (_APPS, _EXT), ("deployments/status",)),
        rule(("update",), (_APPS, _EXT), ("deployments/finalizers",)),
        rule(("create", "delete", "get", "list", "patch", "update", "watch"), (_APPS, _EXT), ("replicasets",)),
        rule(("get", "list", "update", "watch"), _CORE, ("pods",)), _events()],
    "disruption-controller": [
        rule(READ, (_APPS, _EXT), ("deployments",)), rule(READ, (_APPS, _EXT), ("replicasets",)),
        rule(READ, _CORE, ("replicationcontrollers",)), rule(READ, _POLICY, ("poddisruptionbudgets",)),
        rule(READ, _APPS, ("statefulsets",)), rule(("update",), _POLICY, ("poddisruptionbudgets/status",)),
        rule(("patch", "update"), _CORE, ("pods/status",)), rule(("get",), "*", ("*/scale",)), _events()],
    "endpoint-controller": [
        rule(READ, _CORE, ("pods", "services")),
        rule(("create", "delete", "get", "list", "update", "watch"), _CORE, ("endpoints",)),
        rule(("create",), _CORE, ("endpoints/restricted",)), _events()],
    "endpointslice-controller": [
        rule(READ, _CORE, ("nodes", "pods", "services")), rule(("update",), _CORE, ("services/finalizers",)),
        rule(("create", "delete", "get", "list", "update", "watch"), "discovery.k8s.io", ("endpointslices",)),
        _events()],
    "endpointslicemirroring-controller": [
        rule(READ, _CORE, ("endpoints", "services")), rule(("update",), _CORE, ("services/finalizers",)),
        rule(("update",), _CORE, ("endpoints/finalizers",)),
        rule(("create", "delete", "get", "list", "update", "watch"), "discovery.k8s.io", ("endpointslices",)),
        _events()],
    "generic-garbage-collector": [rule(("delete", "get", "list", "patch", "update", "watch"), "*", ("*",)),
                                  _events()],
    "job-controller": [
        rule(("get", "list", "patch", "update", "watch"), _BATCH, ("jobs",)),
        rule(("update",), _BATCH, ("jobs/status",)), rule(("update",), _BATCH, ("jobs/finalizers",)),
        rule(("create", "delete", "list", "patch", "watch"), _CORE, ("pods",)), _events()],
    "namespace-controller": [
        rule(("delete", "get", "list", "watch"), _CORE, ("namespaces",)),
        rule(("update",), _CORE, ("namespaces/finalize", "namespaces/status")),
        rule(("delete", "deletecollection", "get", "list", "watch"), "*", ("*",))],
    "node-controller": [
        rule(("delete", "get", "list", "patch", "update", "watch"), _CORE, ("nodes",)),
        rule(("patch", "update"), _CORE, ("nodes/status",)), rule(("patch", "update"), _CORE, ("pods/status",)),
        rule(("delete", "get", "list", "watch"), _CORE, ("pods",)), _events()],
    "persistent-volume-binder": [
        rule(("create", "delete", "get", "list", "update", "watch"), _CORE, ("persistentvolumes",)),
        rule(("update",), _CORE, ("persistentvolumes/status",)),
        rule(("get", "list", "update", "watch"), _CORE, ("persistentvolumeclaims",)),
        rule(("update",), _CORE, ("persistentvolumeclaims/status",)),
        rule(("create", "delete", "get", "list", "watch"), _CORE, ("pods",)),
        rule(READ, _STORAGE, ("storageclasses",)),
        rule(("create", "delete", "get", "update"), _CORE, ("endpoints",)),
        rule(("create", "delete", "get"), _CORE, ("services",)), rule(("get",), _CORE, ("secrets",)),
        rule(("get", "list"), _CORE, ("nodes",)), rule(("watch",), _CORE, ("events",)), _events()],
    "pod-garbage-collector": [
        rule(("delete", "list", "watch"), _CORE, ("pods",)), rule(READ, _CORE, ("nodes",)),
        rule(("patch",), _CORE, ("pods/status",))],
    "pv-protection-controller": [rule(("get", "list", "update", "watch"), _CORE, ("persistentvolumes",)), _events()],
    "pvc-protection-controller": [rule(("get", "list", "update", "watch"), _CORE, ("persistentvolumeclaims",)),
                                  rule(READ, _CORE, ("pods",)), _events()],
    "replicaset-controller": [
        rule(("get", "list", "update", "watch"), (_APPS, _EXT), ("replicasets",)),
        rule(("update",), (_APPS, _EXT), ("replicasets/status",)),
        rule(("update",), (_APPS, _EXT), ("replicasets/finalizers",)),
        rule(("create", "delete", "list", "patch", "watch"), _CORE, ("pods",)), _events()],
    "replication-controller": [
        rule(("get", "list", "update", "watch"), _CORE, ("replicationcontrollers",)),
        rule(("update",), _CORE, ("replicationcontrollers/status",)),
        rule(("update",), _CORE, ("replicationcontrollers/finalizers",)),
        rule(("create", "delete", "list", "patch", "watch"), _CORE, ("pods",)), _events()],
    "resourcequota-controller": [rule(("list", "watch"), "*", ("*",)),
                                 rule(("update",), _CORE, ("resourcequotas/status",)), _events()],
    "root-ca-cert-publisher": [rule(("create", "update"), _CORE, ("configmaps",)), _events()],
    "service-account-controller": [rule(("create",), _CORE, ("serviceaccounts",)), _events()],
    "service-controller": [
        rule(READ, _CORE, ("services",)), rule(("patch", "update"), _CORE, ("services/status",)),
        rule(("list", "watch"), _CORE, ("nodes",)), _events()],
    "statefulset-controller": [
        rule(("list", "watch"), _CORE, ("pods",)), rule(READ, _APPS, ("statefulsets",)),
        rule(("update",), _APPS, ("statefulsets/status",)), rule(("update",), _APPS, ("statefulsets/finalizers",)),
        rule(("create", "delete", "get", "patch", "update"), _CORE, ("pods",)),
        rule(("create", "delete", "get", "list", "patch", "update", "watch"), _APPS, ("controllerrevisions",)),
        rule(("create", "get", "list", "watch"), _CORE, ("persistentvolumeclaims",)),
        rule(("delete", "update"), _CORE, ("persistentvolumeclaims",)),
        rule(("update",), _CORE, ("pods/finalizers",)), _events()],
    "ttl-after-finished-controller": [rule(("delete", "get", "list", "watch"), _BATCH, ("jobs",)), _events()],
    "ttl-controller": [rule(("list", "patch", "update", "watch"), _CORE, ("nodes",)), _events()],
}

# ClusterRoleBinding name (= ClusterRole name) -> subjects
_CLUSTER_BINDINGS: dict[str, list[tuple[str, str]]] = {
    "cluster-admin": [("Group", "system:masters")],
    "system:basic-user": [("Group", "system:authenticated")],
    "system:discovery": [("Group", "system:authenticated")],
    "system:public-info-viewer": [("Group", "system:authenticated"), ("Group", "system:unauthenticated")],
    "system:monitoring": [("Group", "system:monitoring")],
    "system:node": [],  # nodes are authorized by the Node authorizer; the binding exists empty, as upstream
    "system:node-proxier": [("User", "system:kube-proxy")],
    "system:kube-controller-manager": [("User", "system:kube-controller-manager")],
    "system:kube-dns": [("ServiceAccount", "kube-system/kube-dns")],
    "system:kube-scheduler": [("User", "system:kube-scheduler")],
    "system:volume-scheduler": [("User", "system:kube-scheduler")],
    "system:service-account-issuer-discovery": [("Group", "system:serviceaccounts")],
    # kubeadm's bindings (kubeadm:node-autoapprove-bootstrap, kubeadm:node-autoapprove-certificate-rotation), which
    # let csrapproving approve bootstrap-token nodes' first client certificates and every node's renewals.
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": [("Group", "system:bootstrappers")],
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": [("Group", "system:nodes")],
}

# (namespace, Role name) -> rules; (namespace, RoleBinding name, Role name) -> subjects
_ROLES: dict[tuple[str, str], list[dict]] = {
    ("kube-system", "extension-apiserver-authentication-reader"): [
        rule(READ, _CORE, ("configmaps",), names=("extension-apiserver-authentication",))],
    ("kube-system", "system::leader-locking-kube-controller-manager"): [
        rule(("watch",), _CORE, ("configmaps",)),
        rule(("get", "update"), _CORE, ("configmaps",), names=("kube-controller-manager",))],
    ("kube-system", "system::leader-locking-kube-scheduler"): [
        rule(("watch",), _CORE, ("configmaps",)),
        rule(("get", "update"), _CORE, ("configmaps",), names=("kube-scheduler",))],
    ("kube-system", "system:controller:bootstrap-signer"): [rule(READ, _CORE, ("secrets",))],
    ("kube-system", "system:controller:token-cleaner"): [rule(("delete", "get", "list", "watch"), _CORE, ("secrets",)),
                                                        _events()],
    ("kube-public", "system:controller:bootstrap-signer"): [
        rule(READ, _CORE, ("configmaps",)),
        rule(("update",), _CORE, ("configmaps",), names=("cluster-info",)), _events()],
}
_ROLE_BINDINGS: dict[tuple[str, str, str], list[tuple[str, str]]] = {
    ("kube-system", "system::extension-apiserver-authentication-reader", "extension-apiserver-authentication-reader"):
        [("User", "system:kube-controller-manager"), ("User", "system:kube-scheduler")],
    ("kube-system", "system::leader-locking-kube-controller-manager", "system::leader-locking-kube-controller-manager"):
        [("ServiceAccount", "kube-system/kube-controller-manager")],
    ("kube-system", "system::leader-locking-kube-scheduler", "system::leader-locking-kube-scheduler"):
        [("User", "system:kube-scheduler"), ("ServiceAccount", "kube-system/kube-scheduler")],
    ("kube-system", "system:controller:bootstrap-signer", "system:controller:bootstrap-signer"):
        [("ServiceAccount", "kube-system/bootstrap-signer")],
    ("kube-system", "system:controller:token-cleaner", "system:controller:token-cleaner"):
        [("ServiceAccount", "kube-system/token-cleaner")],
    ("kube-public", "system:controller:bootstrap-signer", "system:controller:bootstrap-signer"):
        [("ServiceAccount", "kube-system/bootstrap-signer")],
}


# --- objects ----------------------------------------------------------------------------------------------------------

def _metadata(name: str, namespace: str = "", labels: dict | None = None) -> dict:
    meta = {"name": name, "labels": {**BOOTSTRAPPING, **(labels or {})}, "annotations": {AUTOUPDATE: "true"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _subject(kind: str, name: str) -> dict:
    if kind == "ServiceAccount":
        namespace, _, account = name.partition("/")
        return {"kind": kind, "name": account, "namespace": namespace}
    return {"kind": kind, "apiGroup": GROUP, "name": name}


def _binding(kind: str, name: str, role_kind: str, role: str, subjects, namespace: str = "") -> dict:
    obj = {"apiVersion": API_VERSION, "kind": kind, "metadata": _metadata(name, namespace),
           "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role}}
    if subjects:
        obj["subjects"] = [_subject(*s) for s in subjects]
    return obj


def _aggregation_labels(name: str) -> dict:
    if name.startswith("system:aggregate-to-"):
        return {AGGREGATE_TO + name.removeprefix("system:aggregate-to-"): "true"}
    into = _AGGREGATED.get(name, (None, None))[1]
    return {AGGREGATE_TO + into: "true"} if into else {}


def cluster_roles() -> list[dict]:
    roles = []
    for name, (selects, _) in _AGGREGATED.items():
        roles.append({"apiVersion": API_VERSION, "kind": "ClusterRole",
                      "metadata": _metadata(name, labels=_aggregation_labels(name)),
                      "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + selects: "true"}}]},
                      "rules": []})
    for name, rules in _CLUSTER_ROLES.items():
        roles.append({"apiVersion": API_VERSION, "kind": "ClusterRole",
                      "metadata": _metadata(name, labels=_aggregation_labels(name)), "rules": rules})
    for controller, rules in _CONTROLLER_ROLES.items():
        roles.append({"apiVersion": API_VERSION, "kind": "ClusterRole",
                      "metadata": _metadata(CONTROLLER_PREFIX + controller), "rules": rules})
    return roles


def cluster_role_bindings() -> list[dict]:
    bindings = [_binding("ClusterRoleBinding", name, "ClusterRole", name, subjects)
                for name, subjects in _CLUSTER_BINDINGS.items()]
    bindings += [_binding("ClusterRoleBinding", CONTROLLER_PREFIX + c, "ClusterRole", CONTROLLER_PREFIX + c,
                          [("ServiceAccount", f"kube-system/{c}")]) for c in _CONTROLLER_ROLES]
    return bindings


def namespaced_roles() -> list[dict]:
    return [{"apiVersion": API_VERSION, "kind": "Role", "metadata": _metadata(name, namespace), "rules": rules}
            for (namespace, name), rules in _ROLES.items()]


def namespaced_role_bindings() -> list[dict]:
    return [_binding("RoleBinding", name, "Role", role, subjects, namespace)
            for (namespace, name, role), subjects in _ROLE_BINDINGS.items()]


def default_policy() -> list[dict]:
    """Every default object, roles before the bindings that name them, cluster-scoped before namespaced."""
    return cluster_roles() + cluster_role_bindings() + namespaced_roles() + namespaced_role_bindings()


def controller_service_accounts() -> list[str]:
    """The kube-system service accounts the controller manager's controllers run as."""
    return list(_CONTROLLER_ROLES)
