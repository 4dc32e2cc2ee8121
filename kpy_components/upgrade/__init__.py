"""Rolling upgrades of a kpy cluster, one minor at a time (issue 12).

    policy.py   the version-skew policy: the observed state, refusals and the ordered plan (pure)
    gather.py   reads the live cluster for the policy (Nodes, Leases, health, API versions the target drops)

The Ansible side: library/kpy_component_versions.py (each host), library/kpy_upgrade_plan.py (the controller),
playbooks/upgrade.yml.
"""
