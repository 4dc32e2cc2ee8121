"""Every resource kpy serves, described with Kubernetes' own data: names, short names, categories, verbs,
subresources, Table columns (pkg/printers/internalversion/printers.go; priority 1 = `-o wide`) and the field
selectors each kind accepts (the field-label conversion functions of k8s.io/kubernetes/pkg/apis/*/v1).

Resources without printer columns get Kubernetes' default Table (Name, Created At): see tables.py.
"""
from __future__ import annotations

from . import printers
from .resources import ALL_VERBS, PrinterColumn as Col, Registry, ResourceInfo, Subresource

# --- columns -----------------------------------------------------------------------------------------------------

_NAME = Col("Name", format="name", description="Name must be unique within a namespace. Is required when creating "
            "resources, although some resources may allow a client to request the generation of an appropriate name "
            "automatically. Name is primarily intended for creation idempotence and configuration definition. "
            "Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_AGE = Col("Age", description="CreationTimestamp is a timestamp representing the server time when this object was "
           "created. It is not guaranteed to be set in happens-before order across separate operations. Clients may "
           "not set this value. It is represented in RFC3339 form and is in UTC.")
_CONTAINERS = Col("Containers", priority=1, description="Names of each container in the template.")
_IMAGES = Col("Images", priority=1, description="Images referenced by each container in the template.")
_SELECTOR = Col("Selector", priority=1, description="A label query over pods that should match the replica count.")


def _int(name: str, description: str, priority: int = 0) -> Col:
    return Col(name, type="integer", description=description, priority=priority)


def _str(name: str, description: str, priority: int = 0) -> Col:
    return Col(name, description=description, priority=priority)


# ReplicaSets and ReplicationControllers print alike.
_REPLICA_COLUMNS = (_NAME, _int("Desired", "Replicas is the number of desired replicas."),
                    _int("Current", "Replicas is the most recently observed number of replicas."),
                    _int("Ready", "The number of ready replicas."), _AGE, _CONTAINERS, _IMAGES, _SELECTOR)

_COLUMNS: dict[str, tuple[Col, ...]] = {
    "pods": (_NAME, _str("Ready", "The aggregate readiness state of this pod for accepting traffic."),
             _str("Status", "The aggregate status of the containers in this pod."),
             _str("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                  "container in this pod has restarted."), _AGE,
             _str("IP", "podIP address allocated to the pod.", 1),
             _str("Node", "NodeName indicates in which node this pod is scheduled.", 1),
             _str("Nominated Node", "nominatedNodeName is set when this pod preempts other pods on the node.", 1),
             _str("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1)),
    "nodes": (_NAME, _str("Status", "The status of the node"), _str("Roles", "The roles of the node"), _AGE,
              _str("Version", "Kubelet Version reported by the node."),
              _str("Internal-IP", "List of addresses reachable to the node.", 1),
              _str("External-IP", "List of addresses reachable to the node.", 1),
              _str("OS-Image", "OS Image reported by the node from /etc/os-release.", 1),
              _str("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", 1),
              _str("Container-Runtime", "ContainerRuntime Version reported by the node.", 1)),
    "namespaces": (_NAME, _str("Status", "The status of the namespace"), _AGE),
    "services": (_NAME, _str("Type", "type determines how the Service is exposed."),
                 _str("Cluster-IP", "clusterIP is the IP address of the service."),
                 _str("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will "
                      "also accept traffic for this service."),
                 _str("Port(s)", "The list of ports that are exposed by this service."), _AGE,
                 _str("Selector", "Route service traffic to pods with label keys and values matching this "
                      "selector.", 1)),
    "endpoints": (_NAME, _str("Endpoints", "The set of all endpoints is the union of all subsets."), _AGE),
    "configmaps": (_NAME, _str("Data", "Data contains the configuration data."), _AGE),
    "secrets": (_NAME, _str("Type", "Used to facilitate programmatic handling of secret data."),
                _str("Data", "Data contains the secret data."), _AGE),
    "serviceaccounts": (_NAME, _str("Secrets", "Secrets is a list of the secrets in the same namespace that pods "
                                    "running using this ServiceAccount are allowed to use."), _AGE),
    "events": (_str("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
               _str("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
               _str("Reason", "This should be a short, machine understandable string that gives the reason for the "
                    "transition into the object's current status."),
               _str("Object", "The object that this event is about."),
               _str("Subobject", "If referring to a piece of an object instead of an entire object, this string "
                    "should contain a valid JSON/Go field access statement.", 1),
               _str("Source", "The component reporting this event.", 1),
               _str("Message", "A human-readable description of the status of this operation."),
               _str("First Seen", "The time at which the event was first recorded.", 1),
               _str("Count", "The number of times this event has occurred.", 1),
               Col("Name", format="name", priority=1, description=_NAME.description)),
    "resourcequotas": (_NAME, _AGE,
                       _str("Request", "Request represents a minimum amount of cpu/memory that a container may "
                            "consume."),
                       _str("Limit", "Limits control the maximum amount of cpu/memory that a container may use "
                            "independent of contention on the node.")),
    "replicationcontrollers": _REPLICA_COLUMNS,
    "deployments.apps": (_NAME, _str("Ready", "Number of the pod with ready state"),
                         _str("Up-to-date", "Total number of non-terminated pods targeted by this deployment that "
                              "have the desired template spec."),
                         _str("Available", "Total number of available pods (ready for at least minReadySeconds) "
                              "targeted by this deployment."), _AGE, _CONTAINERS, _IMAGES, _SELECTOR),
    "replicasets.apps": _REPLICA_COLUMNS,
    "daemonsets.apps": (_NAME, _int("Desired", "The total number of nodes that should be running the daemon pod."),
                        _int("Current", "The number of nodes that are running at least 1 daemon pod and are "
                             "supposed to run the daemon pod."),
                        _int("Ready", "The number of nodes that should be running the daemon pod and have one or "
                             "more of the daemon pod running and ready."),
                        _int("Up-to-date", "The total number of nodes that are running updated daemon pod"),
                        _int("Available", "The number of nodes that should be running the daemon pod and have one "
                             "or more of the daemon pod running and available."),
                        _str("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on "
                             "a node."), _AGE, _CONTAINERS, _IMAGES, _SELECTOR),
    "statefulsets.apps": (_NAME, _str("Ready", "Number of the pod with ready state"), _AGE, _CONTAINERS, _IMAGES),
    "controllerrevisions.apps": (_NAME, _str("Controller", "Controller of the object"),
                                 _str("Revision", "Revision indicates the revision of the state represented by "
                                      "Data."), _AGE),
    "priorityclasses.scheduling.k8s.io": (
        _NAME, _int("Value", "value represents the integer value of this priority class. This is the actual priority "
                    "that pods receive when they have the name of this class in their pod spec."),
        Col("Global-Default", type="boolean", description="globalDefault specifies whether this PriorityClass should "
            "be considered as the default priority for pods that do not have any priority class. Only one "
            "PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with "
            "their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will "
            "be used as the default priority."), _AGE,
        _str("PreemptionPolicy", "preemptionPolicy is the Policy for preempting pods with lower priority. One of "
             "Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.")),
    "persistentvolumeclaims": (
        _NAME, _str("Status", "phase represents the current phase of PersistentVolumeClaim."),
        _str("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
        _str("Capacity", "capacity represents the actual resources of the underlying volume."),
        _str("Access Modes", "accessModes contains the actual access modes the volume backing the PVC has. More "
             "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
        _str("StorageClass", "StorageClass of the pvc"),
        _str("VolumeAttributesClass", "VolumeAttributesClass of the pvc"), _AGE,
        _str("VolumeMode", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is "
             "implied when not included in claim spec.", 1)),
    "persistentvolumes": (
        _NAME, _str("Capacity", "capacity is the description of the persistent volume's resources and capacity. More "
                    "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
        _str("Access Modes", "accessModes contains all ways the volume can be mounted. More info: "
             "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
        _str("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when "
             "released from its claim. Valid options are Retain (default for manually created PersistentVolumes), "
             "Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must "
             "be supported by the volume plugin underlying this PersistentVolume. More info: "
             "https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
        _str("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim. More "
             "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
        _str("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and "
             "PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind "
             "between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
        _str("StorageClass", "StorageClass of the pv"),
        _str("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        _str("Reason", "reason is a brief CamelCase string that describes any failure and is meant for machine "
             "parsing and tidy display in the CLI."), _AGE,
        _str("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to "
             "remain in raw block state. Value of Filesystem is implied when not included in spec.", 1)),
    "storageclasses.storage.k8s.io": (
        _NAME, _str("Provisioner", "provisioner indicates the type of the provisioner."),
        _str("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned "
             "PersistentVolumes of this storage class. Defaults to Delete."),
        _str("VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and "
             "bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable "
             "the VolumeScheduling feature."),
        _str("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class allow volume expand."),
        _AGE),
    "jobs.batch": (_NAME, _str("Status", "Status of the job."),
                   _str("Completions", "The number of pods which reached phase Succeeded."),
                   _str("Duration", "Time required to complete the job."), _AGE, _CONTAINERS, _IMAGES, _SELECTOR),
    "cronjobs.batch": (_NAME, _str("Schedule", "The schedule in Cron format."),
                       _str("Timezone", "The time zone name for the given schedule."),
                       Col("Suspend", type="boolean", description="This flag tells the controller to suspend "
                           "subsequent executions."),
                       _int("Active", "A list of pointers to currently running jobs."),
                       _str("Last Schedule", "Information when was the last time the job was successfully "
                            "scheduled."), _AGE, _CONTAINERS, _IMAGES, _SELECTOR),
    "leases.coordination.k8s.io": (_NAME, _str("Holder", "holderIdentity contains the identity of the holder of a "
                                               "current lease."), _AGE),
    "endpointslices.discovery.k8s.io": (_NAME, _str("AddressType", "addressType specifies the type of address "
                                                    "carried by this EndpointSlice."),
                                        _str("Ports", "ports specifies the list of network ports exposed by each "
                                             "endpoint in this slice."),
                                        _str("Endpoints", "endpoints is a list of unique endpoints in this slice."),
                                        _AGE),
    "poddisruptionbudgets.policy": (_NAME, _str("Min Available", "The minimum number of pods that must be "
                                                "available."),
                                    _str("Max Unavailable", "The maximum number of pods that may be unavailable."),
                                    _int("Allowed Disruptions", "Calculated number of pods that may be disrupted "
                                         "at this time."), _AGE),
    "rolebindings.rbac.authorization.k8s.io": (
        _NAME, _str("Role", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global "
                    "namespace."), _AGE,
        _str("Users", "Users in the roleBinding", 1), _str("Groups", "Groups in the roleBinding", 1),
        _str("ServiceAccounts", "ServiceAccounts in the roleBinding", 1)),
    "clusterrolebindings.rbac.authorization.k8s.io": (
        _NAME, _str("Role", "RoleRef can only reference a ClusterRole in the global namespace."), _AGE,
        _str("Users", "Users in the clusterRoleBinding", 1), _str("Groups", "Groups in the clusterRoleBinding", 1),
        _str("ServiceAccounts", "ServiceAccounts in the clusterRoleBinding", 1)),
}
# events.k8s.io/v1 Events print like core Events (Kubernetes converts both to the same internal type).
_COLUMNS["events.events.k8s.io"] = _COLUMNS["events"]

# --- field selectors (beyond metadata.name / metadata.namespace, which every kind accepts) ------------------------

_META = ("metadata.name", "metadata.namespace")
_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                 "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                 "reason", "reportingComponent", "source", "type")
_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "secrets": ("type",),
    "events": _EVENT_FIELDS,
    "events.events.k8s.io": _EVENT_FIELDS,
    "replicationcontrollers": ("status.replicas",),
    "replicasets.apps": ("status.replicas",),
    "statefulsets.apps": ("status.successful",),
    "jobs.batch": ("status.successful",),
}

# --- subresources ------------------------------------------------------------------------------------------------

_GPU = ("get", "patch", "update")


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, _GPU)


def _scale() -> Subresource:
    return Subresource("scale", "Scale", _GPU, group="autoscaling", version="v1")


_SUBRESOURCES: dict[str, tuple[Subresource, ...]] = {
    "pods": (Subresource("attach", "PodAttachOptions", ("create", "get")),
             Subresource("binding", "Binding", ("create",)),
             Subresource("ephemeralcontainers", "Pod", _GPU),
             Subresource("eviction", "Eviction", ("create",), group="policy", version="v1"),
             Subresource("exec", "PodExecOptions", ("create", "get")),
             Subresource("log", "Pod", ("get",)),
             Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
             _status("Pod")),
    "nodes": (_status("Node"),),
    "persistentvolumeclaims": (_status("PersistentVolumeClaim"),),
    "persistentvolumes": (_status("PersistentVolume"),),
    "namespaces": (Subresource("finalize", "Namespace", ("update",)), _status("Namespace")),
    "services": (_status("Service"),),
    "serviceaccounts": (Subresource("token", "TokenRequest", ("create",), group="authentication.k8s.io",
                                    version="v1"),),
    "resourcequotas": (_status("ResourceQuota"),),
    "replicationcontrollers": (_scale(), _status("ReplicationController")),
    "deployments.apps": (_scale(), _status("Deployment")),
    "replicasets.apps": (_scale(), _status("ReplicaSet")),
    "statefulsets.apps": (_scale(), _status("StatefulSet")),
    "daemonsets.apps": (_status("DaemonSet"),),
    "jobs.batch": (_status("Job"),),
    "cronjobs.batch": (_status("CronJob"),),
    "poddisruptionbudgets.policy": (_status("PodDisruptionBudget"),),
    "customresourcedefinitions.apiextensions.k8s.io": (_status("CustomResourceDefinition"),),
    "horizontalpodautoscalers.autoscaling": (_status("HorizontalPodAutoscaler"),),
    "ingresses.networking.k8s.io": (_status("Ingress"),),
    "certificatesigningrequests.certificates.k8s.io": (
        Subresource("approval", "CertificateSigningRequest", _GPU), _status("CertificateSigningRequest")),
    "flowschemas.flowcontrol.apiserver.k8s.io": (_status("FlowSchema"),),
    "prioritylevelconfigurations.flowcontrol.apiserver.k8s.io": (_status("PriorityLevelConfiguration"),),
    "volumeattachments.storage.k8s.io": (_status("VolumeAttachment"),),
    "validatingadmissionpolicies.admissionregistration.k8s.io": (_status("ValidatingAdmissionPolicy"),),
    "apiservices.apiregistration.k8s.io": (_status("APIService"),),
}

# --- the table of resources --------------------------------------------------------------------------------------

_ALL = ("all",)
_CREATE = ("create",)
_NO_COLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool, short: tuple[str, ...] = (),
       categories: tuple[str, ...] = (), verbs: tuple[str, ...] = ALL_VERBS, storage: bool = True) -> ResourceInfo:
    qualified = f"{plural}.{group}" if group else plural
    columns, cells = printers.PRINTERS.get(qualified, (_COLUMNS.get(qualified, ()), None))
    return ResourceInfo(group=group, version=version, kind=kind, plural=plural, singular=kind.lower(),
                        namespaced=namespaced, short_names=short, categories=categories, verbs=verbs,
                        subresources=_SUBRESOURCES.get(qualified, ()), columns=columns,
                        storage=storage, field_selectors=_META + _FIELDS.get(qualified, ()),
                        extra={"cells": cells} if cells else {})


_AUTHZ, _AUTHN, _RBAC = "authorization.k8s.io", "authentication.k8s.io", "rbac.authorization.k8s.io"
_FLOW, _ADMISSION = "flowcontrol.apiserver.k8s.io", "admissionregistration.k8s.io"


def resources() -> list[ResourceInfo]:
    return [
        _r("", "v1", "Namespace", "namespaces", False, ("ns",), verbs=_NO_COLLECTION),
        _r("", "v1", "Pod", "pods", True, ("po",), _ALL),
        _r("", "v1", "Node", "nodes", False, ("no",)),
        _r("", "v1", "Service", "services", True, ("svc",), _ALL),
        _r("", "v1", "Endpoints", "endpoints", True, ("ep",)),
        _r("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
        _r("", "v1", "Secret", "secrets", True),
        _r("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
        _r("", "v1", "Event", "events", True, ("ev",)),
        _r("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",)),
        _r("", "v1", "LimitRange", "limitranges", True, ("limits",)),
        _r("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), _ALL),
        _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",)),
        _r("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",)),
        _r("", "v1", "PodTemplate", "podtemplates", True),
        _r("", "v1", "ComponentStatus", "componentstatuses", False, ("cs",), verbs=("get", "list"), storage=False),
        _r("apps", "v1", "Deployment", "deployments", True, ("deploy",), _ALL),
        _r("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), _ALL),
        _r("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), _ALL),
        _r("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), _ALL),
        _r("apps", "v1", "ControllerRevision", "controllerrevisions", True),
        _r("batch", "v1", "Job", "jobs", True, (), _ALL),
        _r("batch", "v1", "CronJob", "cronjobs", True, ("cj",), _ALL),
        _r("coordination.k8s.io", "v1", "Lease", "leases", True),
        _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
        _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
        _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
        _r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
        _r("storage.k8s.io", "v1", "CSINode", "csinodes", False),
        _r("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", False),
        _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",)),
        *(_r("autoscaling", version, "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",), _ALL)
          for version in ("v2", "v1")),  # stored as v2 (the first); v1 converted (apiserver registry/conversion)
        _r("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",)),
        _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
        _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
        _r("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", False, ("csr",)),
        _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
        _r("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, categories=("api-extensions",)),
        _r(_ADMISSION, "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False,
           categories=("api-extensions",)),
        _r(_ADMISSION, "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False,
           categories=("api-extensions",)),
        _r(_ADMISSION, "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", False,
           categories=("api-extensions",)),
        _r(_ADMISSION, "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", False,
           categories=("api-extensions",)),
        _r(_FLOW, "v1", "FlowSchema", "flowschemas", False),
        _r(_FLOW, "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", False),
        _r("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
        _r(_RBAC, "v1", "Role", "roles", True),
        _r(_RBAC, "v1", "RoleBinding", "rolebindings", True),
        _r(_RBAC, "v1", "ClusterRole", "clusterroles", False),
        _r(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", False),
        _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
           ("crd", "crds"), ("api-extensions",)),
        _r(_AUTHZ, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=_CREATE, storage=False),
        _r(_AUTHZ, "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=_CREATE, storage=False),
        _r(_AUTHZ, "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True, verbs=_CREATE,
           storage=False),
        _r(_AUTHZ, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False, verbs=_CREATE, storage=False),
        _r(_AUTHN, "v1", "TokenReview", "tokenreviews", False, verbs=_CREATE, storage=False),
        # kubectl 1.27 `auth whoami` asks v1beta1, then v1alpha1; v1 (GA in 1.28) stays preferred.
        *(_r(_AUTHN, version, "SelfSubjectReview", "selfsubjectreviews", False, verbs=_CREATE, storage=False)
          for version in ("v1", "v1beta1", "v1alpha1")),
    ]


def default_registry() -> Registry:
    """A fresh Registry of every resource above (callers may add their own without affecting others)."""
    return Registry(resources())
