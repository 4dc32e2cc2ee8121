"""One strategy per resource, by `ResourceInfo.qualified`. A new resource is a line here plus its strategy class."""
from __future__ import annotations

from kpy_components.api.resources import ResourceInfo

from ...crds import custom, definitions
from ..allocators import ClusterIPAllocator, NodePortAllocator
from ..strategy import Strategy
from . import (certificates, controllerrevisions, core, networking, others, persistentvolumes, priorityclasses, services,
               storageclasses, workloads)

_BY_RESOURCE: dict[str, type[Strategy]] = {
    "pods": core.PodStrategy,
    "namespaces": core.NamespaceStrategy,
    "nodes": core.NodeStrategy,
    "configmaps": core.ConfigMapStrategy,
    "secrets": core.SecretStrategy,
    "serviceaccounts": core.PlainStrategy,
    "endpoints": core.EndpointsStrategy,
    "events": core.EventStrategy,
    "resourcequotas": core.ResourceQuotaStrategy,
    "limitranges": core.PlainStrategy,
    "replicationcontrollers": core.ReplicationControllerStrategy,
    "persistentvolumeclaims": persistentvolumes.PersistentVolumeClaimStrategy,
    "persistentvolumes": persistentvolumes.PersistentVolumeStrategy,
    "deployments.apps": workloads.DeploymentStrategy,
    "replicasets.apps": workloads.ReplicaSetStrategy,
    "daemonsets.apps": workloads.DaemonSetStrategy,
    "statefulsets.apps": workloads.StatefulSetStrategy,
    "controllerrevisions.apps": controllerrevisions.ControllerRevisionStrategy,
    "jobs.batch": workloads.JobStrategy,
    "cronjobs.batch": workloads.CronJobStrategy,
    "leases.coordination.k8s.io": others.LeaseStrategy,
    "endpointslices.discovery.k8s.io": others.EndpointSliceStrategy,
    "poddisruptionbudgets.policy": others.PodDisruptionBudgetStrategy,
    "priorityclasses.scheduling.k8s.io": priorityclasses.PriorityClassStrategy,
    "storageclasses.storage.k8s.io": storageclasses.StorageClassStrategy,
    "events.events.k8s.io": others.EventsV1Strategy,
    "roles.rbac.authorization.k8s.io": others.RoleStrategy,
    "clusterroles.rbac.authorization.k8s.io": others.RoleStrategy,
    "rolebindings.rbac.authorization.k8s.io": others.BindingStrategy,
    "clusterrolebindings.rbac.authorization.k8s.io": others.BindingStrategy,
    "customresourcedefinitions.apiextensions.k8s.io": definitions.CRDStrategy,
    "podtemplates": networking.PodTemplateStrategy,
    "horizontalpodautoscalers.autoscaling": networking.HorizontalPodAutoscalerStrategy,
    "ingresses.networking.k8s.io": networking.IngressStrategy,
    "ingressclasses.networking.k8s.io": networking.IngressClassStrategy,
    "networkpolicies.networking.k8s.io": networking.NetworkPolicyStrategy,
    "runtimeclasses.node.k8s.io": networking.RuntimeClassStrategy,
    "flowschemas.flowcontrol.apiserver.k8s.io": networking.FlowSchemaStrategy,
    "prioritylevelconfigurations.flowcontrol.apiserver.k8s.io": networking.PriorityLevelConfigurationStrategy,
    "certificatesigningrequests.certificates.k8s.io": certificates.CertificateSigningRequestStrategy,
    "apiservices.apiregistration.k8s.io": networking.APIServiceStrategy,
}


def strategy_for(info: ResourceInfo, cluster_ips: ClusterIPAllocator, node_ports: NodePortAllocator) -> Strategy:
    """The resource's strategy; resources without one of their own get the plain metadata-only rules."""
    if info.extra.get("crd"):
        return custom.CustomResourceStrategy(info)
    if info.qualified == "services":
        return services.ServiceStrategy(info, cluster_ips, node_ports)
    return _BY_RESOURCE.get(info.qualified, core.PlainStrategy)(info)
