"""kpy-proxy's KubeProxyConfiguration file, command line and conntrack settings."""
import argparse
from pathlib import Path

import pytest
import yaml

from kpy_components.component import daemon
from kpy_components.component.config import ConfigError
from kpy_components.proxy import cli, conntrack
from kpy_components.proxy.config import ProxyConfig, load, parse

UPSTREAM_FILE = """
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clientConnection: {kubeconfig: /etc/kpy/kube-proxy.kubeconfig, qps: 5, burst: 10}
clusterCIDR: 10.200.0.0/16
configSyncPeriod: 15m
conntrack: {maxPerCore: 65536, min: 1000, tcpEstablishedTimeout: 2h, tcpCloseWaitTimeout: 30m}
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
hostnameOverride: node-1
iptables: {masqueradeAll: false, syncPeriod: 30s}
ipvs: {scheduler: rr}
mode: nftables
nftables: {masqueradeAll: true, masqueradeBit: 15, syncPeriod: 10s, minSyncPeriod: 500ms}
nodePortAddresses: [10.213.0.0/24]
"""


def test_defaults_are_upstreams():
    config = load(None)
    assert config == ProxyConfig()
    assert (config.healthz_address, config.metrics_address) == (("0.0.0.0", 10256), ("127.0.0.1", 10249))
    assert (config.sync_period, config.min_sync_period, config.masquerade_bit) == (30.0, 1.0, 14)
    assert config.node_port_addresses == () and config.cluster_cidr == ""


def test_an_upstream_file_loads(tmp_path):
    path = tmp_path / "kube-proxy.yaml"
    path.write_text(UPSTREAM_FILE)
    config = load(str(path))
    assert config.kubeconfig == Path("/etc/kpy/kube-proxy.kubeconfig")
    assert (config.cluster_cidr, config.hostname_override, config.node_port_addresses) == (
        "10.200.0.0/16", "node-1", ("10.213.0.0/24",))
    assert (config.masquerade_all, config.masquerade_bit, config.sync_period, config.min_sync_period) == (
        True, 15, 10.0, 0.5)
    assert (config.conntrack_max_per_core, config.conntrack_min, config.conntrack_tcp_established_timeout,
            config.conntrack_tcp_close_wait_timeout) == (65536, 1000, 7200.0, 1800.0)


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "kube-proxy.yaml"
    path.write_text(UPSTREAM_FILE)
    args = argparse.Namespace(kubeconfig="/tmp/other.kubeconfig", hostname_override="node-9")
    config = load(str(path), args)
    assert (config.kubeconfig, config.hostname_override) == (Path("/tmp/other.kubeconfig"), "node-9")


def test_every_problem_is_reported_at_once_with_its_field():
    data = yaml.safe_load(UPSTREAM_FILE) | {
        "apiVersion": "v1", "kind": "Other", "mode": "iptables", "clusterCIDR": "10.200.0.0/16,fd00::/64",
        "healthzBindAddress": "10256", "metricsBindAddress": "localhost:10249", "nodePortAddresses": ["primary", "x"],
        "nftables": {"syncPeriod": "0s", "minSyncPeriod": "1s", "masqueradeBit": 40, "bogus": 1},
        "unknownTop": True}
    with pytest.raises(ConfigError) as caught:
        parse(data, "kube-proxy.yaml")
    problems = caught.value.problems
    for expected in ("apiVersion: must be kubeproxy.config.k8s.io/v1alpha1", "kind: must be KubeProxyConfiguration",
                     "mode: kpy-proxy implements nftables only", "clusterCIDR: 'fd00::/64': kpy-proxy programs IPv4",
                     "healthzBindAddress: must be IP:port", "metricsBindAddress: must be IP:port",
                     "nodePortAddresses: \"primary\" cannot be combined", "nodePortAddresses: 'x' is neither",
                     "nftables.syncPeriod: must be greater than zero", "nftables.minSyncPeriod: must not exceed",
                     "nftables.masqueradeBit: must be within 0..31", "nftables.bogus: unknown field",
                     "unknownTop: unknown field"):
        assert any(problem.startswith(expected) for problem in problems), (expected, problems)


def test_the_command_line_names_a_bad_file_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("mode: ipvs\nclusterCIDR: nope\n")
    assert cli.main(["--config", str(path)]) == daemon.EXIT_BAD_CONFIG
    err = capsys.readouterr().err
    assert f"kpy-proxy: {path}: mode: kpy-proxy implements nftables only, not 'ipvs'" in err
    assert f"kpy-proxy: {path}: clusterCIDR: 'nope' is not a CIDR" in err
    assert "Traceback" not in err
    assert cli.main(["--config", str(tmp_path / "missing.yaml")]) == daemon.EXIT_BAD_CONFIG
    assert "cannot read the file" in capsys.readouterr().err


def test_conntrack_values_follow_the_config():
    assert conntrack.wanted(ProxyConfig(), cpus=2) == {
        "nf_conntrack_max": 131072, "nf_conntrack_tcp_timeout_established": 86400,
        "nf_conntrack_tcp_timeout_close_wait": 3600}
    assert conntrack.wanted(ProxyConfig(conntrack_max_per_core=100000), cpus=4)["nf_conntrack_max"] == 400000
    assert conntrack.wanted(ProxyConfig(conntrack_max_per_core=0, conntrack_tcp_established_timeout=0,
                                        conntrack_tcp_close_wait_timeout=0), cpus=4) == {}


def test_conntrack_sysctls_are_written_raised_only_and_skipped_when_unwritable(tmp_path, caplog):
    (tmp_path / "nf_conntrack_max").write_text("262144\n")  # larger than wanted: kept
    (tmp_path / "nf_conntrack_tcp_timeout_established").write_text("432000\n")
    conntrack.apply(ProxyConfig(), tmp_path)  # close_wait is missing: skipped with a warning
    assert (tmp_path / "nf_conntrack_max").read_text() == "262144\n"
    assert (tmp_path / "nf_conntrack_tcp_timeout_established").read_text() == "86400\n"
    assert "Skipped sysctl name=net.netfilter.nf_conntrack_tcp_timeout_close_wait" in caplog.text
