"""Indices on the shared pods informer that several controllers read (node lifecycle, pod GC)."""
from __future__ import annotations

from kpy_components.client import Informer, field_index

NODE_INDEX = "node"  # pods by spec.nodeName


def pods_by_node(pods: Informer) -> Informer:
    """The pods informer with the `node` index (added once, whichever controller asks first)."""
    try:
        pods.store.add_indexers({NODE_INDEX: field_index("spec.nodeName")})
    except ValueError:  # another controller added it already
        pass
    return pods
