"""What a lab is: its name, its /24 on our bridge and its hosts with fixed addresses."""
import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from kpy_components.lab.run import LabError

LAB_SUPERNET = IPv4Network("10.213.0.0/16")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")


@dataclass(frozen=True)
class Host:
    name: str
    address: IPv4Address
    groups: tuple[str, ...]


@dataclass(frozen=True)
class LabSpec:
    """A lab of `control_plane` hosts that also run etcd and `workers` worker hosts.

    Addresses: the machine is .1 on the lab's bridge, control-plane hosts .11 up, workers .21 up; .254 is the
    hosts' gateway and is deliberately unassigned (Ansible needs a default route to fill `ansible_default_ipv4`,
    but lab hosts must not reach anything beyond the bridge).
    """

    name: str = "kpy"
    subnet_index: int = 0
    control_plane: int = 3
    workers: int = 2

    def __post_init__(self):
        problems = []
        if not _NAME.match(self.name):
            problems.append(f"lab name {self.name!r}: use 1-8 lowercase letters or digits, starting with a letter")
        if not 0 <= self.subnet_index <= 255:
            problems.append(f"subnet index {self.subnet_index}: must be 0-255 (10.213.N.0/24)")
        if not 0 <= self.control_plane <= 9 or not 0 <= self.workers <= 9:
            problems.append("a lab has 0-9 control-plane hosts and 0-9 workers")
        if self.control_plane + self.workers == 0:
            problems.append("a lab needs at least one host")
        if problems:
            raise LabError("; ".join(problems))

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(f"10.213.{self.subnet_index}.0/24")

    @property
    def bridge(self) -> str:
        return f"kpylab-{self.name}"  # at most 15 characters, the kernel's limit

    @property
    def bridge_address(self) -> IPv4Address:
        return self.network.network_address + 1

    @property
    def gateway(self) -> IPv4Address:
        return self.network.network_address + 254

    @property
    def hosts(self) -> list[Host]:
        base = self.network.network_address
        cps = [Host(f"{self.name}-cp{i}", base + 10 + i, ("etcd", "control_plane"))
               for i in range(1, self.control_plane + 1)]
        workers = [Host(f"{self.name}-w{i}", base + 20 + i, ("workers",)) for i in range(1, self.workers + 1)]
        return cps + workers
