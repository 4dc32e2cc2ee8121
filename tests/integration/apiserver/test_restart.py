"""A kpy-apiserver restarted on its data directory is ready at once: it takes over the lease key its previous run
left (TTL 15 s) instead of failing /readyz until that key expires."""
from __future__ import annotations

import time

from conftest import free_port, running_apiserver

from kpy_components.apiserver.registry.bootstrap import LEASE_TTL


def test_a_restarted_server_is_ready_before_its_old_lease_expires(tmp_path):
    port = free_port()
    arguments = ("--dev", str(tmp_path), "--secure-port", str(port))
    with running_apiserver(tmp_path, port, *arguments):
        pass
    started = time.monotonic()
    with running_apiserver(tmp_path, port, *arguments) as server:
        took = time.monotonic() - started
        assert server.get("/readyz", user=None)[0] == 200
    assert took < LEASE_TTL / 2, f"the restarted server took {took:.1f}s to become ready"
