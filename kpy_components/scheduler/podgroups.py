"""The cache's pods grouped the way InterPodAffinity looks at them, so that a cycle costs per group, not per pod:

- `by_signature`: per (namespace, labels) (`PodInfo.signature`: the same for a Deployment's pods), how many such pods
  each node runs. A label selector gives one answer for a whole group.
- `by_terms`: per parsed inter-pod affinity terms object (`PodInfo.affinity`, one shared object per distinct value),
  that object and how many pods with it each node runs. Keyed by id(): an entry lives only while pods hold its
  object, so the id cannot be reused meanwhile.

The cache's NodeInfos keep their cache's PodGroups current as pods come and go (NodeInfo.add_pod/remove_pod); clones
do not (preemption's dry runs must not touch it). `PodGroups.of(nodes)` builds one from any NodeInfos.
"""
from __future__ import annotations


def _change(counts: dict, node, sign: int) -> None:
    total = counts.get(node, 0) + sign
    if total > 0:
        counts[node] = total
    else:
        counts.pop(node, None)


class PodGroups:
    __slots__ = ("by_signature", "by_terms")

    def __init__(self):
        self.by_signature: dict[tuple, dict] = {}  # signature -> {NodeInfo: pods}
        self.by_terms: dict[int, tuple] = {}  # id(affinity) -> (affinity, {NodeInfo: pods})

    @classmethod
    def of(cls, nodes) -> PodGroups:
        groups = cls()
        for node in nodes:
            for info in node.pods.values():
                groups.change(node, info, 1)
        return groups

    def change(self, node, info, sign: int) -> None:
        """Count `info` on `node` in (sign 1) or out (sign -1)."""
        counts = self.by_signature.get(info.signature)
        if counts is None:
            counts = self.by_signature[info.signature] = {}
        _change(counts, node, sign)
        if not counts:
            del self.by_signature[info.signature]
        if info.affinity is not None:
            entry = self.by_terms.get(id(info.affinity))
            if entry is None:
                entry = self.by_terms[id(info.affinity)] = (info.affinity, {})
            _change(entry[1], node, sign)
            if not entry[1]:
                del self.by_terms[id(info.affinity)]
