"""Known fields per kind, for `fieldValidation=Strict|Warn`: the top level, metadata, spec and the pod template's
containers (and a Job's failure and success policy rules), taken from the upstream Go types (k8s.io/api). Deeper
structures are not checked (kept small on purpose).

A schema is a dict of field name -> sub-schema, where a sub-schema is another dict (an object whose fields are
known), `LIST_OF(dict)` (a list of such objects) or None (anything). `unknown_fields` reports paths as Kubernetes'
strict decoder does: `spec.template.spec.containers[0].imagee`.
"""
from __future__ import annotations

import functools


class LIST_OF:  # noqa: N801 - reads as a schema marker
    def __init__(self, item: dict):
        self.item = item


def _fields(names: str, **nested) -> dict:
    schema = dict.fromkeys(names.split())
    schema.update(nested)
    return schema


OBJECT_META = _fields("name generateName namespace selfLink uid resourceVersion generation creationTimestamp "
                      "deletionTimestamp deletionGracePeriodSeconds labels annotations ownerReferences finalizers "
                      "managedFields")
_CONTAINER = _fields("name image command args workingDir ports envFrom env resources resizePolicy restartPolicy "
                     "volumeMounts volumeDevices livenessProbe readinessProbe startupProbe lifecycle "
                     "terminationMessagePath terminationMessagePolicy imagePullPolicy securityContext stdin stdinOnce "
                     "tty targetContainerName",
                     ports=LIST_OF(_fields("name hostPort containerPort protocol hostIP")))
POD_SPEC = _fields("volumes ephemeralContainers restartPolicy terminationGracePeriodSeconds activeDeadlineSeconds "
                   "dnsPolicy nodeSelector serviceAccountName serviceAccount automountServiceAccountToken nodeName "
                   "hostNetwork hostPID hostIPC shareProcessNamespace securityContext imagePullSecrets hostname "
                   "subdomain affinity schedulerName tolerations hostAliases priorityClassName priority dnsConfig "
                   "readinessGates runtimeClassName enableServiceLinks preemptionPolicy overhead "
                   "topologySpreadConstraints setHostnameAsFQDN os hostUsers schedulingGates resourceClaims "
                   "resources", containers=LIST_OF(_CONTAINER), initContainers=LIST_OF(_CONTAINER))
POD_TEMPLATE = {"metadata": OBJECT_META, "spec": POD_SPEC}

_SPECS: dict[str, dict] = {
    "Pod": POD_SPEC,
    "Deployment": _fields("replicas selector strategy minReadySeconds revisionHistoryLimit paused "
                          "progressDeadlineSeconds", template=POD_TEMPLATE),
    "ReplicaSet": _fields("replicas minReadySeconds selector", template=POD_TEMPLATE),
    "ReplicationController": _fields("replicas minReadySeconds selector", template=POD_TEMPLATE),
    "DaemonSet": _fields("selector updateStrategy minReadySeconds revisionHistoryLimit", template=POD_TEMPLATE),
    "StatefulSet": _fields("replicas selector volumeClaimTemplates serviceName podManagementPolicy updateStrategy "
                           "revisionHistoryLimit minReadySeconds persistentVolumeClaimRetentionPolicy ordinals",
                           template=POD_TEMPLATE),
    "Job": _fields("parallelism completions activeDeadlineSeconds podFailurePolicy successPolicy backoffLimit "
                   "backoffLimitPerIndex maxFailedIndexes selector manualSelector ttlSecondsAfterFinished "
                   "completionMode suspend podReplacementPolicy managedBy", template=POD_TEMPLATE,
                   podFailurePolicy={"rules": LIST_OF(_fields(
                       "action", onExitCodes=_fields("containerName operator values"),
                       onPodConditions=LIST_OF(_fields("type status"))))},
                   successPolicy={"rules": LIST_OF(_fields("succeededIndexes succeededCount"))}),
    "CronJob": _fields("schedule timeZone startingDeadlineSeconds concurrencyPolicy suspend jobTemplate "
                       "successfulJobsHistoryLimit failedJobsHistoryLimit"),
    "Service": _fields("selector clusterIP clusterIPs type externalIPs sessionAffinity loadBalancerIP "
                       "loadBalancerSourceRanges externalName externalTrafficPolicy healthCheckNodePort "
                       "publishNotReadyAddresses sessionAffinityConfig ipFamilies ipFamilyPolicy "
                       "allocateLoadBalancerNodePorts loadBalancerClass internalTrafficPolicy trafficDistribution",
                       ports=LIST_OF(_fields("name protocol appProtocol port targetPort nodePort"))),
    "Namespace": _fields("finalizers"),
    "Node": _fields("podCIDR podCIDRs providerID unschedulable taints configSource externalID"),
    "PodDisruptionBudget": _fields("minAvailable selector maxUnavailable unhealthyPodEvictionPolicy"),
    "Lease": _fields("holderIdentity leaseDurationSeconds acquireTime renewTime leaseTransitions strategy "
                     "preferredHolder"),
    "ResourceQuota": _fields("hard scopes scopeSelector"),
    "LimitRange": _fields("limits"),
}
_SPECS["CronJob"]["jobTemplate"] = {"metadata": OBJECT_META, "spec": _SPECS["Job"]}
_SPECS["PersistentVolumeClaim"] = _fields("accessModes selector resources volumeName storageClassName volumeMode "
                                          "dataSource dataSourceRef volumeAttributesClassName")
_SPECS["PersistentVolume"] = _fields(
    "capacity accessModes claimRef persistentVolumeReclaimPolicy storageClassName mountOptions volumeMode nodeAffinity "
    "volumeAttributesClassName hostPath gcePersistentDisk awsElasticBlockStore glusterfs flocker nfs rbd quobyte "
    "cephfs iscsi cinder fc flexVolume azureFile vsphereVolume photonPersistentDisk portworxVolume azureDisk scaleIO "
    "local storageos csi")
_SPECS["StatefulSet"]["volumeClaimTemplates"] = LIST_OF(_fields("apiVersion kind status", metadata=OBJECT_META,
                                                                spec=_SPECS["PersistentVolumeClaim"]))

_TOP_LEVEL: dict[str, str] = {
    "ConfigMap": "data binaryData immutable",
    "Secret": "data stringData type immutable",
    "ServiceAccount": "secrets imagePullSecrets automountServiceAccountToken",
    "Endpoints": "subsets",
    "EndpointSlice": "addressType endpoints ports",
    "Role": "rules",
    "ClusterRole": "rules aggregationRule",
    "RoleBinding": "subjects roleRef",
    "ClusterRoleBinding": "subjects roleRef",
    "Eviction": "deleteOptions",
    "Binding": "target",
    "ControllerRevision": "data revision",
    "PriorityClass": "value globalDefault description preemptionPolicy",
    "StorageClass": "provisioner parameters reclaimPolicy mountOptions allowVolumeExpansion volumeBindingMode "
                    "allowedTopologies",
}
_CORE_EVENT = ("involvedObject reason message source firstTimestamp lastTimestamp count type eventTime series action "
               "related reportingComponent reportingInstance")
_EVENTS_EVENT = ("eventTime series reportingController reportingInstance action reason regarding related note type "
                 "deprecatedSource deprecatedFirstTimestamp deprecatedLastTimestamp deprecatedCount")


@functools.lru_cache(maxsize=256)
def schema_for(api_version: str, kind: str) -> dict:
    """The known fields of a kind; kinds not described above get `spec`/`status` with anything beneath. Built
    once per kind (cached): read it, never change it."""
    if kind == "Event":
        top = _EVENTS_EVENT if api_version.startswith("events.k8s.io/") else _CORE_EVENT
        return {"apiVersion": None, "kind": None, "metadata": OBJECT_META, **_fields(top)}
    schema = {"apiVersion": None, "kind": None, "metadata": OBJECT_META}
    if kind in _TOP_LEVEL:
        schema.update(_fields(_TOP_LEVEL[kind]))
    else:
        schema.update(spec=_SPECS.get(kind), status=None)
    return schema


def unknown_fields(obj, schema, path: str = "") -> list[str]:
    """Dotted paths of fields in `obj` that `schema` does not know, in document order."""
    if not isinstance(schema, dict) or not isinstance(obj, dict):
        return []
    found = []
    for name, value in obj.items():
        if name.startswith("$"):  # strategic-merge-patch directives ($patch, $setElementOrder/...)
            continue
        here = f"{path}.{name}" if path else name
        if name not in schema:
            found.append(here)
            continue
        sub = schema[name]
        if isinstance(sub, LIST_OF):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    found.extend(unknown_fields(item, sub.item, f"{here}[{index}]"))
        else:
            found.extend(unknown_fields(value, sub, here))
    return found
