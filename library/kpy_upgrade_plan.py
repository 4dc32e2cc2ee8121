#!/usr/bin/python
"""Ansible module kpy_upgrade_plan: the upgrade preflight and plan, from the hosts' versions and the live cluster."""

DOCUMENTATION = r"""
---
module: kpy_upgrade_plan
short_description: Check a kpy cluster against the version-skew policy and plan its rolling upgrade
description:
  - Runs on the controller (C(delegate_to: localhost), C(run_once)) with the Python that has this checkout's
    kpy_components installed, and the official C(kubernetes) client.
  - Reads the live cluster through I(kubeconfig) - Nodes (Ready, kubeletVersion, kubeProxyVersion), the Leases
    kube-system/kube-controller-manager and kube-scheduler (their holders), C(/readyz?verbose) (etcd's check among
    them), and objects stored in built-in API versions the live cluster serves but the target does not (webhook
    configurations first) - and combines it with each host's M(kpy_component_versions) result.
  - Fails, listing every refusal one per line, when the policy (kpy_components/upgrade/policy.py) forbids the upgrade;
    else returns the plan. Only reads; changed is always false. Supports check mode.
  - What the target serves is known from this checkout's catalog of API resources, so I(target) must be this
    checkout's version.
version_added: "1.31.0"
author: kpy
options:
  kubeconfig:
    description: The admin kubeconfig.
    type: path
    required: true
  target:
    description: The kpy version to upgrade to (1.31.0 or v1.31.0).
    type: str
    required: true
  hosts:
    description:
      - Inventory host -> its M(kpy_component_versions) result (C(components), C(hostname)) plus C(groups), its
        inventory groups (hosts in C(control_plane) are drained and upgraded first among the nodes).
    type: dict
    required: true
  allow_patch_downgrade:
    description: Allow moving to an older patch release of the same minor.
    type: bool
    default: false
  skip_node_ready:
    description: Do not refuse when a node is not Ready.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Preflight | Plan the upgrade
  kpy_upgrade_plan:
    kubeconfig: "{{ kpy_artifacts_dir }}/admin.kubeconfig"
    target: "{{ kpy_version }}"
    hosts: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'kpy_versions'))) }}"
  delegate_to: localhost
  run_once: true
  register: kpy_upgrade
"""

RETURN = r"""
plan:
  description: The steps in order, each C(phase) (etcd, apiserver, controller-manager, scheduler, node), C(host),
    C(component), C(from), C(to).
  returned: success
  type: list
  elements: dict
plan_text:
  description: The table of every component on every host (COMPONENT HOST CURRENT TARGET), then the order.
  returned: always, unless the input could not be read
  type: str
etcd_hosts:
  description: Hosts whose etcd member moves, in order (one at a time).
  returned: success
  type: list
  elements: str
apiserver_hosts:
  description: Hosts whose API server moves, in order.
  returned: success
  type: list
  elements: str
controller_manager_hosts:
  description: Hosts whose controller manager moves, standbys first, the Lease holder last.
  returned: success
  type: list
  elements: str
scheduler_hosts:
  description: Hosts whose scheduler moves, standbys first, the Lease holder last.
  returned: success
  type: list
  elements: str
node_hosts:
  description: Hosts whose kubelet, kpy-proxy or kpy-dns moves, control-plane hosts first.
  returned: success
  type: list
  elements: str
at_target:
  description: Hosts with nothing to do.
  returned: success
  type: list
  elements: str
refusals:
  description: Why the policy forbids the upgrade, each naming host and component (empty on success).
  returned: always, unless the input could not be read
  type: list
  elements: str
"""

import sys

from ansible.module_utils.basic import AnsibleModule

PHASE_HOSTS = {"etcd_hosts": "etcd", "apiserver_hosts": "apiserver", "controller_manager_hosts": "controller-manager",
               "scheduler_hosts": "scheduler", "node_hosts": "node"}


def main():
    module = AnsibleModule(
        argument_spec={
            "kubeconfig": {"type": "path", "required": True},
            "target": {"type": "str", "required": True},
            "hosts": {"type": "dict", "required": True},
            "allow_patch_downgrade": {"type": "bool", "default": False},
            "skip_node_ready": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        from kubernetes import config as kube_config
        from kubernetes.config.config_exception import ConfigException

        from kpy_components.upgrade import gather, policy
        from kpy_components.version import VERSION
    except ImportError as exc:
        module.fail_json(msg=f"{sys.executable} cannot import {exc.name}: run this module with the controller's "
                             "Python that has kpy (this checkout) and the kubernetes client installed")
    try:
        target = policy.Version.parse(p["target"])
    except policy.VersionError as exc:
        module.fail_json(msg=f"target: {exc}")
    try:
        api_client = kube_config.new_client_from_config(config_file=p["kubeconfig"])
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        module.fail_json(msg=f"kubeconfig {p['kubeconfig']}: {exc}")
    try:
        with api_client:
            state = gather.observe(p["hosts"], gather.Cluster(api_client), gather.this_checkout_serves())
    except gather.GatherError as exc:
        module.fail_json(msg=str(exc))
    refused = policy.refusals(state, target, p["allow_patch_downgrade"], p["skip_node_ready"])
    if target != policy.Version.parse(VERSION):
        refused.insert(0, f"target {target} is not this checkout's version ({VERSION}): check out kpy {target} "
                          "(what a version serves and installs comes from its own tree)")
    planned = policy.plan(state, target)
    if refused:
        module.fail_json(msg=f"the upgrade to {target} is refused:\n" + "\n".join(refused), refusals=refused,
                         plan_text=planned.text())
    module.exit_json(changed=False, plan=[step.as_dict() for step in planned.steps], plan_text=planned.text(),
                     at_target=planned.at_target, refusals=[],
                     **{key: planned.hosts(phase) for key, phase in PHASE_HOSTS.items()})


if __name__ == "__main__":
    main()
