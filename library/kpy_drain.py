#!/usr/bin/python
"""Ansible module kpy_drain: cordon a node, drain it through the Eviction API, uncordon it - as kubectl does."""

DOCUMENTATION = r"""
---
module: kpy_drain
short_description: Cordon, drain (through the Eviction API) or uncordon a node of a kpy cluster
description:
  - C(state=drained) does what C(kubectl drain) does. It first decides, for every pod bound to the node, whether it
    is evicted, left or refused, and fails naming every refused pod before changing anything. Then it cordons the
    node (C(spec.unschedulable=true)), evicts the pods through the C(policy/v1) Eviction API (so
    PodDisruptionBudgets are honoured) and waits until each evicted pod is gone (deleted, or replaced by a pod of
    the same name with another UID).
  - Pods left on the node - those managed by a DaemonSet (with O(ignore_daemonsets)) and mirror pods of static pods.
  - Pods refused unless an option allows them - DaemonSet pods (without O(ignore_daemonsets)), pods with emptyDir
    volumes (O(delete_emptydir_data)), pods no controller manages and DaemonSet pods whose DaemonSet is gone
    (O(force)). Finished pods (Succeeded, Failed) are always evicted.
  - An eviction refused with 429 (a PodDisruptionBudget allows no disruption now) is retried every second until
    O(timeout), as C(kubectl drain) does; then the module fails naming the pods and the budget's message.
  - An Ansible module cannot stream output, so progress goes to the module log (journal) and each pod's timing is
    returned in RV(pods) for the playbook to print.
  - C(state=cordoned) only cordons; C(state=uncordoned) makes the node schedulable again.
  - Runs where the kubeconfig and the C(kubernetes) Python client are, normally the controller, so use it with
    C(delegate_to=localhost) and the controller's Python (C(ansible_python_interpreter) set to
    C({{ ansible_playbook_python }})).
  - Supports check mode - reports what it would cordon and evict (and fails on what it would refuse), changes nothing.
version_added: "1.31.0"
author: kpy
requirements: [kubernetes (the official Python client)]
options:
  kubeconfig:
    description: Kubeconfig with the credentials of a user allowed to patch nodes, list pods and create
      pods/eviction (the cluster admin's).
    type: path
    required: true
  context:
    description: Context of O(kubeconfig) to use; its current context when omitted.
    type: str
  node:
    description: Name of the Node object.
    type: str
    required: true
  state:
    description: C(drained) - cordoned with its pods evicted; C(cordoned) - unschedulable, pods untouched;
      C(uncordoned) - schedulable.
    type: str
    choices: [drained, cordoned, uncordoned]
    default: drained
  ignore_daemonsets:
    description: Leave DaemonSet-managed pods on the node (their DaemonSet would recreate them at once). When
      false, such pods make the drain fail.
    type: bool
    default: true
  delete_emptydir_data:
    description: Evict pods with emptyDir volumes, whose data is lost with the pod. When false, such pods make the
      drain fail.
    type: bool
    default: false
  force:
    description: Evict pods that no controller manages (nothing recreates them) and DaemonSet pods whose DaemonSet
      is gone. When false, such pods make the drain fail.
    type: bool
    default: false
  grace_period:
    description: Seconds each evicted pod gets to terminate; the pod's own terminationGracePeriodSeconds when
      omitted. 0 deletes at once (no graceful stop).
    type: int
  timeout:
    description: Seconds the drain may take in all - evictions refused by a PodDisruptionBudget are retried and
      evicted pods are waited for until then.
    type: int
    default: 300
  owner:
    description: Who cordons. With it, a cordon made by this call records it in the node's annotation
      C(kpy.io/cordoned-by), and C(state=uncordoned) uncordons only a node this owner cordoned, removing the
      annotation - a node an administrator had cordoned stays cordoned, and a re-run can find the nodes an interrupted
      run left cordoned.
    type: str
"""

EXAMPLES = r"""
- name: Drain | Evict the pods of the node
  kpy_drain:
    kubeconfig: "{{ kpy_pki_local_dir }}/admin.kubeconfig"
    node: "{{ inventory_hostname }}"
    state: drained
    delete_emptydir_data: true
    timeout: 600
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: upgrade_drain

- name: Drain | Show how long each pod took
  ansible.builtin.debug:
    msg: "{{ upgrade_drain.pods | map(attribute='summary') | list }}"

- name: Uncordon | Make the node schedulable again
  kpy_drain:
    kubeconfig: "{{ kpy_pki_local_dir }}/admin.kubeconfig"
    node: "{{ inventory_hostname }}"
    state: uncordoned
  delegate_to: localhost
"""

RETURN = r"""
cordoned:
  description: Whether this call cordoned (or uncordoned, with C(state=uncordoned)) the node.
  returned: always
  type: bool
evicted:
  description: Pods evicted by this call (or, in check mode, that would be), as namespace/name.
  returned: always
  type: list
  elements: str
  sample: ["default/web-5d9c7-x2f4q"]
left:
  description: Pods left on the node, each with why (not C(skipped), which Ansible reads as the task's status).
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "kube-system/kpy-proxy-7x2kq", "reason": "managed by DaemonSet kpy-proxy"}]
pods:
  description: Each evicted pod with its timing in seconds from the start of the drain - when its eviction was
    accepted (C(evicted_after)), after how many attempts (more than 1 when a PodDisruptionBudget refused it), when
    it was gone (C(gone_after)) - and a one-line C(summary).
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "default/web-1", "attempts": 3, "evicted_after": 2.1, "gone_after": 4.0,
            "summary": "default/web-1 evicted after 2.1 s (3 attempts), gone after 4.0 s"}]
seconds:
  description: How long the call took.
  returned: always
  type: float
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import urllib3
    from kubernetes import client as k8s, config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
except ImportError:
    k8s = None

ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path", "required": True},
    "context": {"type": "str"},
    "node": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["drained", "cordoned", "uncordoned"], "default": "drained"},
    "ignore_daemonsets": {"type": "bool", "default": True},
    "delete_emptydir_data": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "grace_period": {"type": "int"},
    "timeout": {"type": "int", "default": 300},
    "owner": {"type": "str"},
}

CORDONED_BY = "kpy.io/cordoned-by"  # who cordoned the node (option owner)
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"  # set by the kubelet on the API copy of a static pod
FINISHED = ("Succeeded", "Failed")
POLL = 1.0  # seconds between eviction retries and between checks that evicted pods are gone
REQUEST_TIMEOUT = 15  # seconds for one API request


# --- which pods go (plain pod dicts as the API serves them; no I/O) ---------------------------------------------

def pod_key(pod: dict) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


def controller_of(pod: dict) -> dict | None:
    return next((ref for ref in pod["metadata"].get("ownerReferences") or [] if ref.get("controller")), None)


def decide(pod: dict, daemonset_exists, ignore_daemonsets: bool, delete_emptydir_data: bool,
           force: bool) -> tuple[str, str]:
    """("evict" | "skip" | "refuse", why) for one pod, checked in `kubectl drain`'s order (DaemonSet, mirror pod,
    local storage, unmanaged), the first check that does not let the pod go deciding. `daemonset_exists(namespace,
    name)` is asked only about the DaemonSet controlling a running pod."""
    finished = (pod.get("status") or {}).get("phase") in FINISHED
    owner = controller_of(pod)
    if owner and owner.get("kind") == "DaemonSet" and not finished:
        if not daemonset_exists(pod["metadata"].get("namespace", ""), owner["name"]):
            if not force:
                return "refuse", f"its DaemonSet {owner['name']} is gone (force: true evicts it)"
        elif ignore_daemonsets:
            return "skip", f"managed by DaemonSet {owner['name']}"
        else:
            return "refuse", f"managed by DaemonSet {owner['name']} (ignore_daemonsets: true leaves it)"
    if MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {}):
        return "skip", "mirror pod of a static pod"
    volumes = (pod.get("spec") or {}).get("volumes") or []
    if not finished and not delete_emptydir_data and any("emptyDir" in volume for volume in volumes):
        return "refuse", "has emptyDir data (delete_emptydir_data: true deletes it)"
    if not finished and owner is None and not force:
        return "refuse", "no controller manages it (force: true evicts it)"
    return "evict", ""


def plan(pods: list[dict], daemonset_exists, **options) -> dict[str, list]:
    """The node's pods sorted into evict (pods), skip and refuse ({"pod": namespace/name, "reason": why})."""
    sorted_pods = {"evict": [], "skip": [], "refuse": []}
    for pod in pods:
        verdict, why = decide(pod, daemonset_exists, **options)
        sorted_pods[verdict].append(pod if verdict == "evict" else {"pod": pod_key(pod), "reason": why})
    return sorted_pods


def refusal(refused: list[dict], node: str) -> str:
    return (f"cannot drain node {node}: " + "; ".join(f"{item['pod']} {item['reason']}" for item in refused))


# --- talking to the API server ----------------------------------------------------------------------------------

class DrainError(Exception):
    """Why the call failed, for fail_json."""


def api_message(error: "ApiException") -> str:
    """The Status message (and causes) of an API error, else its HTTP reason."""
    try:
        status = json.loads(error.body or "")
    except ValueError:
        return f"HTTP {error.status} {error.reason}"
    causes = [cause.get("message", "") for cause in (status.get("details") or {}).get("causes") or []]
    return " ".join([status.get("message") or f"HTTP {error.status} {error.reason}", *causes]).strip()


class Cluster:
    """The few API calls a drain makes, with plain dicts in and out; errors become DrainError naming the call."""

    def __init__(self, kubeconfig: str, context: str | None):
        if not os.path.isfile(kubeconfig):
            raise DrainError(f"kubeconfig {kubeconfig} does not exist")
        try:
            self.client = k8s_config.new_client_from_config(config_file=kubeconfig, context=context,
                                                            persist_config=False)
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as error:
            raise DrainError(f"kubeconfig {kubeconfig} cannot be used: {error}") from None
        self.client.configuration.retries = 1
        self.host = self.client.configuration.host
        self.core = k8s.CoreV1Api(self.client)
        self.apps = k8s.AppsV1Api(self.client)

    def call(self, what: str, method, *args, **kwargs):
        """`method(*args, **kwargs)` as plain data; ApiException passes through, a dead connection does not."""
        try:
            return self.client.sanitize_for_serialization(method(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs))
        except urllib3.exceptions.HTTPError as error:
            raise DrainError(f"{what}: cannot reach the API server at {self.host}: {error}") from None

    def node(self, name: str) -> dict:
        try:
            return self.call(f"reading node {name}", self.core.read_node, name)
        except ApiException as error:
            if error.status == 404:
                raise DrainError(f"node {name} not found at {self.host}") from None
            raise DrainError(f"reading node {name}: {api_message(error)}") from None

    def set_unschedulable(self, name: str, unschedulable: bool, owner: str | None = None) -> None:
        # null removes the field, as `kubectl uncordon` leaves it
        body = {"spec": {"unschedulable": True if unschedulable else None}}
        if owner:
            body["metadata"] = {"annotations": {CORDONED_BY: owner if unschedulable else None}}
        try:
            self.call(f"patching node {name}", self.core.patch_node, name, body,
                      _content_type="application/merge-patch+json")
        except ApiException as error:
            raise DrainError(f"patching node {name}: {api_message(error)}") from None

    def pods_on(self, node: str) -> list[dict]:
        try:
            listed = self.call(f"listing the pods of node {node}", self.core.list_pod_for_all_namespaces,
                               field_selector=f"spec.nodeName={node}")
        except ApiException as error:
            raise DrainError(f"listing the pods of node {node}: {api_message(error)}") from None
        return listed.get("items") or []

    def daemonset_exists(self, namespace: str, name: str) -> bool:
        try:
            self.call(f"reading DaemonSet {namespace}/{name}", self.apps.read_namespaced_daemon_set, name, namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise DrainError(f"reading DaemonSet {namespace}/{name}: {api_message(error)}") from None
        return True

    def evict(self, pod: dict, grace_period: int | None) -> str | None:
        """None once the eviction is accepted (or the pod is already gone); the budget's message on 429."""
        metadata = pod["metadata"]
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]}}
        if grace_period is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
        try:
            self.call(f"evicting pod {pod_key(pod)}", self.core.create_namespaced_pod_eviction,
                      metadata["name"], metadata["namespace"], body)
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 429:
                return api_message(error)
            raise DrainError(f"evicting pod {pod_key(pod)}: {api_message(error)}") from None
        return None

    def is_gone(self, pod: dict) -> bool:
        """Deleted, or replaced by a pod of the same name with another UID (a StatefulSet's)."""
        metadata = pod["metadata"]
        try:
            current = self.call(f"reading pod {pod_key(pod)}", self.core.read_namespaced_pod, metadata["name"],
                                metadata["namespace"])
        except ApiException as error:
            if error.status == 404:
                return True
            raise DrainError(f"reading pod {pod_key(pod)}: {api_message(error)}") from None
        return current["metadata"].get("uid") != metadata.get("uid")


# --- the drain --------------------------------------------------------------------------------------------------

class Drain:
    """One call of the module: cordon, evict (retrying 429), wait; recording what it did for the result."""

    def __init__(self, module, cluster: Cluster):
        self.module, self.cluster, self.params = module, cluster, module.params
        self.started = time.monotonic()
        self.deadline = self.started + self.params["timeout"]
        self.result = {"changed": False, "cordoned": False, "evicted": [], "left": [], "pods": []}

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def log(self, message: str) -> None:
        self.module.log(f"kpy_drain node={self.params['node']}: {message}")

    def set_schedulable(self, node: dict, schedulable: bool) -> None:
        if bool((node.get("spec") or {}).get("unschedulable")) != schedulable:
            return
        owner = self.params["owner"]
        if schedulable and owner and ((node.get("metadata") or {}).get("annotations") or {}).get(CORDONED_BY) != owner:
            self.log(f"left cordoned: not cordoned by {owner}")
            return
        self.result.update(changed=True, cordoned=True)
        if not self.module.check_mode:
            self.cluster.set_unschedulable(self.params["node"], not schedulable, owner)
        self.log("uncordoned" if schedulable else "cordoned")

    def plan(self) -> list[dict]:
        options = {key: self.params[key] for key in ("ignore_daemonsets", "delete_emptydir_data", "force")}
        sorted_pods = plan(self.cluster.pods_on(self.params["node"]), self.cluster.daemonset_exists, **options)
        if sorted_pods["refuse"]:
            raise DrainError(refusal(sorted_pods["refuse"], self.params["node"]))
        self.result["left"] = sorted_pods["skip"]
        return sorted_pods["evict"]

    def drain(self, node: dict) -> None:
        pending = self.plan()  # refused pods fail the call before anything changes
        self.set_schedulable(node, False)
        if self.module.check_mode:
            self.result["evicted"] = [pod_key(pod) for pod in pending]
            self.result["changed"] |= bool(pending)
            return
        pending = self.plan()  # again: pods may have been bound to the node before it was cordoned
        evicted = self.evict(pending)
        self.wait_gone(evicted)

    def evict(self, pending: list[dict]) -> list[dict]:
        """Evict every pod, retrying those a PodDisruptionBudget protects, until the deadline."""
        attempts, evicted = {}, []
        while True:
            blocked = {}
            for pod in pending:
                key = pod_key(pod)
                attempts[key] = attempts.get(key, 0) + 1
                message = self.cluster.evict(pod, self.params["grace_period"])
                if message is not None:
                    if attempts[key] == 1:
                        self.log(f"eviction of {key} refused, retrying: {message}")
                    blocked[key] = message
                    continue
                record = {"pod": key, "attempts": attempts[key], "evicted_after": self.elapsed()}
                self.result["pods"].append(record)
                self.result["evicted"].append(key)
                self.result["changed"] = True
                evicted.append(pod)
                self.log(f"evicted {key} after {record['evicted_after']} s ({attempts[key]} attempts)")
            pending = [pod for pod in pending if pod_key(pod) in blocked]
            if not pending:
                return evicted
            if time.monotonic() + POLL > self.deadline:
                raise DrainError(f"timed out after {self.params['timeout']} s evicting pods of node "
                                 f"{self.params['node']}: " + "; ".join(f"{key}: {message}"
                                                                        for key, message in blocked.items()))
            time.sleep(POLL)

    def wait_gone(self, evicted: list[dict]) -> None:
        records = {record["pod"]: record for record in self.result["pods"]}
        waiting = list(evicted)
        while True:
            still = []
            for pod in waiting:
                if self.cluster.is_gone(pod):
                    record = records[pod_key(pod)]
                    record["gone_after"] = self.elapsed()
                    self.log(f"{pod_key(pod)} is gone after {record['gone_after']} s")
                else:
                    still.append(pod)
            waiting = still
            if not waiting:
                return
            if time.monotonic() + POLL > self.deadline:
                raise DrainError(f"timed out after {self.params['timeout']} s waiting for evicted pods of node "
                                 f"{self.params['node']} to terminate: " + ", ".join(map(pod_key, waiting)))
            time.sleep(POLL)

    def run(self) -> dict:
        node = self.cluster.node(self.params["node"])
        if self.params["state"] == "uncordoned":
            self.set_schedulable(node, True)
        elif self.params["state"] == "cordoned":
            self.set_schedulable(node, False)
        else:
            self.drain(node)
        for record in self.result["pods"]:
            gone = f", gone after {record['gone_after']} s" if "gone_after" in record else ""
            record["summary"] = (f"{record['pod']} evicted after {record['evicted_after']} s "
                                 f"({record['attempts']} attempts){gone}")
        self.result["seconds"] = self.elapsed()
        return self.result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if k8s is None:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    if module.params["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be positive, got {module.params['timeout']}")
    drain = None
    try:
        drain = Drain(module, Cluster(module.params["kubeconfig"], module.params["context"]))
        result = drain.run()
    except DrainError as error:
        partial = drain.result if drain else {}
        module.fail_json(msg=str(error), **partial)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
