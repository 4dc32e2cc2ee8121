"""Kubernetes' wording for scheduling failures (pkg/scheduler/framework FitError.Error()):

    "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {key: value}. <post-filter msg>"

Each reason of each node's status is counted; the "<count> <reason>" strings are sorted as strings and joined with
", ". A PreFilter rejection replaces the per-node histogram with its own message.
"""
from __future__ import annotations

from collections import Counter

from .framework import Status

NO_NODE_AVAILABLE = "0/{} nodes are available"


def histogram(statuses, total_nodes: int) -> str:
    """"0/N nodes are available: <sorted '<count> <reason>' joined by ', '>." (without a post-filter part)."""
    counts: Counter[str] = Counter()
    for status in statuses:
        counts.update(status.reasons)
    message = NO_NODE_AVAILABLE.format(total_nodes) + ":"
    parts = sorted(f"{count} {reason}" for reason, count in counts.items())
    if parts:
        message += f" {', '.join(parts)}."
    return message


def fit_error(total_nodes: int, statuses: dict[str, Status], pre_filter: Status | None = None,
              post_filter_message: str = "") -> str:
    if pre_filter is not None and pre_filter.rejected:
        message = NO_NODE_AVAILABLE.format(total_nodes) + f": {pre_filter.message}."
    else:
        message = histogram(statuses.values(), total_nodes)
    if post_filter_message:
        message += f" {post_filter_message}"
    return message


def no_nodes_message() -> str:
    """What kube-scheduler says when the cluster has no nodes at all."""
    return NO_NODE_AVAILABLE.format(0) + "."
