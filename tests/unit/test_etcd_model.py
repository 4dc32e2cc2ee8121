"""Validation of the etcd cluster model (the kpy-etcd config file)."""
from __future__ import annotations

import copy

import pytest

from kpy_components.etcd.model import ModelError, load_model, parse_model

TLS = {name: f"/etc/kpy/pki/etcd/{name}.pem" for name in (
    "ca_file", "server_cert_file", "server_key_file", "peer_cert_file", "peer_key_file",
    "client_cert_file", "client_key_file")}
VALID = {
    "cluster_token": "kpy-lab-etcd",
    "member": "cp2",
    "members": [{"name": "cp1", "ip": "10.213.0.11"}, {"name": "cp2", "ip": "10.213.0.12"},
                {"name": "cp3", "ip": "10.213.0.13"}],
    "data_dir": "/var/lib/etcd/lab",
    "tls": TLS,
}


def with_changes(**changes):
    data = copy.deepcopy(VALID)
    data.update(changes)
    return data


def problems_of(data) -> list[str]:
    with pytest.raises(ModelError) as raised:
        parse_model(data)
    return raised.value.problems


def test_valid_model_and_what_it_derives():
    model = parse_model(VALID)
    assert model.local.name == "cp2" and str(model.local.ip) == "10.213.0.12"
    assert model.local.client_url == "https://10.213.0.12:2379"
    assert model.initial_cluster == ("cp1=https://10.213.0.11:2380,cp2=https://10.213.0.12:2380,"
                                     "cp3=https://10.213.0.13:2380")
    assert model.client_urls == [f"https://10.213.0.1{i}:2379" for i in (1, 2, 3)]
    assert model.initial_cluster_state == "new" and model.metrics_port == 2381
    assert str(model.tls.client().cert_file) == TLS["client_cert_file"]


def test_cluster_ports_and_per_member_ports():
    members = [{"name": "a", "ip": "127.0.0.1", "client_port": 3000, "peer_port": 3001}]
    model = parse_model(with_changes(member="a", members=members, client_port=4000, peer_port=4001))
    assert model.local.client_url == "https://127.0.0.1:3000" and model.local.peer_url == "https://127.0.0.1:3001"
    model = parse_model(with_changes(member="a", members=[{"name": "a", "ip": "::1"}], peer_port=4001))
    assert model.local.client_url == "https://[::1]:2379" and model.initial_cluster == "a=https://[::1]:4001"


def test_metrics_can_be_turned_off():
    assert parse_model(with_changes(metrics_port=None)).metrics_port is None


@pytest.mark.parametrize("count", [2, 4])
def test_even_member_count_is_refused(count):
    members = [{"name": f"m{i}", "ip": f"10.0.0.{i + 1}"} for i in range(count)]
    [problem] = problems_of(with_changes(member="m0", members=members))
    assert problem.startswith(f"members: {count} members given; etcd needs an odd number")


@pytest.mark.parametrize("members, expected", [
    ([{"name": "a", "ip": "10.0.0.1"}, {"name": "a", "ip": "10.0.0.2"}, {"name": "c", "ip": "10.0.0.3"}],
     "members[1].name: 'a' is already members[0]"),
    ([{"name": "a", "ip": "10.0.0.1"}, {"name": "b", "ip": "10.0.0.1"}, {"name": "c", "ip": "10.0.0.3"}],
     "members[1]: client address https://10.0.0.1:2379 is already used by member 'a' (client)"),
    ([{"name": "a", "ip": "10.0.0.300"}], "members[0].ip: must be an IP address, not '10.0.0.300'"),
    ([{"name": "a,b", "ip": "10.0.0.1"}], "members[0].name: 'a,b' must be letters, digits"),
    ([{"name": "a", "ip": "10.0.0.1", "client_port": 70000}],
     "members[0].client_port: must be a port number (1-65535), not 70000"),
    ([{"name": "a", "ip": "10.0.0.1", "role": "x"}], "members[0].role: unknown field"),
    ([], "members: must be a non-empty list"),
    (["a"], "members[0]: must be a mapping with name and ip"),
])
def test_member_problems_name_the_field(members, expected):
    problems = problems_of(with_changes(member="a", members=members))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_same_ip_with_other_ports_is_fine():
    members = [{"name": f"m{i}", "ip": "127.0.0.1", "client_port": 3000 + 2 * i, "peer_port": 3001 + 2 * i}
               for i in range(3)]
    assert len(parse_model(with_changes(member="m0", members=members)).members) == 3


def test_missing_certificate_paths_are_listed_one_by_one():
    tls = {k: v for k, v in TLS.items() if k not in ("peer_key_file", "client_cert_file")}
    problems = problems_of(with_changes(tls=tls))
    assert problems == ["tls.peer_key_file: is required", "tls.client_cert_file: is required"]
    assert problems_of(with_changes(tls=None)) == [
        "tls: must be a mapping with ca_file, server_cert_file, server_key_file, peer_cert_file, peer_key_file, "
        "client_cert_file, client_key_file, not None"] + [f"tls.{name}: is required" for name in TLS]


def test_every_problem_is_reported_at_once():
    data = with_changes(member="cp9", data_dir="relative/dir", initial_cluster_state="maybe",
                        log_level="loud", clustr_token="typo")
    del data["cluster_token"]
    problems = problems_of(data)
    assert problems == [
        "clustr_token: unknown field (known: cluster_token, member, members, data_dir, initial_cluster_state, "
        "client_port, peer_port, metrics_port, tls, etcd_binary, etcd_config_file, log_level, extra_config)",
        "member: 'cp9' is not one of the members (cp1, cp2, cp3)",
        "cluster_token: is required",
        "data_dir: must be an absolute path, not 'relative/dir'",
        "initial_cluster_state: must be one of new, existing, not 'maybe'",
        "log_level: must be one of debug, info, warn, error, panic, fatal, not 'loud'",
    ]


def test_extra_config_cannot_override_managed_keys():
    problems = problems_of(with_changes(extra_config={"quota-backend-bytes": 1 << 30, "initial-cluster": "x=y"}))
    assert problems == ["extra_config.initial-cluster: is set by kpy-etcd from the model; change the model field "
                        "instead"]


def test_load_model_names_the_file(tmp_path):
    path = tmp_path / "kpy-etcd.yaml"
    with pytest.raises(ModelError, match=f"{path}: cannot read the file"):
        load_model(path)
    path.write_text("members: [unclosed\n")
    with pytest.raises(ModelError, match=f"{path}: not valid YAML"):
        load_model(path)
    path.write_text("- a list\n")
    with pytest.raises(ModelError, match="must be a mapping"):
        load_model(path)
