"""Inventory validation on plain data: each problem is reported naming what is wrong, all of them at once."""

from __future__ import annotations

import copy

import pytest

from kpy_components.inventory.validate import CLUSTER_VARIABLES, Unresolved, inventory_problems

_VALID = {
    "groups": {
        "all": ["cp1", "cp2", "cp3", "w1", "w2"],
        "ungrouped": [],
        "etcd": ["cp1", "cp2", "cp3"],
        "control_plane": ["cp1", "cp2", "cp3"],
        "workers": ["w1", "w2"],
    },
    "cluster": {
        "kpy_cluster_name": "lab",
        "kpy_cluster_domain": "cluster.local",
        "kpy_pod_cidr": "10.244.0.0/16",
        "kpy_service_cidr": "10.96.0.0/16",
        "kpy_node_cidr": "10.213.0.0/24",
        "kpy_api_endpoint": "10.213.0.11",
    },
    "hosts": {
        "cp1": {"ansible_host": "10.213.0.11"},
        "cp2": {"ansible_host": "10.213.0.12"},
        "cp3": {"ansible_host": "10.213.0.13"},
        "w1": {"ansible_host": "10.213.0.21", "firewall_extra_ports": [{"port": 9100, "comment": "node exporter"}]},
        "w2": {"ansible_host": "10.213.0.22"},
    },
}


@pytest.fixture
def inventory() -> dict:
    """A valid inventory in the lab's shape; a fresh copy per test, free to edit."""
    return copy.deepcopy(_VALID)


def problems_of(inventory: dict) -> list[str]:
    return inventory_problems(
        inventory["groups"], inventory["cluster"], inventory["hosts"], inventory.get("definitions")
    )


def test_a_valid_inventory_has_no_problems(inventory):
    assert problems_of(inventory) == []


def test_a_single_etcd_member_and_no_workers_is_valid(inventory):
    inventory["groups"].update(all=["cp1"], etcd=["cp1"], control_plane=["cp1"], workers=[])
    assert problems_of(inventory) == []


@pytest.mark.parametrize(
    ("etcd", "expected"),
    [
        ([], "group etcd is empty or missing: it needs an odd number of members"),
        (["cp1", "cp2"], "group etcd has 2 members (cp1, cp2): it needs an odd number"),
        (["cp1", "cp2", "cp3", "w1"], "group etcd has 4 members (cp1, cp2, cp3, w1)"),
        (None, "group etcd is empty or missing"),
    ],
    ids=["empty", "two", "four", "missing"],
)
def test_etcd_needs_an_odd_number_of_members(inventory, etcd, expected):
    if etcd is None:
        del inventory["groups"]["etcd"]
    else:
        inventory["groups"]["etcd"] = etcd
    assert [problem for problem in problems_of(inventory) if expected in problem]


def test_an_empty_control_plane_is_refused(inventory):
    inventory["groups"]["control_plane"] = []
    assert problems_of(inventory) == [
        "group control_plane is empty or missing: the cluster needs at least one control-plane host"
    ]


def test_a_host_in_no_kpy_group_is_named(inventory):
    inventory["groups"]["all"].append("stray")
    inventory["groups"]["ungrouped"].append("stray")
    inventory["hosts"]["stray"] = {"ansible_host": "10.213.0.99"}
    assert problems_of(inventory) == [
        "host stray is in none of the groups etcd, control_plane, workers: "
        "add it to one or remove it from the inventory"
    ]


@pytest.mark.parametrize("name", CLUSTER_VARIABLES)
@pytest.mark.parametrize("missing", ["absent", "empty", "null"])
def test_a_missing_cluster_variable_is_named(inventory, name, missing):
    if missing == "absent":
        del inventory["cluster"][name]
    else:
        inventory["cluster"][name] = "" if missing == "empty" else None
    assert problems_of(inventory) == [
        f"{name} is not set: define it for all hosts (the inventory's group_vars/all.yml)"
    ]


def test_a_variable_whose_template_fails_is_named_with_the_reason(inventory):
    inventory["cluster"]["kpy_api_endpoint"] = Unresolved("'dict object' has no attribute 'control_plane'")
    assert problems_of(inventory) == [
        "kpy_api_endpoint could not be evaluated: 'dict object' has no attribute 'control_plane'"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.244.0.1/16", "kpy_pod_cidr: '10.244.0.1/16' is not a valid CIDR: 10.244.0.1/16 has host bits set"),
        ("10.244.0.0", "kpy_pod_cidr: '10.244.0.0' has no prefix length"),
        ("10.244.0.0/40", "kpy_pod_cidr: '10.244.0.0/40' is not a valid CIDR"),
        ("pods", "kpy_pod_cidr: 'pods' has no prefix length"),
        (16, "kpy_pod_cidr: 16 is not a CIDR"),
    ],
    ids=["host-bits", "no-prefix", "prefix-too-long", "text", "number"],
)
def test_an_invalid_cidr_is_named(inventory, value, expected):
    inventory["cluster"]["kpy_pod_cidr"] = value
    (problem,) = problems_of(inventory)
    assert problem.startswith(expected)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"kpy_service_cidr": "10.244.128.0/20"},
            "kpy_pod_cidr 10.244.0.0/16 overlaps kpy_service_cidr 10.244.128.0/20",
        ),
        ({"kpy_node_cidr": "10.96.0.0/12"}, "kpy_service_cidr 10.96.0.0/16 overlaps kpy_node_cidr 10.96.0.0/12"),
        ({"kpy_pod_cidr": "10.0.0.0/8"}, "kpy_pod_cidr 10.0.0.0/8 overlaps kpy_node_cidr 10.213.0.0/24"),
    ],
    ids=["pod-service", "service-node", "pod-node"],
)
def test_overlapping_networks_are_named(inventory, changes, expected):
    inventory["cluster"].update(changes)
    assert [problem for problem in problems_of(inventory) if problem.startswith(expected)]


def test_networks_of_different_families_do_not_overlap(inventory):
    inventory["cluster"]["kpy_pod_cidr"] = "fd00:10:244::/56"
    assert problems_of(inventory) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "host w2 has no ansible_host: set it to the host's IP address"),
        ("", "host w2 has no ansible_host: set it to the host's IP address"),
        ("w2.example.org", "host w2: ansible_host 'w2.example.org' is not an IP address"),
        ("10.213.1.22", "host w2: ansible_host 10.213.1.22 is outside kpy_node_cidr 10.213.0.0/24"),
        (Unresolved("'w2_ip' is undefined"), "host w2: ansible_host could not be evaluated: 'w2_ip' is undefined"),
    ],
    ids=["absent", "empty", "name", "outside-node-network", "template-fails"],
)
def test_a_bad_ansible_host_is_named(inventory, value, expected):
    if value is None:
        del inventory["hosts"]["w2"]["ansible_host"]
    else:
        inventory["hosts"]["w2"]["ansible_host"] = value
    assert problems_of(inventory) == [expected]


def test_duplicate_addresses_name_every_host_sharing_them(inventory):
    inventory["hosts"]["w1"]["ansible_host"] = "10.213.0.11"
    inventory["hosts"]["w2"]["ansible_host"] = "10.213.0.11"
    assert problems_of(inventory) == [
        "hosts cp1, w1, w2 share the address 10.213.0.11 (ansible_host): each host needs its own"
    ]


def test_a_cluster_variable_defined_differently_on_some_hosts_is_named(inventory):
    inventory["definitions"] = {host: {"kpy_pod_cidr": "10.244.0.0/16"} for host in inventory["groups"]["all"]}
    inventory["definitions"]["w1"]["kpy_pod_cidr"] = "10.245.0.0/16"
    del inventory["definitions"]["w2"]["kpy_pod_cidr"]
    assert problems_of(inventory) == [
        "kpy_pod_cidr differs between hosts ('10.244.0.0/16' on cp1, cp2, cp3; '10.245.0.0/16' on w1; unset on w2): "
        "it is cluster-wide, define it once in group_vars/all.yml"
    ]


def test_bad_extra_ports_are_reported_once_with_their_hosts(inventory):
    for host in ("w1", "w2"):
        inventory["hosts"][host]["firewall_extra_ports"] = [{"port": 10255}, {"port": 9100, "protocol": "tcp"}]
    assert problems_of(inventory) == [
        "firewall_extra_ports[0].port: 10255 is the kubelet's read-only port, which kpy never opens (hosts: w1, w2)",
        "firewall_extra_ports[1]: unknown key 'protocol' (known: port, proto, comment, sources) (hosts: w1, w2)",
    ]


def test_a_problem_on_every_host_says_so(inventory):
    for host in inventory["hosts"].values():
        host["firewall_extra_ports"] = [{"port": "8000-9000"}]
    assert problems_of(inventory) == [
        "firewall_extra_ports[0].port: 8000-9000 includes 8080, the API server's insecure port, which kpy never opens "
        "(all hosts)"
    ]


def test_every_problem_is_reported_at_once(inventory):
    inventory["groups"]["etcd"] = ["cp1", "cp2"]
    del inventory["cluster"]["kpy_cluster_domain"]
    inventory["cluster"]["kpy_service_cidr"] = "10.244.0.0/20"
    inventory["hosts"]["w1"]["ansible_host"] = "10.213.0.22"
    problems = problems_of(inventory)
    assert len(problems) == 4
    for expected in ("group etcd has 2", "kpy_cluster_domain is not set", "overlaps kpy_service_cidr", "hosts w1, w2"):
        assert any(expected in problem for problem in problems), expected
