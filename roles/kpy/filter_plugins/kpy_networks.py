"""Filters over the cluster's networks, for roles that derive addresses from the inventory's CIDRs."""
import ipaddress

from ansible.errors import AnsibleFilterError


def kpy_nth_address(cidr, index):
    """The index-th address of a network: '10.96.0.0/16' | kpy_nth_address(10) -> '10.96.0.10'."""
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError as error:
        raise AnsibleFilterError(f"kpy_nth_address: {cidr!r} is not a CIDR: {error}") from None
    if not 0 <= int(index) < network.num_addresses:
        raise AnsibleFilterError(f"kpy_nth_address: {cidr} has no address number {index}")
    return str(network[int(index)])


class FilterModule:
    def filters(self):
        return {"kpy_nth_address": kpy_nth_address}
