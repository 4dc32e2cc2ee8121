"""The upgrade's host groups, from the plan, and what a node reports once upgraded."""

# The phases of playbooks/upgrade.yml, in order, each with the plan's list of its hosts.
PHASES = ("etcd", "apiserver", "controller_manager", "scheduler", "node")


def upgrade_plan_hosts(hosts, hostvars):
    """Host -> its kpy_component_versions result (registered as upgrade_host_versions) and its inventory groups, as
    kpy_upgrade_plan takes them."""
    return {host: {**hostvars[host]["upgrade_host_versions"], "groups": list(hostvars[host]["group_names"])}
            for host in hosts}


def upgrade_group_members(plan):
    """[{group, host}] in the plan's order: kpy_upgrade_<phase> for each host of each phase (a play's hosts run in
    the order they were added to its group)."""
    return [{"group": f"kpy_upgrade_{phase}", "host": host} for phase in PHASES for host in plan[f"{phase}_hosts"]]


def upgrade_node_problem(node, version):
    """Why the Node is not yet upgraded and Ready ("" when it is): its kubelet and kpy-proxy must report
    v<version> and its Ready condition be True."""
    if not node:
        return "the node is not registered"
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    wanted = f"v{version}"
    for field in ("kubeletVersion", "kubeProxyVersion"):
        if info.get(field) != wanted:
            return f"nodeInfo.{field} is {info.get(field) or 'empty'!r}, not {wanted!r}"
    ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
    if not ready or ready[0].get("status") != "True":
        return "the node is not Ready" + (f": {ready[0].get('message')}" if ready else "")
    return ""


class FilterModule:
    def filters(self):
        return {"upgrade_plan_hosts": upgrade_plan_hosts, "upgrade_group_members": upgrade_group_members,
                "upgrade_node_problem": upgrade_node_problem}
