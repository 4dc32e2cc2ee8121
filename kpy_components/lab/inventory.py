"""The Ansible inventory of a lab: groups etcd, control_plane and workers, reached over SSH as `ansible` + sudo."""
from pathlib import Path

import yaml

from kpy_components.lab.spec import LabSpec

GROUPS = ("etcd", "control_plane", "workers")


def render(spec: LabSpec, private_key: Path) -> str:
    groups = {
        group: {"hosts": {h.name: {"ansible_host": str(h.address)} for h in spec.hosts if group in h.groups}}
        for group in GROUPS
    }
    inventory = {"all": {
        "vars": {
            "ansible_user": "ansible",
            "ansible_become": True,
            "ansible_ssh_private_key_file": str(private_key),
            "ansible_python_interpreter": "/usr/bin/python3",
            # The hosts' network is the lab's to say; the other cluster settings live in group_vars.
            "kpy_node_cidr": str(spec.network),
        },
        "children": groups,
    }}
    header = f"# Written by `kpy-lab up` for lab {spec.name!r}; `kpy-lab down` removes the hosts it names.\n"
    return header + yaml.safe_dump(inventory, sort_keys=False)
