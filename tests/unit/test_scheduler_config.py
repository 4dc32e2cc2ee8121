"""KubeSchedulerConfiguration parsing: kube-scheduler's defaults, profile plugin changes, and every problem of a bad
file reported at once with its field path (and by the kpy-scheduler command as exit 2, no traceback)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpy_components.component.config import ConfigError
from kpy_components.scheduler import config
from kpy_components.scheduler.plugins import build_profile


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        config.parse(data, "test.yaml")
    return raised.value.problems


def test_defaults_match_kube_scheduler():
    settings = config.load(None)
    assert (settings.percentage_of_nodes_to_score, settings.pod_initial_backoff_seconds,
            settings.pod_max_backoff_seconds) == (0, 1.0, 10.0)
    assert settings.leader_election.resource_name == "kube-scheduler"
    (profile,) = settings.profiles
    assert profile.scheduler_name == "default-scheduler"
    assert dict(profile.points["score"]) == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1,
                                             "PodTopologySpread": 2, "InterPodAffinity": 2,
                                             "NodeResourcesBalancedAllocation": 1}
    assert [name for name, _ in profile.points["filter"]] == [
        "NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit",
        "VolumeBinding", "PodTopologySpread", "InterPodAffinity"]


def test_profiles_change_plugins_weights_and_args():
    settings = config.parse({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 30, "podInitialBackoffSeconds": 2, "podMaxBackoffSeconds": 20,
        "profiles": [
            {"schedulerName": "default-scheduler"},
            {"schedulerName": "bin-packer", "percentageOfNodesToScore": 100,
             "plugins": {"score": {"disabled": [{"name": "NodeResourcesBalancedAllocation"}, {"name": "ImageLocality"}],
                                   "enabled": [{"name": "NodeAffinity", "weight": 7}]},
                         "multiPoint": {"disabled": [{"name": "PodTopologySpread"}]}},
             "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {
                 "type": "MostAllocated", "resources": [{"name": "cpu", "weight": 3}]}}}]}]})
    assert settings.percentage_of_nodes_to_score == 30 and settings.pod_max_backoff_seconds == 20.0
    packer = settings.profiles[1]
    assert packer.percentage_of_nodes_to_score == 100
    assert dict(packer.points["score"]) == {"TaintToleration": 3, "NodeAffinity": 7, "NodeResourcesFit": 1,
                                            "InterPodAffinity": 2}
    assert "PodTopologySpread" not in dict(packer.points["filter"])
    profile = build_profile(packer.scheduler_name, packer.points, packer.plugin_args)
    fit = next(plugin for plugin, _ in profile.scores if plugin.name == "NodeResourcesFit")
    assert fit.most_allocated and fit.resources == (("cpu", 3),)


def test_every_problem_is_reported_with_its_path():
    found = problems({
        "apiVersion": "kubescheduler.config.k8s.io/v1beta3", "percentageOfNodesToScore": 101,
        "podInitialBackoffSeconds": 5, "podMaxBackoffSeconds": 2, "surprise": True,
        "leaderElection": {"leaseDuration": "5s", "renewDeadline": "10s"},
        "profiles": [
            {"schedulerName": "a", "plugins": {"filter": {"enabled": [{"name": "NoSuchPlugin"}]},
                                               "score": {"enabled": [{"name": "NodeUnschedulable"},
                                                                     {"name": "NodeAffinity", "weight": 0}]}},
             "pluginConfig": [{"name": "NodeResourcesFit",
                               "args": {"scoringStrategy": {"type": "RequestedToCapacityRatio"}}}]},
            {"schedulerName": "a"}]})
    expected_paths = ["surprise:", "apiVersion:", "leaderElection.leaseDuration:", "percentageOfNodesToScore:",
                      "podMaxBackoffSeconds:", "profiles[0].plugins.filter.enabled[0].name:",
                      "profiles[0].plugins.score.enabled[0].name:", "profiles[0].plugins.score.enabled[1].weight:",
                      "profiles[0].pluginConfig[0].args.scoringStrategy.type:", "profiles[1].schedulerName:"]
    for path in expected_paths:
        assert any(problem.startswith(path) for problem in found), (path, found)
    assert len(found) == len(expected_paths)


def test_command_refuses_a_bad_file_naming_the_field(tmp_path: Path):
    bad = tmp_path / "scheduler.yaml"
    bad.write_text(yaml.safe_dump({"profiles": [{"plugins": {"score": {"enabled": [{"name": "Nope"}]}}}]}))
    done = subprocess.run([sys.executable, "-m", "kpy_components.scheduler.cli", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "profiles[0].plugins.score.enabled[0].name: unknown plugin 'Nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_plugin_point_that_needs_another_is_refused_without_it():
    found = problems({"profiles": [{"plugins": {"preFilter": {"disabled": [{"name": "PodTopologySpread"}]}}}]})
    assert found == ["profiles[0].plugins.preFilter: PodTopologySpread is enabled at filter but not at preFilter "
                     "(its filter works on what its preFilter computes)"]


def test_built_in_plugins_may_be_named_and_bad_entries_are_reported_once():
    config.parse({"profiles": [{"plugins": {
        "multiPoint": {"enabled": [{"name": "PrioritySort"}, {"name": "DefaultBinder"}]},
        "queueSort": {"enabled": [{"name": "PrioritySort"}]}, "bind": {"enabled": [{"name": "DefaultBinder"}]}}}]})
    assert problems({"profiles": [{"plugins": {"score": {"enabled": ["NodeAffinity"]},
                                               "queueSort": {"enabled": [{"name": "Custom"}]}}}]}) == [
        "profiles[0].plugins.queueSort.enabled: kpy-scheduler has no plugins for the queueSort extension point but "
        "its built-in PrioritySort",
        "profiles[0].plugins.score.enabled[0]: must be a mapping, not 'NodeAffinity'"]
