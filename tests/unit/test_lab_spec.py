"""The lab's shape: names, addresses, groups and the inventory written for it."""
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml

from kpy_components.lab import inventory
from kpy_components.lab.run import LabError
from kpy_components.lab.spec import LabSpec


def test_default_lab_is_three_control_plane_hosts_with_etcd_and_two_workers():
    spec = LabSpec()
    assert [(h.name, str(h.address), h.groups) for h in spec.hosts] == [
        ("kpy-cp1", "10.213.0.11", ("etcd", "control_plane")),
        ("kpy-cp2", "10.213.0.12", ("etcd", "control_plane")),
        ("kpy-cp3", "10.213.0.13", ("etcd", "control_plane")),
        ("kpy-w1", "10.213.0.21", ("workers",)),
        ("kpy-w2", "10.213.0.22", ("workers",)),
    ]
    assert spec.bridge_address == IPv4Address("10.213.0.1")
    assert spec.gateway not in {h.address for h in spec.hosts} | {spec.bridge_address}


def test_subnet_index_moves_every_address():
    spec = LabSpec(name="fw", subnet_index=13, control_plane=1, workers=1)
    assert [str(h.address) for h in spec.hosts] == ["10.213.13.11", "10.213.13.21"]
    assert len(spec.bridge) <= 15


@pytest.mark.parametrize("kwargs, word", [
    ({"name": "Bad_Name"}, "lab name"),
    ({"name": "muchtoolongname"}, "lab name"),
    ({"subnet_index": 256}, "subnet index"),
    ({"control_plane": 0, "workers": 0}, "at least one host"),
    ({"workers": 12}, "0-9"),
], ids=["case", "length", "subnet", "empty", "too-many"])
def test_bad_shapes_are_refused_with_the_reason(kwargs, word):
    with pytest.raises(LabError, match=word):
        LabSpec(**kwargs)


def test_inventory_groups_hosts_and_connects_as_ansible_with_sudo():
    spec = LabSpec(control_plane=3, workers=2)
    rendered = yaml.safe_load(inventory.render(spec, Path("/keys/id")))["all"]
    assert rendered["vars"]["ansible_user"] == "ansible"
    assert rendered["vars"]["ansible_become"] is True
    assert rendered["vars"]["ansible_ssh_private_key_file"] == "/keys/id"
    assert rendered["vars"]["kpy_node_cidr"] == "10.213.0.0/24"
    groups = {g: sorted(v["hosts"]) for g, v in rendered["children"].items()}
    assert groups == {
        "etcd": ["kpy-cp1", "kpy-cp2", "kpy-cp3"],
        "control_plane": ["kpy-cp1", "kpy-cp2", "kpy-cp3"],
        "workers": ["kpy-w1", "kpy-w2"],
    }
    assert rendered["children"]["workers"]["hosts"]["kpy-w2"]["ansible_host"] == "10.213.0.22"
