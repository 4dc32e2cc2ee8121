"""The lab's own bridge on the machine: hosts attach to it through nspawn's veth pairs.

No NAT and no forwarding changes: the bridge only connects the machine (.1) with the lab's hosts.
"""
from pathlib import Path

from kpy_components.lab.run import run
from kpy_components.lab.spec import LabSpec


def bridge_exists(spec: LabSpec) -> bool:
    return Path(f"/sys/class/net/{spec.bridge}").exists()


def create_bridge(spec: LabSpec) -> None:
    if bridge_exists(spec):
        return
    run("ip", "link", "add", spec.bridge, "type", "bridge")
    run("ip", "address", "add", f"{spec.bridge_address}/{spec.network.prefixlen}", "dev", spec.bridge)
    run("ip", "link", "set", spec.bridge, "up")


def delete_bridge(spec: LabSpec) -> None:
    if bridge_exists(spec):
        run("ip", "link", "delete", spec.bridge, "type", "bridge")
