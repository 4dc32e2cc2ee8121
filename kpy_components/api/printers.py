"""Table cells of the kinds added with issue 14 (autoscaling, networking, certificates, node, flowcontrol, storage
CSI objects, PodTemplates, ComponentStatuses), as Kubernetes' printers compute them (printers.go). Each is a
`cells(info, obj, now)` that catalog.py attaches to its ResourceInfo (`extra["cells"]`), which tables.py prints."""
from __future__ import annotations

from datetime import datetime

from .meta import name_of
from .resources import PrinterColumn as Col
from .selectors import format_label_selector, format_labels
from .tables import _age, _containers, _get, human_duration


def _str(name: str, description: str, priority: int = 0) -> Col:
    return Col(name, description=description, priority=priority)


def _int(name: str, description: str) -> Col:
    return Col(name, type="integer", description=description)


_NAME = Col("Name", format="name", description="Name must be unique within a namespace.")
_AGE = Col("Age", description="CreationTimestamp is a timestamp representing the server time when this object was "
           "created.")


# --- autoscaling ---------------------------------------------------------------------------------------------------

def _metric(spec: dict, current: dict | None) -> str:
    kind = spec.get("type")
    if kind == "Resource" or kind == "ContainerResource":
        source = spec.get("resource" if kind == "Resource" else "containerResource") or {}
        target = source.get("target") or {}
        now = ((current or {}).get("resource" if kind == "Resource" else "containerResource") or {}).get(
            "current") or {}
        name = source.get("name", "")
        if target.get("averageUtilization") is not None:
            shown = f"{now['averageUtilization']}%" if now.get("averageUtilization") is not None else "<unknown>"
            return f"{name}: {shown}/{target['averageUtilization']}%"
        shown = now.get("averageValue") or "<unknown>"
        return f"{name}: {shown}/{target.get('averageValue', '')}"
    source = spec.get({"Pods": "pods", "Object": "object", "External": "external"}.get(kind, ""), {}) or {}
    target = source.get("target") or {}
    wanted = target.get("averageValue") or target.get("value") or ""
    return f"<unknown>/{wanted}" + ("" if target.get("value") or kind == "Pods" else " (avg)")


def horizontal_pod_autoscaler(info, obj: dict, now: datetime) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics, currents = spec.get("metrics") or [], status.get("currentMetrics") or []
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1 prints like its v2 form
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "averageUtilization": spec["targetCPUUtilizationPercentage"]}}}]
        if status.get("currentCPUUtilizationPercentage") is not None:
            currents = [{"resource": {"current": {"averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
    shown = [_metric(m, currents[i] if i < len(currents) else None) for i, m in enumerate(metrics)]
    targets = ", ".join(shown[:3]) + (f" + {len(shown) - 3} more..." if len(shown) > 3 else "") if shown else \
        "<none>"
    return [name_of(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", targets, spec.get("minReplicas", 1),
            spec.get("maxReplicas", 0), status.get("currentReplicas", 0), _age(obj, now)]


HPA_COLUMNS = (_NAME, _str("Reference", "the horizontal pod autoscaler's reference"),
               _str("Targets", "the current and target metrics"),
               _str("MinPods", "the minimum number of pods"), _int("MaxPods", "the maximum number of pods"),
               _int("Replicas", "the current number of replicas"), _AGE)


# --- networking ----------------------------------------------------------------------------------------------------

def ingress(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    hosts = [r.get("host") or "*" for r in spec.get("rules") or []]
    addresses = [i.get("ip") or i.get("hostname") or "" for i in
                 _get(obj, "status", "loadBalancer", "ingress", default=[])]
    return [name_of(obj), spec.get("ingressClassName") or "<none>", ",".join(hosts) or "*", ",".join(addresses),
            "80, 443" if spec.get("tls") else "80", _age(obj, now)]


INGRESS_COLUMNS = (_NAME, _str("Class", "The name of the IngressClass resource that should be used"),
                   _str("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
                   _str("Address", "Address is a list containing ingress points for the load-balancer"),
                   _str("Ports", "Ports of TLS configurations that open"), _AGE)


def ingress_class(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    parameters = spec.get("parameters")
    shown = "<none>"
    if parameters:
        group = parameters.get("apiGroup")
        shown = f"{parameters.get('kind', '')}{'.' + group if group else ''}/{parameters.get('name', '')}"
    return [name_of(obj), spec.get("controller", ""), shown, _age(obj, now)]


INGRESS_CLASS_COLUMNS = (_NAME, _str("Controller", "Controller that is responsible for handling this class"),
                         _str("Parameters", "A reference to a resource with additional parameters"), _AGE)


def network_policy(info, obj: dict, now: datetime) -> list:
    selector = format_label_selector(_get(obj, "spec", "podSelector", default={}))
    return [name_of(obj), selector or "<none>", _age(obj, now)]


NETWORK_POLICY_COLUMNS = (_NAME, _str("Pod-Selector", "Selects the pods to which this NetworkPolicy object applies."),
                          _AGE)


# --- certificates --------------------------------------------------------------------------------------------------

def csr_condition(obj: dict) -> str:
    """`Pending`, or the condition types in order (`Approved,Issued`), as upstream prints CSRs."""
    shown = [c.get("type", "") for c in _get(obj, "status", "conditions", default=[])
             if c.get("type") in ("Approved", "Denied", "Failed")]
    if _get(obj, "status", "certificate"):
        shown.append("Issued")
    return ",".join(shown) or "Pending"


def certificate_signing_request(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    seconds = spec.get("expirationSeconds")
    return [name_of(obj), _age(obj, now), spec.get("signerName", ""), spec.get("username", ""),
            human_duration(seconds) if seconds else "<none>", csr_condition(obj)]


CSR_COLUMNS = (_NAME, _AGE, _str("SignerName", "Only one signer should be set."),
               _str("Requestor", "Name of the user requesting the certificate"),
               _str("RequestedDuration", "Requested duration of the certificate"),
               _str("Condition", "Status of the certificate signing request"))


# --- node, flowcontrol ---------------------------------------------------------------------------------------------

def runtime_class(info, obj: dict, now: datetime) -> list:
    return [name_of(obj), obj.get("handler", ""), _age(obj, now)]


RUNTIME_CLASS_COLUMNS = (_NAME, _str("Handler", "RuntimeClass Handler"), _AGE)


def flow_schema(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    method = (spec.get("distinguisherMethod") or {}).get("type") or "*"
    dangling = next((c.get("status") for c in _get(obj, "status", "conditions", default=[])
                     if c.get("type") == "Dangling"), None)
    return [name_of(obj), _get(spec, "priorityLevelConfiguration", "name", default=""),
            spec.get("matchingPrecedence", 1000), method, _age(obj, now),
            {"True": "True", "False": "False"}.get(dangling, "?")]


FLOW_SCHEMA_COLUMNS = (_NAME, _str("PriorityLevel", "Name of the priority level"),
                       _int("MatchingPrecedence", "Matching precedence of the flow schema"),
                       _str("DistinguisherMethod", "Distinguisher method of the flow schema"), _AGE,
                       _str("MissingPL", "references a missing priority level configuration"))


def priority_level(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    limited = spec.get("limited") or {}
    queuing = _get(limited, "limitResponse", "queuing", default=None)
    if spec.get("type") != "Limited":
        return [name_of(obj), spec.get("type", ""), "<none>", "<none>", "<none>", "<none>", _age(obj, now)]
    cells = [name_of(obj), "Limited", limited.get("nominalConcurrencyShares", 30)]
    if queuing:
        cells += [queuing.get("queues", 64), queuing.get("handSize", 8), queuing.get("queueLengthLimit", 50)]
    else:
        cells += ["<none>", "<none>", "<none>"]
    return cells + [_age(obj, now)]


PRIORITY_LEVEL_COLUMNS = (_NAME, _str("Type", "Type of priority level configuration"),
                          _str("NominalConcurrencyShares", "Nominal concurrency shares"),
                          _str("Queues", "Number of queues"), _str("HandSize", "Hand size"),
                          _str("QueueLengthLimit", "Queue length limit"), _AGE)


# --- core ----------------------------------------------------------------------------------------------------------

def pod_template(info, obj: dict, now: datetime) -> list:
    names, images = _containers(_get(obj, "template", "spec"))
    return [name_of(obj), names, images, format_labels(_get(obj, "template", "metadata", "labels", default={}))
            or "<none>"]


POD_TEMPLATE_COLUMNS = (_NAME, _str("Containers", "Names of each container in the template."),
                        _str("Images", "Images referenced by each container in the template."),
                        _str("Pod Labels", "The labels for the pod template."))


def component_status(info, obj: dict, now: datetime) -> list:
    healthy = next((c for c in obj.get("conditions") or [] if c.get("type") == "Healthy"), {})
    state = {"True": "Healthy", "False": "Unhealthy"}.get(healthy.get("status"), "Unknown")
    return [name_of(obj), state, healthy.get("message", ""), healthy.get("error", "")]


COMPONENT_STATUS_COLUMNS = (_NAME, _str("Status", "Status of the component conditions"),
                            _str("Message", "Message of the component conditions"),
                            _str("Error", "Error of the component conditions"))


# --- storage CSI objects -------------------------------------------------------------------------------------------

def csi_driver(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    tokens = ",".join(t.get("audience") or "<unset>" for t in spec.get("tokenRequests") or []) or "<unset>"
    return [name_of(obj), spec.get("attachRequired", True), spec.get("podInfoOnMount", False),
            spec.get("storageCapacity", False), tokens, spec.get("requiresRepublish", False),
            ",".join(spec.get("volumeLifecycleModes") or ["Persistent"]), _age(obj, now)]


CSI_DRIVER_COLUMNS = (_NAME, Col("AttachRequired", type="boolean", description="Kubernetes needs to attach volumes"),
                      Col("PodInfoOnMount", type="boolean", description="Pod info is passed on mount"),
                      Col("StorageCapacity", type="boolean", description="Storage capacity is tracked"),
                      _str("TokenRequests", "Service account tokens passed on mount"),
                      Col("RequiresRepublish", type="boolean", description="Volumes are republished periodically"),
                      _str("Modes", "Volume lifecycle modes"), _AGE)


def csi_node(info, obj: dict, now: datetime) -> list:
    return [name_of(obj), len(_get(obj, "spec", "drivers", default=[])), _age(obj, now)]


CSI_NODE_COLUMNS = (_NAME, _int("Drivers", "Drivers indicates the number of CSI drivers registered on the node"),
                    _AGE)


def volume_attachment(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    return [name_of(obj), spec.get("attacher", ""), _get(spec, "source", "persistentVolumeName", default=""),
            spec.get("nodeName", ""), bool(_get(obj, "status", "attached", default=False)), _age(obj, now)]


VOLUME_ATTACHMENT_COLUMNS = (_NAME, _str("Attacher", "Attacher indicates the name of the volume driver"),
                             _str("PV", "PV indicates the name of the persistent volume"),
                             _str("Node", "Node indicates the node where the volume is attached"),
                             Col("Attached", type="boolean", description="Attached indicates the volume is attached"),
                             _AGE)

# --- admissionregistration ----------------------------------------------------------------------------------------

def webhook_configuration(info, obj: dict, now: datetime) -> list:
    return [name_of(obj), len(obj.get("webhooks") or []), _age(obj, now)]


WEBHOOK_COLUMNS = (_NAME, _int("Webhooks", "Webhooks indicates the number of webhooks in this configuration"),
                   _AGE)


def admission_policy(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    param = spec.get("paramKind")
    shown = f"{param.get('apiVersion', '')}/{param.get('kind', '')}" if param else "<unset>"
    return [name_of(obj), len(spec.get("validations") or []), shown, _age(obj, now)]


POLICY_COLUMNS = (_NAME, _int("Validations", "Validations indicates the number of validation rules"),
                  _str("ParamKind", "ParamKind specifies the kind of resources used to parameterize this policy"),
                  _AGE)


def admission_policy_binding(info, obj: dict, now: datetime) -> list:
    spec = obj.get("spec") or {}
    ref = spec.get("paramRef")
    shown = "<unset>"
    if ref:
        shown = f"{ref.get('namespace')}/{ref.get('name', '*')}" if ref.get("namespace") else ref.get("name", "*")
    return [name_of(obj), spec.get("policyName", ""), shown, _age(obj, now)]


BINDING_COLUMNS = (_NAME, _str("PolicyName", "PolicyName indicates the policy definition which the policy binding "
                               "binded to"),
                   _str("ParamRef", "ParamRef indicates the param resource which sets the configration param"),
                   _AGE)

# --- apiregistration -----------------------------------------------------------------------------------------------

def api_service(info, obj: dict, now: datetime) -> list:
    service = (obj.get("spec") or {}).get("service")
    shown = f"{service.get('namespace', '')}/{service.get('name', '')}" if service else "Local"
    available = next((c for c in _get(obj, "status", "conditions", default=[]) if c.get("type") == "Available"),
                     None)
    state = "Unknown"
    if available:
        state = available.get("status", "Unknown")
        if state != "True" and available.get("reason"):
            state = f"{state} ({available['reason']})"
    return [name_of(obj), shown, state, _age(obj, now)]


API_SERVICE_COLUMNS = (_NAME, _str("Service", "The reference to the service that hosts this API endpoint."),
                       _str("Available", "Whether this service is available."), _AGE)

# qualified resource -> (columns, cells)
PRINTERS = {
    "horizontalpodautoscalers.autoscaling": (HPA_COLUMNS, horizontal_pod_autoscaler),
    "ingresses.networking.k8s.io": (INGRESS_COLUMNS, ingress),
    "ingressclasses.networking.k8s.io": (INGRESS_CLASS_COLUMNS, ingress_class),
    "networkpolicies.networking.k8s.io": (NETWORK_POLICY_COLUMNS, network_policy),
    "certificatesigningrequests.certificates.k8s.io": (CSR_COLUMNS, certificate_signing_request),
    "runtimeclasses.node.k8s.io": (RUNTIME_CLASS_COLUMNS, runtime_class),
    "flowschemas.flowcontrol.apiserver.k8s.io": (FLOW_SCHEMA_COLUMNS, flow_schema),
    "prioritylevelconfigurations.flowcontrol.apiserver.k8s.io": (PRIORITY_LEVEL_COLUMNS, priority_level),
    "podtemplates": (POD_TEMPLATE_COLUMNS, pod_template),
    "componentstatuses": (COMPONENT_STATUS_COLUMNS, component_status),
    "csidrivers.storage.k8s.io": (CSI_DRIVER_COLUMNS, csi_driver),
    "csinodes.storage.k8s.io": (CSI_NODE_COLUMNS, csi_node),
    "volumeattachments.storage.k8s.io": (VOLUME_ATTACHMENT_COLUMNS, volume_attachment),
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": (WEBHOOK_COLUMNS, webhook_configuration),
    "validatingwebhookconfigurations.admissionregistration.k8s.io": (WEBHOOK_COLUMNS, webhook_configuration),
    "validatingadmissionpolicies.admissionregistration.k8s.io": (POLICY_COLUMNS, admission_policy),
    "validatingadmissionpolicybindings.admissionregistration.k8s.io": (BINDING_COLUMNS, admission_policy_binding),
    "apiservices.apiregistration.k8s.io": (API_SERVICE_COLUMNS, api_service),
}
