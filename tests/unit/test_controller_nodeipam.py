"""Node IPAM's CIDR set: subnets in order, never twice, service network excluded, exhaustion, round-robin reuse,
existing node CIDRs kept across restarts."""
import pytest

from kpy_components.controller_manager.controllers.nodeipam import CIDRSet, node_cidrs


def test_subnets_are_handed_out_in_order_and_never_twice():
    cidrs = CIDRSet("10.200.0.0/16", 24)
    assert [cidrs.allocate() for _ in range(3)] == ["10.200.0.0/24", "10.200.1.0/24", "10.200.2.0/24"]
    assert cidrs.count == 256


def test_cidrs_nodes_hold_are_skipped_after_a_restart():
    cidrs = CIDRSet("10.200.0.0/16", 24)
    assert cidrs.occupy("10.200.0.0/24") and cidrs.occupy("10.200.2.0/24")
    assert cidrs.allocate() == "10.200.1.0/24"
    assert cidrs.allocate() == "10.200.3.0/24"


@pytest.mark.parametrize("foreign", ["10.201.0.0/24", "10.200.0.0/25", "fd00::/64", "not-a-cidr"])
def test_cidrs_that_are_not_ours_are_not_occupied(foreign):
    assert not CIDRSet("10.200.0.0/16", 24).occupy(foreign)


def test_exhaustion_and_round_robin_reuse_of_freed_cidrs():
    cidrs = CIDRSet("10.200.0.0/22", 24)
    handed = [cidrs.allocate() for _ in range(4)]
    assert cidrs.allocate() is None
    cidrs.release(handed[1])
    assert cidrs.allocate() == handed[1]
    cidrs.release(handed[0])
    cidrs.release(handed[3])
    assert cidrs.allocate() == handed[3]  # round robin: after the last one handed out, not the lowest free


def test_the_service_network_inside_the_cluster_cidr_is_never_handed_out():
    cidrs = CIDRSet("10.0.0.0/16", 24, reserved=("10.0.1.128/25", "10.32.0.0/24"))
    assert [cidrs.allocate() for _ in range(2)] == ["10.0.0.0/24", "10.0.2.0/24"]


def test_ipv6_cluster_cidr():
    cidrs = CIDRSet("fd00:10::/56", 64)
    assert cidrs.allocate() == "fd00:10::/64"
    assert cidrs.allocate() == "fd00:10:0:1::/64"


def test_a_mask_larger_than_the_cluster_cidr_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        CIDRSet("10.200.0.0/16", 8)


def test_node_cidrs_prefers_pod_cidrs_and_falls_back_to_pod_cidr():
    assert node_cidrs({"spec": {"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24", "fd00::/64"]}}) == \
        ["10.0.0.0/24", "fd00::/64"]
    assert node_cidrs({"spec": {"podCIDR": "10.0.0.0/24"}}) == ["10.0.0.0/24"]
    assert node_cidrs({"spec": {}}) == []
