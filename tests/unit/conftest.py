"""Shared fixtures of the unit tests."""
import copy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The lab's shape: three control-plane hosts that also run etcd, two workers.
_PKI_INVENTORY = {
    "cluster": {"name": "lab", "domain": "k8s.test", "service_cidr": "10.32.0.0/16", "api_endpoint": "api.k8s.test"},
    "hosts": {"cp1": "10.213.0.11", "cp2": "10.213.0.12", "cp3": "10.213.0.13", "w1": "10.213.0.21", "w2": "10.213.0.22"},
    "groups": {"etcd": ["cp1", "cp2", "cp3"], "control_plane": ["cp1", "cp2", "cp3"], "workers": ["w1", "w2"]},
}


@pytest.fixture
def pki_inventory() -> dict:
    """The PKI module's inventory arguments (cluster, hosts, groups); a fresh copy per test, free to edit."""
    return copy.deepcopy(_PKI_INVENTORY)


@pytest.fixture
def pki_profiles() -> Path:
    return REPO / "certs" / "profiles.yml"


@pytest.fixture(scope="session")
def pki_generated(tmp_path_factory) -> Path:
    """A PKI generated once from certs/profiles.yml for the lab-shaped inventory. Read-only: tests that change
    the directory make their own."""
    from kpy_components.pki import run

    dest = tmp_path_factory.mktemp("pki") / "pki"
    run(dest, REPO / "certs" / "profiles.yml", **copy.deepcopy(_PKI_INVENTORY))
    return dest


@pytest.fixture(scope="module")
async def module_event_loop():
    """Held by the gRPC test modules: all their tests run on one event loop, as kpy-kubelet does. grpc.aio completes
    a call through the loop that started it, and a server's completion that arrived after its test's loop had closed
    failed the next test once in CI (RuntimeError: Event loop is closed). A module-scoped async fixture keeps anyio's
    runner, and so its loop, for the whole module."""
    yield
