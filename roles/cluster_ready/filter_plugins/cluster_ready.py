"""Which hosts are not (yet) Ready nodes."""


def cluster_ready_missing(nodes, hosts):
    """The hosts among `hosts` that are not registered nodes with condition Ready=True, sorted."""
    ready = {node["metadata"]["name"] for node in nodes
             if any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (node.get("status") or {}).get("conditions") or ())}
    return sorted(set(hosts) - ready)


class FilterModule:
    def filters(self):
        return {"cluster_ready_missing": cluster_ready_missing}
