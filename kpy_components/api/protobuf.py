"""Kubernetes protobuf request bodies (kubectl >= 1.32 typed writes) decoded into the JSON dict the same request in
JSON would carry.

A body is `k8s\\x00` + runtime.Unknown {1: TypeMeta{1 apiVersion, 2 kind}, 2: raw message, 3: contentEncoding,
4: contentType}. Messages are decoded with the field numbers of k8s.io/api's generated.proto for the kinds kubectl
sends: Namespace, ConfigMap, Secret, ServiceAccount, Deployment, Job, CronJob, Role/ClusterRole(Binding), Service,
PodDisruptionBudget, PriorityClass, ResourceQuota, SelfSubjectAccessReview, SubjectAccessReview,
SelfSubjectRulesReview, SelfSubjectReview, TokenRequest, DeleteOptions (and Pod). Unknown fields are skipped.

Go writes every non-pointer field even when empty, while JSON omits empty ones: zero values are dropped unless the
field is a pointer (marked `P`), whose presence is meaningful (`replicas: 0`, `gracePeriodSeconds: 0`).
Errors are ValueError naming what is wrong and where.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone

MAGIC = b"k8s\x00"

# Field kinds. A message type is named by its key in MESSAGES.
STR, INT, BOOL, BYTES, TIME, QUANTITY, INT_OR_STR = "string", "int", "bool", "bytes", "time", "quantity", "intorstr"
MAP_STR, MAP_BYTES, MAP_QUANTITY = "map:string", "map:bytes", "map:quantity"
R, P, INLINE = "repeated", "pointer", "inline"  # flags


def _f(name: str, kind: str, *flags: str) -> tuple:
    return name, kind, frozenset(flags)


_METADATA = _f("metadata", "ObjectMeta")

MESSAGES: dict[str, dict[int, tuple]] = {
    # k8s.io/apimachinery/pkg/apis/meta/v1
    "ObjectMeta": {1: _f("name", STR), 2: _f("generateName", STR), 3: _f("namespace", STR), 4: _f("selfLink", STR),
                   5: _f("uid", STR), 6: _f("resourceVersion", STR), 7: _f("generation", INT),
                   8: _f("creationTimestamp", TIME), 9: _f("deletionTimestamp", TIME, P),
                   10: _f("deletionGracePeriodSeconds", INT, P), 11: _f("labels", MAP_STR),
                   12: _f("annotations", MAP_STR), 13: _f("ownerReferences", "OwnerReference", R),
                   14: _f("finalizers", STR, R)},
    "OwnerReference": {1: _f("kind", STR), 3: _f("name", STR), 4: _f("uid", STR), 5: _f("apiVersion", STR),
                       6: _f("controller", BOOL, P), 7: _f("blockOwnerDeletion", BOOL, P)},
    "LabelSelector": {1: _f("matchLabels", MAP_STR), 2: _f("matchExpressions", "LabelSelectorRequirement", R)},
    "LabelSelectorRequirement": {1: _f("key", STR), 2: _f("operator", STR), 3: _f("values", STR, R)},
    "DeleteOptions": {1: _f("gracePeriodSeconds", INT, P), 2: _f("preconditions", "Preconditions", P),
                      3: _f("orphanDependents", BOOL, P), 4: _f("propagationPolicy", STR, P),
                      5: _f("dryRun", STR, R)},
    "Preconditions": {1: _f("uid", STR, P), 2: _f("resourceVersion", STR, P)},
    # core/v1
    "Namespace": {1: _METADATA, 2: _f("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: _f("finalizers", STR, R)},
    "ConfigMap": {1: _METADATA, 2: _f("data", MAP_STR), 3: _f("binaryData", MAP_BYTES),
                  4: _f("immutable", BOOL, P)},
    "Secret": {1: _METADATA, 2: _f("data", MAP_BYTES), 3: _f("type", STR), 4: _f("stringData", MAP_STR),
               5: _f("immutable", BOOL, P)},
    "ServiceAccount": {1: _METADATA, 2: _f("secrets", "ObjectReference", R),
                       3: _f("imagePullSecrets", "LocalObjectReference", R),
                       4: _f("automountServiceAccountToken", BOOL, P)},
    "ObjectReference": {1: _f("kind", STR), 2: _f("namespace", STR), 3: _f("name", STR), 4: _f("uid", STR),
                        5: _f("apiVersion", STR), 6: _f("resourceVersion", STR), 7: _f("fieldPath", STR)},
    "LocalObjectReference": {1: _f("name", STR)},
    "Pod": {1: _METADATA, 2: _f("spec", "PodSpec")},
    "PodTemplateSpec": {1: _METADATA, 2: _f("spec", "PodSpec")},
    "PodSpec": {2: _f("containers", "Container", R), 3: _f("restartPolicy", STR),
                4: _f("terminationGracePeriodSeconds", INT, P), 5: _f("activeDeadlineSeconds", INT, P),
                6: _f("dnsPolicy", STR), 7: _f("nodeSelector", MAP_STR), 8: _f("serviceAccountName", STR),
                9: _f("serviceAccount", STR), 10: _f("nodeName", STR), 11: _f("hostNetwork", BOOL),
                12: _f("hostPID", BOOL), 13: _f("hostIPC", BOOL),
                15: _f("imagePullSecrets", "LocalObjectReference", R), 16: _f("hostname", STR),
                17: _f("subdomain", STR), 19: _f("schedulerName", STR), 20: _f("initContainers", "Container", R),
                21: _f("automountServiceAccountToken", BOOL, P), 22: _f("tolerations", "Toleration", R),
                24: _f("priorityClassName", STR), 25: _f("priority", INT, P),
                27: _f("shareProcessNamespace", BOOL, P), 29: _f("runtimeClassName", STR, P),
                30: _f("enableServiceLinks", BOOL, P), 31: _f("preemptionPolicy", STR, P)},
    "Toleration": {1: _f("key", STR), 2: _f("operator", STR), 3: _f("value", STR), 4: _f("effect", STR),
                   5: _f("tolerationSeconds", INT, P)},
    "Container": {1: _f("name", STR), 2: _f("image", STR), 3: _f("command", STR, R), 4: _f("args", STR, R),
                  5: _f("workingDir", STR), 6: _f("ports", "ContainerPort", R), 7: _f("env", "EnvVar", R),
                  8: _f("resources", "ResourceRequirements"), 9: _f("volumeMounts", "VolumeMount", R),
                  13: _f("terminationMessagePath", STR), 14: _f("imagePullPolicy", STR), 16: _f("stdin", BOOL),
                  17: _f("stdinOnce", BOOL), 18: _f("tty", BOOL), 19: _f("envFrom", "EnvFromSource", R),
                  20: _f("terminationMessagePolicy", STR), 24: _f("restartPolicy", STR, P)},
    "ContainerPort": {1: _f("name", STR), 2: _f("hostPort", INT), 3: _f("containerPort", INT),
                      4: _f("protocol", STR), 5: _f("hostIP", STR)},
    "EnvVar": {1: _f("name", STR), 2: _f("value", STR), 3: _f("valueFrom", "EnvVarSource", P)},
    "EnvVarSource": {1: _f("fieldRef", "ObjectFieldSelector", P),
                     2: _f("resourceFieldRef", "ResourceFieldSelector", P),
                     3: _f("configMapKeyRef", "KeySelector", P), 4: _f("secretKeyRef", "KeySelector", P)},
    "ObjectFieldSelector": {1: _f("apiVersion", STR), 2: _f("fieldPath", STR)},
    "ResourceFieldSelector": {1: _f("containerName", STR), 2: _f("resource", STR), 3: _f("divisor", QUANTITY)},
    "KeySelector": {1: _f("", "LocalObjectReference", INLINE), 2: _f("key", STR), 3: _f("optional", BOOL, P)},
    "EnvFromSource": {1: _f("prefix", STR), 2: _f("configMapRef", "EnvSource", P),
                      3: _f("secretRef", "EnvSource", P)},
    "EnvSource": {1: _f("", "LocalObjectReference", INLINE), 2: _f("optional", BOOL, P)},
    "ResourceRequirements": {1: _f("limits", MAP_QUANTITY), 2: _f("requests", MAP_QUANTITY)},
    "VolumeMount": {1: _f("name", STR), 2: _f("readOnly", BOOL), 3: _f("mountPath", STR), 4: _f("subPath", STR),
                    5: _f("mountPropagation", STR, P), 6: _f("subPathExpr", STR)},
    "Service": {1: _METADATA, 2: _f("spec", "ServiceSpec")},
    "ServiceSpec": {1: _f("ports", "ServicePort", R), 2: _f("selector", MAP_STR), 3: _f("clusterIP", STR),
                    4: _f("type", STR), 5: _f("externalIPs", STR, R), 7: _f("sessionAffinity", STR),
                    8: _f("loadBalancerIP", STR), 9: _f("loadBalancerSourceRanges", STR, R),
                    10: _f("externalName", STR), 11: _f("externalTrafficPolicy", STR),
                    12: _f("healthCheckNodePort", INT), 13: _f("publishNotReadyAddresses", BOOL)},
    "ServicePort": {1: _f("name", STR), 2: _f("protocol", STR), 3: _f("port", INT),
                    4: _f("targetPort", INT_OR_STR), 5: _f("nodePort", INT), 6: _f("appProtocol", STR, P)},
    "ResourceQuota": {1: _METADATA, 2: _f("spec", "ResourceQuotaSpec")},
    "ResourceQuotaSpec": {1: _f("hard", MAP_QUANTITY), 2: _f("scopes", STR, R)},
    # apps/v1, batch/v1, policy/v1
    "Deployment": {1: _METADATA, 2: _f("spec", "DeploymentSpec")},
    "DeploymentSpec": {1: _f("replicas", INT, P), 2: _f("selector", "LabelSelector", P),
                       3: _f("template", "PodTemplateSpec"), 4: _f("strategy", "DeploymentStrategy"),
                       5: _f("minReadySeconds", INT), 6: _f("revisionHistoryLimit", INT, P),
                       7: _f("paused", BOOL), 9: _f("progressDeadlineSeconds", INT, P)},
    "DeploymentStrategy": {1: _f("type", STR), 2: _f("rollingUpdate", "RollingUpdateDeployment", P)},
    "RollingUpdateDeployment": {1: _f("maxUnavailable", INT_OR_STR, P), 2: _f("maxSurge", INT_OR_STR, P)},
    "Job": {1: _METADATA, 2: _f("spec", "JobSpec")},
    "JobSpec": {1: _f("parallelism", INT, P), 2: _f("completions", INT, P), 3: _f("activeDeadlineSeconds", INT, P),
                4: _f("selector", "LabelSelector", P), 5: _f("manualSelector", BOOL, P),
                6: _f("template", "PodTemplateSpec"), 7: _f("backoffLimit", INT, P),
                8: _f("ttlSecondsAfterFinished", INT, P), 9: _f("completionMode", STR, P),
                10: _f("suspend", BOOL, P)},
    "CronJob": {1: _METADATA, 2: _f("spec", "CronJobSpec")},
    "CronJobSpec": {1: _f("schedule", STR), 2: _f("startingDeadlineSeconds", INT, P),
                    3: _f("concurrencyPolicy", STR), 4: _f("suspend", BOOL, P),
                    5: _f("jobTemplate", "JobTemplateSpec"), 6: _f("successfulJobsHistoryLimit", INT, P),
                    7: _f("failedJobsHistoryLimit", INT, P), 8: _f("timeZone", STR, P)},
    "JobTemplateSpec": {1: _METADATA, 2: _f("spec", "JobSpec")},
    "PodDisruptionBudget": {1: _METADATA, 2: _f("spec", "PodDisruptionBudgetSpec")},
    "PodDisruptionBudgetSpec": {1: _f("minAvailable", INT_OR_STR, P), 2: _f("selector", "LabelSelector", P),
                                3: _f("maxUnavailable", INT_OR_STR, P),
                                4: _f("unhealthyPodEvictionPolicy", STR, P)},
    # scheduling.k8s.io/v1 (value 0 and globalDefault false are dropped like every zero: JSON has the same meaning)
    "PriorityClass": {1: _METADATA, 2: _f("value", INT), 3: _f("globalDefault", BOOL), 4: _f("description", STR),
                      5: _f("preemptionPolicy", STR, P)},
    # rbac.authorization.k8s.io/v1
    "Role": {1: _METADATA, 2: _f("rules", "PolicyRule", R)},
    "ClusterRole": {1: _METADATA, 2: _f("rules", "PolicyRule", R), 3: _f("aggregationRule", "AggregationRule", P)},
    "AggregationRule": {1: _f("clusterRoleSelectors", "LabelSelector", R)},
    "PolicyRule": {1: _f("verbs", STR, R), 2: _f("apiGroups", STR, R), 3: _f("resources", STR, R),
                   4: _f("resourceNames", STR, R), 5: _f("nonResourceURLs", STR, R)},
    "RoleBinding": {1: _METADATA, 2: _f("subjects", "Subject", R), 3: _f("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: _METADATA, 2: _f("subjects", "Subject", R), 3: _f("roleRef", "RoleRef")},
    "Subject": {1: _f("kind", STR), 2: _f("apiGroup", STR), 3: _f("name", STR), 4: _f("namespace", STR)},
    "RoleRef": {1: _f("apiGroup", STR), 2: _f("kind", STR), 3: _f("name", STR)},
    # authorization.k8s.io/v1, authentication.k8s.io/v1
    "SelfSubjectAccessReview": {1: _METADATA, 2: _f("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {1: _f("resourceAttributes", "ResourceAttributes", P),
                                    2: _f("nonResourceAttributes", "NonResourceAttributes", P)},
    "SubjectAccessReview": {1: _METADATA, 2: _f("spec", "SubjectAccessReviewSpec")},
    "SubjectAccessReviewSpec": {1: _f("resourceAttributes", "ResourceAttributes", P),
                                2: _f("nonResourceAttributes", "NonResourceAttributes", P), 3: _f("user", STR),
                                4: _f("groups", STR, R), 6: _f("uid", STR)},
    "ResourceAttributes": {1: _f("namespace", STR), 2: _f("verb", STR), 3: _f("group", STR), 4: _f("version", STR),
                           5: _f("resource", STR), 6: _f("subresource", STR), 7: _f("name", STR)},
    "NonResourceAttributes": {1: _f("path", STR), 2: _f("verb", STR)},
    "SelfSubjectRulesReview": {1: _METADATA, 2: _f("spec", "SelfSubjectRulesReviewSpec")},
    "SelfSubjectRulesReviewSpec": {1: _f("namespace", STR)},
    "SelfSubjectReview": {1: _METADATA},
    "TokenRequest": {1: _METADATA, 2: _f("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {1: _f("audiences", STR, R), 3: _f("boundObjectRef", "BoundObjectReference", P),
                         4: _f("expirationSeconds", INT, P)},
    "BoundObjectReference": {1: _f("kind", STR), 2: _f("apiVersion", STR), 3: _f("name", STR), 4: _f("uid", STR)},
}
# ClusterRoleBinding/RoleBinding JSON always carries roleRef; top-level kinds decode from these names.
KINDS = {"Namespace", "ConfigMap", "Secret", "ServiceAccount", "Pod", "Service", "ResourceQuota", "Deployment", "Job",
         "CronJob", "PodDisruptionBudget", "PriorityClass", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
         "SelfSubjectAccessReview", "SubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview",
         "TokenRequest", "DeleteOptions"}


# --- the wire format ---------------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = data, 0, where

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError(f"truncated varint in {self.where} at byte {self.pos}")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError(f"varint too long in {self.where} at byte {self.pos}")

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError(f"field of {size} bytes runs past the end of {self.where} (byte {self.pos})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def fields(self):
        """(field number, wire type, value): varints as int, length-delimited as bytes; fixed ones skipped."""
        while not self.done():
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ValueError(f"field number 0 in {self.where} at byte {self.pos}")
            if wire == 0:
                yield number, wire, self.varint()
            elif wire == 2:
                yield number, wire, self.take(self.varint())
            elif wire == 1:
                yield number, wire, self.take(8)
            elif wire == 5:
                yield number, wire, self.take(4)
            else:
                raise ValueError(f"unsupported wire type {wire} for field {number} in {self.where}")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not valid UTF-8") from None


def _time(raw: bytes, where: str) -> str | None:
    seconds = nanos = 0
    for number, wire, value in _Reader(raw, where).fields():
        if number == 1 and wire == 0:
            seconds = _signed(value)
        elif number == 2 and wire == 0:
            nanos = _signed(value)
    if seconds == 0 and nanos == 0:
        return None  # metav1.Time's zero value: null in JSON
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(raw: bytes, where: str) -> str:
    for number, wire, value in _Reader(raw, where).fields():
        if number == 1 and wire == 2:
            return _text(value, where)
    return ""


def _int_or_string(raw: bytes, where: str):
    kind, number_value, text = 0, 0, ""
    for number, wire, value in _Reader(raw, where).fields():
        if number == 1 and wire == 0:
            kind = value
        elif number == 2 and wire == 0:
            number_value = _signed(value)
        elif number == 3 and wire == 2:
            text = _text(value, where)
    return text if kind == 1 else number_value


def _map_entry(raw: bytes, kind: str, where: str) -> tuple[str, object]:
    key, value = "", "" if kind != MAP_BYTES else b""
    for number, wire, item in _Reader(raw, where).fields():
        if number == 1 and wire == 2:
            key = _text(item, where)
        elif number == 2 and wire == 2:
            value = {MAP_STR: _text, MAP_QUANTITY: _quantity}.get(kind, lambda b, w: b)(item, where)
    if kind == MAP_BYTES:
        value = base64.b64encode(value).decode("ascii")
    return key, value


def _scalar(kind: str, wire: int, raw, where: str):
    expected = 0 if kind in (INT, BOOL) else 2
    if wire != expected:
        raise ValueError(f"{where}: wire type {wire} where {kind} was expected")
    if kind == INT:
        return _signed(raw)
    if kind == BOOL:
        return raw != 0
    if kind == STR:
        return _text(raw, where)
    if kind == BYTES:
        return base64.b64encode(raw).decode("ascii")
    if kind == TIME:
        return _time(raw, where)
    if kind == QUANTITY:
        return _quantity(raw, where)
    if kind == INT_OR_STR:
        return _int_or_string(raw, where)
    return decode_message(raw, kind, where)


def _empty(value) -> bool:
    return value is None or value == "" or value == 0 or value is False or value == {} or value == []


def decode_message(data: bytes, message: str, where: str = "") -> dict:
    """One message of MESSAGES as a JSON dict (fields not in the table are skipped)."""
    where = where or message
    spec = MESSAGES[message]
    result: dict = {}
    present: set[str] = set()
    for number, wire, raw in _Reader(data, where).fields():
        field = spec.get(number)
        if field is None:
            continue
        name, kind, flags = field
        path = f"{where}.{name}" if name else where
        if kind.startswith("map:"):
            if wire != 2:
                raise ValueError(f"{path}: wire type {wire} where a map entry was expected")
            key, value = _map_entry(raw, kind, path)
            result.setdefault(name, {})[key] = value
            continue
        value = _scalar(kind, wire, raw, path)
        if INLINE in flags:
            result.update(value)
        elif R in flags:
            result.setdefault(name, []).append(value)
        else:
            result[name] = value
        if P in flags:
            present.add(name)
    return {k: v for k, v in result.items() if k in present or not _empty(v)}


def decode(body: bytes) -> dict:
    """A `k8s\\x00` protobuf request body as the JSON dict (with apiVersion and kind) the JSON body would be."""
    if not body.startswith(MAGIC):
        raise ValueError("the body does not start with the Kubernetes protobuf prefix k8s\\x00")
    api_version = kind = encoding = ""
    raw = b""
    for number, wire, value in _Reader(body[len(MAGIC):], "runtime.Unknown").fields():
        if number == 1 and wire == 2:
            for inner, inner_wire, item in _Reader(value, "runtime.Unknown.typeMeta").fields():
                if inner == 1 and inner_wire == 2:
                    api_version = _text(item, "typeMeta.apiVersion")
                elif inner == 2 and inner_wire == 2:
                    kind = _text(item, "typeMeta.kind")
        elif number == 2 and wire == 2:
            raw = value
        elif number == 3 and wire == 2:
            encoding = _text(value, "runtime.Unknown.contentEncoding")
    if encoding:
        raise ValueError(f"content encoding {encoding!r} of the protobuf body is not supported")
    if kind not in KINDS:
        raise ValueError(f"protobuf bodies of kind {kind or '(none)'!r} ({api_version}) are not supported; "
                         "send JSON or YAML")
    return {"kind": kind, "apiVersion": api_version, **decode_message(raw, kind)}
