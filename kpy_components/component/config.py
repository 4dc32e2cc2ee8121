"""Reading component configuration files: every problem at once, each as `<field.path>: <what is wrong>`.

`Reader` walks one mapping field by field and collects problems; `ConfigError` carries them all, so nothing
half-configured runs. Kubernetes-shaped files (KubeSchedulerConfiguration, ...) use camelCase keys and Go
durations ("15s", "1m30s"); `parse_leader_election` reads their shared `leaderElection` section.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kpy_components.client.leaderelection import JITTER_FACTOR


class ConfigError(Exception):
    def __init__(self, problems: list[str], source: str):
        self.problems, self.source = problems, source
        super().__init__(f"{source}: " + "; ".join(problems))


def load_yaml(path: str | Path) -> Any:
    """The parsed document, or ConfigError naming the file when it cannot be read or is not YAML."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError([f"cannot read the file: {error.strerror}"], str(path)) from error
    except yaml.YAMLError as error:
        raise ConfigError([f"is not valid YAML: {error}"], str(path)) from error


def unreadable(files: list[tuple[str, Path | str | None]]) -> list[str]:
    """`<field>: cannot read <path>: <reason>` for each (field, path) whose file cannot be read (None: not set)."""
    problems = []
    for name, path in files:
        if path is None:
            continue
        try:
            with Path(path).open("rb"):
                pass
        except OSError as error:
            problems.append(f"{name}: cannot read {path}: {error.strerror}")
    return problems


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str) -> float:
    """Seconds in a Go duration string ("15s", "1m30s", "500ms", "0"); ValueError otherwise."""
    text = value.strip()
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"{value!r} is not a duration (like 15s, 1m30s, 500ms)")
    return total


def boolean_flag(value: str) -> bool:
    """argparse type of a true/false flag value (--leader-elect=false)."""
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, not {value!r}")


def duration_flag(value: str) -> float:
    """argparse type of a Go duration flag value (--node-monitor-grace-period=40s), in seconds."""
    try:
        return parse_duration(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class Reader:
    """Reads one mapping field by field, collecting problems prefixed with the mapping's path ("tls.")."""

    def __init__(self, data: Any, prefix: str, problems: list[str], known: tuple[str, ...]):
        self.prefix, self.problems = prefix, problems
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(f"{prefix.rstrip('.') or 'config'}: must be a mapping, not {data!r}")
            data = {}
        self.data = data
        for name in sorted(set(data) - set(known), key=str):
            self.problem(str(name), f"unknown field (known: {', '.join(known)})")

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{self.prefix}{name}: {message}")

    def child(self, name: str, known: tuple[str, ...]) -> Reader:
        return Reader(self.data.get(name), f"{self.prefix}{name}.", self.problems, known)

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str | None:
        value = self.data.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(name, f"must be a non-empty string, not {value!r}")
            return default
        if choices and value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def path(self, name: str, required: bool = False) -> Path | None:
        value = self.string(name)
        if value is None:
            if required:
                self.problem(name, "is required")
            return None
        return Path(value)

    def paths(self, name: str) -> tuple[Path, ...]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(name, f"must be a list of file paths, not {value!r}")
            return ()
        return tuple(Path(v) for v in value)

    def strings(self, name: str, default: tuple[str, ...], choices: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(name, f"must be a list of strings, not {value!r}")
            return default
        for item in value:
            if choices and item not in choices:
                self.problem(name, f"{item!r} is not one of {', '.join(choices)}")
        return tuple(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            self.problem(name, f"must be true or false, not {value!r}")
            return default
        return value

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, f"must be an integer, not {value!r}")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"{'' if minimum is None else minimum}..{'' if maximum is None else maximum}"
            self.problem(name, f"must be within {bounds}, not {value}")
            return default
        return value

    def port(self, name: str, default: int) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.problem(name, f"must be a port number (1-65535), not {value!r}")
            return default
        return value

    def duration(self, name: str, default: float) -> float:
        """Seconds, from a Go duration string ("40s")."""
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(name, f"must be a duration string like \"15s\", not {value!r}")
            return default
        try:
            return parse_duration(value)
        except ValueError as error:
            self.problem(name, str(error))
            return default

    def mapping(self, name: str) -> Any:
        return self.data.get(name, {})


@dataclass(frozen=True)
class LeaderElectionSettings:
    """A config file's `leaderElection` section (seconds); the defaults are kube-scheduler's and
    kube-controller-manager's."""
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    resource_name: str = ""
    resource_namespace: str = "kube-system"


LEADER_ELECTION_FIELDS = ("leaderElect", "leaseDuration", "renewDeadline", "retryPeriod", "resourceLock",
                          "resourceName", "resourceNamespace")


def parse_leader_election(parent: Reader, default_name: str) -> LeaderElectionSettings:
    """Reads `leaderElection` under `parent`; timing rules (duration > deadline > retry) are checked here so a bad
    file is refused at start with the fields named."""
    reader = parent.child("leaderElection", LEADER_ELECTION_FIELDS)
    defaults = LeaderElectionSettings()
    settings = LeaderElectionSettings(
        leader_elect=reader.boolean("leaderElect", True),
        lease_duration=reader.duration("leaseDuration", defaults.lease_duration),
        renew_deadline=reader.duration("renewDeadline", defaults.renew_deadline),
        retry_period=reader.duration("retryPeriod", defaults.retry_period),
        resource_name=reader.string("resourceName", default_name) or default_name,
        resource_namespace=reader.string("resourceNamespace", "kube-system") or "kube-system")
    reader.string("resourceLock", "leases", ("leases",))
    if settings.leader_elect:
        for name in ("leaseDuration", "renewDeadline", "retryPeriod"):
            if reader.data.get(name) is not None and reader.duration(name, 1.0) <= 0:
                reader.problem(name, "must be greater than zero")
        if settings.lease_duration <= settings.renew_deadline:
            reader.problem("leaseDuration", f"must be greater than renewDeadline ({settings.renew_deadline:g}s)")
        if settings.renew_deadline <= JITTER_FACTOR * settings.retry_period:
            reader.problem("renewDeadline", f"must be greater than retryPeriod x {JITTER_FACTOR} "
                           f"({JITTER_FACTOR * settings.retry_period:g}s)")
    return settings


def parse_client_connection(parent: Reader) -> Path | None:
    """`clientConnection.kubeconfig` (the only field kpy reads there; qps/burst are accepted and ignored)."""
    reader = parent.child("clientConnection", ("kubeconfig", "acceptContentTypes", "contentType", "qps", "burst"))
    return reader.path("kubeconfig")
