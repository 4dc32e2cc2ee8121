"""A real 3-member etcd cluster bootstrapped from the model, checked through the client and `kpy-etcd`."""
from __future__ import annotations

from kpy_components.etcd import EtcdClient


def test_three_members_form_one_cluster(etcd3):
    with etcd3.client() as client:
        members = client.members()
        statuses = [client.status(endpoint) for endpoint in etcd3.endpoints]
    assert sorted(m.name for m in members) == ["m0", "m1", "m2"]
    assert sorted(url for m in members for url in m.client_urls) == sorted(etcd3.endpoints)
    assert len({s.leader for s in statuses}) == 1 and sum(s.is_leader for s in statuses) == 1


def test_a_write_on_one_member_is_read_on_every_other(etcd3):
    revision = None
    with EtcdClient(etcd3.endpoints[0], etcd3.tls) as writer:
        revision = writer.put("/replicated", "yes").revision
    for endpoint in etcd3.endpoints[1:]:
        with EtcdClient(endpoint, etcd3.tls) as reader:
            kv = reader.get("/replicated")  # linearizable read: served through the leader's quorum
            assert (kv.value, kv.mod_revision) == (b"yes", revision)


def test_health_command_reports_every_member(etcd3, run_kpy_etcd):
    done = run_kpy_etcd("health", "--config", str(etcd3.config_files["m1"]))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["m0", "m1", "m2"]
    assert all(line.endswith(" healthy") for line in lines)


def test_members_command_lists_the_cluster(etcd3, run_kpy_etcd):
    done = run_kpy_etcd("members", "--config", str(etcd3.config_files["m0"]))
    assert done.returncode == 0, done.stderr
    assert sorted(line.split()[1] for line in done.stdout.splitlines()) == ["m0", "m1", "m2"]


def test_cluster_keeps_serving_with_one_member_down_and_health_says_which(etcd3, run_kpy_etcd):
    etcd3.stop(["m2"])
    try:
        with etcd3.client() as client:
            client.put("/quorum", "kept")  # 2 of 3 members are a majority
            assert client.get("/quorum").value == b"kept"
        done = run_kpy_etcd("health", "--config", str(etcd3.config_files["m0"]), "--wait", "1")
        assert done.returncode == 1
        states = dict(line.split(" ", 1) for line in done.stdout.splitlines())
        assert states["m0"].endswith(" healthy") and states["m1"].endswith(" healthy")
        assert "unhealthy" in states["m2"]
    finally:
        etcd3.start(["m2"])
    with EtcdClient(etcd3.endpoints[2], etcd3.tls) as rejoined:
        assert rejoined.get("/quorum").value == b"kept"
