"""Exponential backoff with jitter, shared by request retries and watch/list restarts."""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays base, base*factor, ... capped at `cap`, each stretched by up to `jitter` (0.1 = +10%) so that many
    clients failing together do not retry together. `reset()` after a success."""
    base: float = 0.2
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.1
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * self.factor ** self.failures)
        self.failures += 1
        return delay * (1 + random.random() * self.jitter)

    def reset(self) -> None:
        self.failures = 0
