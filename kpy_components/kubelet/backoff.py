"""Restart and image-pull back-off as upstream's kubelet applies them (client-go flowcontrol.Backoff, used by
kuberuntime's doBackOff and the image manager):

- A failing container restarts at once the first time, then waits 10 s, 20 s, 40 s … capped at 5 min. The wait is
  measured from when the container *finished*; `Next` records the restart time, and an entry whose last restart is
  more than twice the cap (10 min) older than the next finish is forgotten: a container that ran 10 minutes without
  trouble starts the sequence again at 10 s.
- A failed pull (ErrImagePull) makes the next attempts for the same pod and image wait (ImagePullBackOff) 10 s, 20 s
  … 5 min measured from the failure; a successful pull forgets the entry.

Upstream adds jitter to the waits; kpy does not (one node's pods gain nothing from it and tests stay exact).
All times are unix seconds from the injected clock, the same clock as the runtime's finishedAt.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .model import Waiting

INITIAL = 10.0  # seconds: upstream's backOffPeriod
CAP = 300.0  # seconds: upstream's MaxContainerBackOff


@dataclass
class _Entry:
    delay: float
    last_update: float


def go_duration(seconds: float) -> str:
    """Go's time.Duration String() for whole seconds, as messages print waits: `10s`, `1m20s`, `5m0s`."""
    total = int(seconds)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def pod_label(pod: dict) -> str:
    """upstream's format.Pod: `name_namespace(uid)`."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


class Backoff:
    """flowcontrol.Backoff: a doubling delay per key, forgotten after 2 × cap without an update."""

    def __init__(self, initial: float = INITIAL, cap: float = CAP, clock: Callable[[], float] = time.time):
        self.initial, self.cap, self.clock = initial, cap, clock
        self._entries: dict[tuple, _Entry] = {}

    def _live(self, key: tuple, event_time: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None or event_time - entry.last_update > 2 * self.cap:
            return None
        return entry

    def delay(self, key: tuple) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def next(self, key: tuple, event_time: float) -> None:
        """Record an attempt now: the first (or first after expiry) gets the initial delay, later ones double it."""
        entry = self._live(key, event_time)
        delay = self.initial if entry is None else min(entry.delay * 2, self.cap)
        self._entries[key] = _Entry(delay, self.clock())

    def remaining_since(self, key: tuple, event_time: float) -> float:
        """Seconds left of the wait that started at `event_time` (0 when none: IsInBackOffSince is false)."""
        entry = self._live(key, event_time)
        if entry is None:
            return 0.0
        return max(0.0, entry.delay - (self.clock() - event_time))

    def remaining_since_update(self, key: tuple) -> float:
        """Seconds left of the wait that started at the last `next` (IsInBackOffSinceUpdate)."""
        entry = self._entries.get(key)
        return 0.0 if entry is None else self.remaining_since(key, entry.last_update)

    def reset(self, key: tuple) -> None:
        self._entries.pop(key, None)

    def forget_where(self, predicate: Callable[[tuple], bool]) -> None:
        for key in [k for k in self._entries if predicate(k)]:
            del self._entries[key]

    def gc(self) -> None:
        """Drop entries not updated for 2 × cap (upstream's periodic GC), so removed pods leave nothing behind."""
        now = self.clock()
        self.forget_where(lambda key: now - self._entries[key].last_update > 2 * self.cap)


class BackOff:
    """The kubelet's two back-offs. Contract for the agent (one instance per kubelet):

    - Before restarting an exited container call `crash_wait(pod, name, finished_at)`: None means restart now (the
      restart is recorded); a Waiting (CrashLoopBackOff, upstream's message) means not yet — set it as the
      container's waiting state, emit `crash_event(pod, name)` and re-queue the pod after `crash_remaining(...)`.
    - Before pulling call `pull_wait(pod, image)`: a Waiting (ImagePullBackOff, `Back-off pulling image "x"`)
      means do not pull yet (re-queue after `pull_remaining`); on a failed pull call `pull_failed`, on success
      `pull_succeeded`.
    - `forget(uid)` when the pod is gone; `gc()` now and then.
    """

    def __init__(self, initial: float = INITIAL, cap: float = CAP, clock: Callable[[], float] = time.time):
        self.crashes = Backoff(initial, cap, clock)
        self.pulls = Backoff(initial, cap, clock)

    # --- CrashLoopBackOff ------------------------------------------------------------------------------------
    def crash_wait(self, pod: dict, name: str, finished_at: float) -> Waiting | None:
        key = (pod["metadata"]["uid"], name)
        if self.crashes.remaining_since(key, finished_at) > 0:
            return Waiting("CrashLoopBackOff", f"back-off {go_duration(self.crashes.delay(key))} restarting failed "
                                               f"container={name} pod={pod_label(pod)}")
        self.crashes.next(key, finished_at)
        return None

    def crash_remaining(self, uid: str, name: str, finished_at: float) -> float:
        return self.crashes.remaining_since((uid, name), finished_at)

    @staticmethod
    def crash_event(pod: dict, name: str) -> str:
        """The BackOff event's message (Warning)."""
        return f"Back-off restarting failed container {name} in pod {pod_label(pod)}"

    # --- ImagePullBackOff ------------------------------------------------------------------------------------
    def pull_wait(self, pod: dict, image: str) -> Waiting | None:
        """Keyed by pod UID and image, as upstream (`<uid>_<image>`): one pod's failures never delay another's."""
        if self.pulls.remaining_since_update((pod["metadata"]["uid"], image)) > 0:
            return Waiting("ImagePullBackOff", f'Back-off pulling image "{image}"')
        return None

    def pull_remaining(self, uid: str, image: str) -> float:
        return self.pulls.remaining_since_update((uid, image))

    def pull_failed(self, uid: str, image: str) -> None:
        self.pulls.next((uid, image), self.pulls.clock())

    def pull_succeeded(self, uid: str, image: str) -> None:
        self.pulls.reset((uid, image))

    def forget(self, uid: str) -> None:
        self.crashes.forget_where(lambda key: key[0] == uid)
        self.pulls.forget_where(lambda key: key[0] == uid)

    def gc(self) -> None:
        self.crashes.gc()
        self.pulls.gc()
