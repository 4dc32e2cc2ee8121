"""Component configuration: Go durations, the leaderElection section, and kpy-controller-manager's file + flags."""
from __future__ import annotations

import pytest

from kpy_components.component import runner
from kpy_components.component.config import (ConfigError, Reader, load_yaml, parse_duration,
                                             parse_leader_election)
from kpy_components.controller_manager import cli, config
from kpy_components.controller_manager.controllers import CONTROLLERS, select


@pytest.mark.parametrize("text, seconds", [("15s", 15), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("0", 0),
                                           ("1.5s", 1.5), ("2m0s", 120)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "s", "15 s", "1d", "-5s", "15s10"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def _leader_election(section) -> tuple[object, list[str]]:
    problems: list[str] = []
    settings = parse_leader_election(Reader({"leaderElection": section}, "", problems, ("leaderElection",)),
                                     "kube-scheduler")
    return settings, problems


def test_leader_election_defaults_and_values():
    settings, problems = _leader_election(None)
    assert problems == []
    assert (settings.leader_elect, settings.lease_duration, settings.renew_deadline, settings.retry_period) == \
        (True, 15.0, 10.0, 2.0)
    assert (settings.resource_name, settings.resource_namespace) == ("kube-scheduler", "kube-system")
    settings, problems = _leader_election({"leaseDuration": "6s", "renewDeadline": "4s", "retryPeriod": "1s",
                                           "resourceName": "mine"})
    assert problems == [] and settings.lease_duration == 6 and settings.resource_name == "mine"


@pytest.mark.parametrize("section, expected", [
    ({"leaseDuration": "5s"}, "leaderElection.leaseDuration: must be greater than renewDeadline (10s)"),
    ({"renewDeadline": "2s"}, "leaderElection.renewDeadline: must be greater than retryPeriod x 1.2 (2.4s)"),
    ({"retryPeriod": "soon"}, "leaderElection.retryPeriod: 'soon' is not a duration (like 15s, 1m30s, 500ms)"),
    ({"leaderElect": "yes"}, "leaderElection.leaderElect: must be true or false, not 'yes'"),
    ({"resourceLock": "endpoints"}, "leaderElection.resourceLock: must be one of leases, not 'endpoints'"),
    ({"leaseDurationSeconds": 15}, "leaderElection.leaseDurationSeconds: unknown field"),
])
def test_leader_election_problems_name_the_field(section, expected):
    _settings, problems = _leader_election(section)
    assert any(p.startswith(expected) for p in problems), problems


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_yaml(bad)


def test_controller_selection():
    assert select(("*",))[0] == sorted(CONTROLLERS)
    assert "job" not in select(("*", "-job"))[0]
    assert select(("job", "cronjob")) == (["cronjob", "job"], [])
    enabled, problems = select(("*", "-bogus"))
    assert problems and "'-bogus' is not a controller" in problems[0]


def test_controller_manager_file_and_flags(tmp_path):
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: kubecontrollermanager.config.k8s.io/v1alpha1\n"
                    "kind: KubeControllerManagerConfiguration\n"
                    "clientConnection: {kubeconfig: /etc/kpy/controller-manager.kubeconfig}\n"
                    "controllers: ['*', '-cronjob']\n"
                    "nodeIPAM: {allocateNodeCIDRs: true, clusterCIDR: 10.200.0.0/16}\n"
                    "nodeLifecycle: {nodeMonitorGracePeriod: 20s}\n")
    args = runner.parser(cli.COMPONENT).parse_args(["--config", str(path), "--cluster-cidr", "10.100.0.0/16",
                                                    "--node-cidr-mask-size", "26"])
    loaded = config.load(str(path), args)
    assert str(loaded.kubeconfig) == "/etc/kpy/controller-manager.kubeconfig"
    assert "cronjob" not in loaded.enabled and "job" in loaded.enabled
    assert (loaded.node_ipam.cluster_cidr, loaded.node_ipam.node_cidr_mask_size) == ("10.100.0.0/16", 26)
    assert loaded.node_lifecycle.node_monitor_grace_period == 20


def test_controller_manager_problems_all_at_once():
    with pytest.raises(ConfigError) as raised:
        config.parse({"kind": "Deployment", "nodeIPAM": {"clusterCIDR": "10.200.0.1/16"},
                      "concurrentSyncs": {"deployment": 0, "nope": 1}, "podGC": {"terminatedPodGCThreshold": -1}},
                     "cm.yaml")
    problems = raised.value.problems
    assert "kind: must be one of KubeControllerManagerConfiguration, not 'Deployment'" in problems
    assert any(p.startswith("nodeIPAM.clusterCIDR: must be a network in CIDR form") for p in problems)
    assert "concurrentSyncs.deployment: must be a positive integer, not 0" in problems
    assert "concurrentSyncs.nope: is not a controller" in problems
    assert "podGC.terminatedPodGCThreshold: must be within 0.., not -1" in problems


def test_bad_config_file_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "cm.yaml"
    path.write_text("leaderElection: {leaseDuration: 3s}\n")
    assert cli.main(["--config", str(path)]) == runner.EXIT_BAD_CONFIG
    err = capsys.readouterr().err
    assert f"kpy-controller-manager: {path}: leaderElection.leaseDuration: must be greater than renewDeadline" in err
    assert "Traceback" not in err


def test_bad_kubeconfig_exits_2(tmp_path, capsys):
    assert cli.main(["--kubeconfig", str(tmp_path / "nope")]) == runner.EXIT_BAD_CONFIG
    assert "cannot read the kubeconfig" in capsys.readouterr().err


def test_unreadable_service_account_files_exit_2(tmp_path, capsys):
    path = tmp_path / "cm.yaml"
    path.write_text(f"serviceAccount: {{privateKeyFile: {tmp_path}/nope.key, rootCAFile: {tmp_path}/nope.crt}}\n")
    assert cli.main(["--config", str(path)]) == runner.EXIT_BAD_CONFIG
    err = capsys.readouterr().err
    assert f"serviceAccount.privateKeyFile: cannot read {tmp_path}/nope.key: No such file or directory" in err
    assert f"serviceAccount.rootCAFile: cannot read {tmp_path}/nope.crt" in err and "Traceback" not in err
