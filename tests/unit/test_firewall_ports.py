"""The firewall's port model: parsing, the checks on user entries, and the rules a host gets from its groups."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpy_components.inventory.firewall import (
    FORBIDDEN_PORTS,
    PortRange,
    Rule,
    entries_problems,
    host_rules,
    parse_port,
    port_problems,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(22, PortRange(22, 22)), ("9100", PortRange(9100, 9100)), ("30000-32767", PortRange(30000, 32767))],
)
def test_ports_and_ranges_parse(value, expected):
    assert parse_port(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 is outside 1-65535"),
        ("65536", "'65536' is outside 1-65535"),
        ("9102-9100", "'9102-9100' starts above its end"),
        ("http", "'http' is not a port"),
        ("1-2-3", "'1-2-3' is not a port"),
        (True, "True is not a port"),
        (22.0, "22.0 is not a port"),
    ],
)
def test_bad_ports_are_refused_with_the_value(value, expected):
    with pytest.raises(ValueError, match="^" + expected.replace("(", r"\(")):
        parse_port(value)


@given(st.integers(1, 65535), st.integers(0, 65534))
def test_a_range_is_refused_exactly_when_it_covers_a_forbidden_port(first, length):
    last = min(first + length, 65535)
    problems = port_problems(f"{first}-{last}", "firewall_extra_ports[0].port")
    covered = [port for port in FORBIDDEN_PORTS if first <= port <= last]
    assert len(problems) == len(covered)
    assert all(str(port) in problem for port, problem in zip(covered, problems))


def test_entries_name_the_index_and_field_at_fault():
    entries = [
        {"port": 9100},
        {"port": 10255, "proto": "sctp"},
        {"proto": "udp", "comment": 'say "hi"'},
        {"port": 9101, "sources": "10.0.0.0/8"},
        "9102",
    ]
    assert entries_problems(entries, "firewall_extra_ports") == [
        "firewall_extra_ports[1].port: 10255 is the kubelet's read-only port, which kpy never opens",
        "firewall_extra_ports[1].proto: 'sctp' is not one of tcp, udp",
        "firewall_extra_ports[2]: port is missing",
        "firewall_extra_ports[2].comment: must not contain quotes, backslashes or line breaks",
        "firewall_extra_ports[3].sources: expected a list of CIDRs, got '10.0.0.0/8'",
        "firewall_extra_ports[4]: expected a mapping like {port: 9100, proto: tcp, comment: node exporter}, got '9102'",
    ]


@pytest.mark.parametrize("entries", [None, []])
def test_no_entries_is_fine(entries):
    assert entries_problems(entries, "firewall_extra_ports") == []


def test_a_single_entry_instead_of_a_list_is_refused():
    assert entries_problems({"port": 9100}, "firewall_extra_ports") == [
        "firewall_extra_ports: expected a list of port entries, got {'port': 9100}"
    ]


GROUP_PORTS = {
    "control_plane": [{"port": 6443, "comment": "kube-apiserver"}, {"port": 10250, "comment": "kubelet API"}],
    "etcd": [{"port": "2379-2380", "comment": "etcd", "sources": ["10.213.0.0/24"]}],
    "workers": [{"port": 10250, "comment": "kubelet API"}, {"port": "30000-32767", "proto": "udp", "comment": "np"}],
}


def test_a_host_gets_ssh_then_its_groups_ports_then_extras_without_duplicates():
    extra = [{"port": 6443, "comment": "again"}, {"port": 9100, "sources": ["fd00::/64", "10.1.0.0/16", "10.1.0.0/16"]}]
    rules = host_rules(GROUP_PORTS, ["workers", "control_plane"], 2222, extra)
    assert rules == [
        Rule("tcp", "2222", "SSH"),
        Rule("tcp", "6443", "kube-apiserver"),
        Rule("tcp", "10250", "kubelet API"),
        Rule("udp", "30000-32767", "np"),
        Rule("tcp", "9100", "", "ip6", ("fd00::/64",)),
        Rule("tcp", "9100", "", "ip", ("10.1.0.0/16",)),
    ]
    assert rules[-1].comment == "port 9100/tcp"


def test_a_host_in_no_group_only_gets_ssh():
    assert host_rules(GROUP_PORTS, ["ungrouped"], 22) == [Rule("tcp", "22", "SSH")]
