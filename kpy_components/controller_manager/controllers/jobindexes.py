"""Completion indexes of an Indexed Job: which index a pod runs, and sets of indexes written as upstream writes
status.completedIndexes and status.failedIndexes ("1,3-5,7")."""
from __future__ import annotations

from kpy_components.api import meta

from . import pods as podutil

INDEX_KEY = "batch.kubernetes.io/job-completion-index"  # annotation and label of an Indexed Job's pods


def completion_index(pod: dict) -> int | None:
    try:
        index = int(meta.annotations_of(pod).get(INDEX_KEY))
    except (TypeError, ValueError):
        return None
    return index if index >= 0 else None


def parse_indexes(text: str | None, completions: int | None = None) -> set[int]:
    """Intervals ("1,3-5") as a set, only indexes below `completions` when given; what cannot be read counts as
    nothing (the API server validated what users write)."""
    indexes: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            indexes.update(range(int(first), int(last or first) + 1))
    return indexes if completions is None else {index for index in indexes if index < completions}


def format_indexes(indexes: set[int]) -> str:
    """Sorted intervals as upstream writes completedIndexes: "1,3-5,7"."""
    parts, ordered = [], sorted(indexes)
    start = 0
    for position in range(1, len(ordered) + 1):
        if position == len(ordered) or ordered[position] != ordered[position - 1] + 1:
            first, last = ordered[start], ordered[position - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = position
    return ",".join(parts)


def completed_indexes(job: dict, pods: list[dict]) -> set[int]:
    """Indexes below `completions` that succeeded: those in status.completedIndexes and those of succeeded pods."""
    completions = (job.get("spec") or {}).get("completions") or 0
    done = {index for pod in pods if podutil.phase(pod) == "Succeeded"
            and (index := completion_index(pod)) is not None}
    return {index for index in done | parse_indexes((job.get("status") or {}).get("completedIndexes"))
            if index < completions}
