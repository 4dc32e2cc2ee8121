"""Which registered nodes lack the role labels of their inventory groups."""


def kubelet_missing_role_labels(nodes, hostvars, hosts, role_labels):
    """[{name, labels}] for each node among `hosts` whose labels lack one of its groups' role labels (value "")."""
    by_name = {node["metadata"]["name"]: node["metadata"].get("labels") or {} for node in nodes}
    patches = []
    for host in hosts:
        groups = hostvars[host].get("group_names", [])
        wanted = {role_labels[group]: "" for group in groups if group in role_labels}
        have = by_name.get(host, {})
        missing = {key: value for key, value in wanted.items() if have.get(key) != value}
        if missing:
            patches.append({"name": host, "labels": missing})
    return patches


class FilterModule:
    def filters(self):
        return {"kubelet_missing_role_labels": kubelet_missing_role_labels}
