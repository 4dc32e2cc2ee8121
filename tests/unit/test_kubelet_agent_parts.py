"""The kubelet's own parts that need no runtime: its config file, the Node's status arithmetic, the pod network's
plans and the CRI log reader."""
import argparse
import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from kpy_components.component.config import ConfigError
from kpy_components.kubelet import config as kubelet_config
from kpy_components.kubelet import logs, network, node, server
from kpy_components.kubelet.agent import ProxyVersion
from kpy_components.version import VERSION

GiB = 1024 ** 3


def flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    kubelet_config.add_flags(parser)
    return parser.parse_args(list(argv))


# --- config --------------------------------------------------------------------------------------------------------

def test_config_reads_the_kubelet_configuration_shape():
    config = kubelet_config.parse({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "clusterDNS": ["10.96.0.10"], "clusterDomain": "example.local", "maxPods": 50,
        "systemReserved": {"cpu": "500m", "memory": "1Gi"}, "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": "unix:///run/x.sock", "nodeStatusUpdateFrequency": "5s",
        "registerWithTaints": [{"key": "a", "effect": "NoSchedule"}],
    }, "kubelet.yaml", flags("--node-labels", "zone=a,tier=web", "--node-ip", "10.0.0.5",
                             "--cluster-cidr", "10.244.0.0/16"))
    assert config.cluster_dns == ("10.96.0.10",) and config.cluster_domain == "example.local"
    assert config.max_pods == 50 and config.cgroup_driver == "cgroupfs"
    assert config.runtime_endpoint == "/run/x.sock" and config.status_update_frequency == 5.0
    assert config.node_labels == {"zone": "a", "tier": "web"} and config.node_ip == "10.0.0.5"
    assert str(config.system_reserved["memory"]) == "1Gi"
    assert config.register_with_taints == ({"key": "a", "effect": "NoSchedule"},)


def test_config_reports_every_problem_with_its_field():
    with pytest.raises(ConfigError) as caught:
        kubelet_config.parse({"kind": "KubeletConfiguration", "readOnlyPort": 10255, "maxPods": 0,
                              "cgroupDriver": "docker", "systemReserved": {"gpu": "1"},
                              "evictionHard": {"memory.available": "lots"}, "clusterDNS": ["nope"],
                              "containerRuntimeEndpoint": "tcp://1.2.3.4:1", "bogus": 1},
                             "kubelet.yaml", flags("--node-labels", "novalue", "--cluster-cidr", "x"))
    problems = "\n".join(caught.value.problems)
    for expected in ("readOnlyPort", "maxPods", "cgroupDriver", "systemReserved.gpu", "evictionHard.memory.available",
                     "clusterDNS", "containerRuntimeEndpoint", "bogus: unknown field", "--node-labels",
                     "--cluster-cidr"):
        assert expected in problems, expected


# --- node status ---------------------------------------------------------------------------------------------------

FACTS = node.HostFacts(cpu=2, memory_bytes=8 * GiB, memory_available_bytes=6 * GiB, disk_bytes=100 * GiB,
                       disk_available_bytes=50 * GiB, pids_max=32768, pids_used=200, kernel="6.1", os_image="Debian",
                       machine_id="m", boot_id="b", architecture="amd64")


def test_allocatable_is_capacity_less_reservations_and_eviction_thresholds():
    config = kubelet_config.parse({"systemReserved": {"cpu": "100m", "memory": "256Mi"},
                                   "kubeReserved": {"memory": "256Mi"},
                                   "evictionHard": {"memory.available": "512Mi", "nodefs.available": "10%"}},
                                  "x", flags())
    assert node.capacity(FACTS, config) == {"cpu": "2", "memory": f"{8 * 1024 * 1024}Ki",
                                            "ephemeral-storage": f"{100 * 1024 * 1024}Ki", "pods": "110"}
    allocatable = node.allocatable(FACTS, config)
    assert allocatable["cpu"] == "1900m"
    assert allocatable["memory"] == f"{(8 * GiB - GiB) // 1024}Ki"
    assert allocatable["ephemeral-storage"] == str(90 * GiB)


def test_conditions_keep_transition_times_and_explain_not_ready():
    config = kubelet_config.parse({}, "x", flags())
    down = node.Readiness(runtime_ready=True, network_ready=False, message="no pod CIDR")
    first = node.conditions(FACTS, down, config, [], "2026-01-01T00:00:00Z")
    ready = {c["type"]: c for c in first}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "KubeletNotReady"
    assert "container runtime network not ready" in ready["message"] and "no pod CIDR" in ready["message"]
    same = node.conditions(FACTS, down, config, first, "2026-01-01T00:00:10Z")
    assert {c["type"]: c for c in same}["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    up = node.conditions(FACTS, node.Readiness(True, True), config, same, "2026-01-01T00:00:20Z")
    ready = {c["type"]: c for c in up}["Ready"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("True", "KubeletReady",
                                                                               "2026-01-01T00:00:20Z")
    low = node.HostFacts(**{**FACTS.__dict__, "memory_available_bytes": 10 * 1024 * 1024})
    pressure = {c["type"]: c for c in node.conditions(low, node.Readiness(True, True), config, up, "t")}
    assert pressure["MemoryPressure"]["status"] == "True"
    assert pressure["DiskPressure"]["status"] == "False"


def test_node_info_reports_this_kubelets_version_and_the_local_kpy_proxys():
    config = kubelet_config.parse({}, "x", flags())
    status = node.node_status(FACTS, node.Readiness(True, True), config, name="n1", address="10.0.0.1",
                              runtime_version="containerd://1.6", previous={}, now="t", proxy_version="v1.30.0")
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == f"v{VERSION}" and info["kubeProxyVersion"] == "v1.30.0"
    assert info["containerRuntimeVersion"] == "containerd://1.6"


@pytest.mark.anyio
async def test_proxy_version_is_read_each_round_over_one_kept_alive_connection():
    served, peers = {"gitVersion": "v1.30.0"}, []

    async def version(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response(served)

    app = web.Application()
    app.router.add_get("/version", version)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader = ProxyVersion(f"http://127.0.0.1:{port}/version")
    try:
        assert await reader() == "v1.30.0"
        served["gitVersion"] = "v1.31.0"  # an upgraded kpy-proxy shows at the next round
        assert await reader() == "v1.31.0"
        assert len(peers) == 2 and peers[0] == peers[1]  # a client per round would dial a new connection
    finally:
        await reader.aclose()
        await runner.cleanup()
    with pytest.raises(RuntimeError):  # closed for good with the kubelet
        await reader()


@pytest.mark.anyio
async def test_proxy_version_is_empty_while_kpy_proxy_does_not_answer():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    reader = ProxyVersion(f"http://127.0.0.1:{port}/version")
    try:
        assert await reader() == ""
    finally:
        await reader.aclose()


# --- pod network ---------------------------------------------------------------------------------------------------

def _node(name, cidr, address):
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "Hostname", "address": name}] +
                       ([{"type": "InternalIP", "address": address}] if address else [])}}


def test_routes_go_to_every_other_node_with_a_cidr_and_an_address():
    nodes = [_node("a", "10.244.0.0/24", "10.0.0.1"), _node("b", "10.244.1.0/24", "10.0.0.2"),
             _node("c", None, "10.0.0.3"), _node("d", "10.244.3.0/24", None)]
    assert network.wanted_routes(nodes, "a") == {"10.244.1.0/24": "10.0.0.2"}


def test_cni_config_is_written_once_and_atomically(tmp_path):
    assert network.write_cni_config(tmp_path, "10.244.1.0/24") is True
    assert network.write_cni_config(tmp_path, "10.244.1.0/24") is False
    written = json.loads((tmp_path / network.CONF_FILE).read_text())
    bridge, portmap = written["plugins"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]] and bridge["ipMasq"] is False
    assert portmap["capabilities"] == {"portMappings": True}
    assert network.write_cni_config(tmp_path, "10.244.2.0/24") is True
    assert [p.name for p in tmp_path.iterdir()] == [network.CONF_FILE]


def test_masquerade_spares_the_pod_network():
    rules = network.masquerade_rules("10.244.0.0/16")
    assert "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade" in rules
    assert rules.startswith("table ip kpy-pod-network\ndelete table ip kpy-pod-network\n")


# --- kubelet API ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, subresource", [("/stats/summary", "stats"), ("/metrics", "metrics"),
                                               ("/metrics/cadvisor", "metrics"), ("/logs/syslog", "log"),
                                               ("/spec/", "spec"), ("/pods", "proxy"), ("/exec/a/b/c", "proxy"),
                                               ("/statsx", "proxy")])
def test_paths_map_to_node_subresources_as_upstream(path, subresource):
    assert server.subresource_of(path) == subresource


def test_a_certificate_names_the_caller_and_its_groups():
    peer = {"subject": ((("organizationName", "system:nodes"),), (("commonName", "system:node:w1"),))}
    caller = server.caller_from_certificate(peer)
    assert caller.name == "system:node:w1" and caller.groups == ("system:nodes", "system:authenticated")
    assert server.caller_from_certificate(None) is None


# --- logs ----------------------------------------------------------------------------------------------------------

def _write_log(folder: Path, attempt: int, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{attempt}.log"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _read(path, options, running=False):
    async def is_running():
        return running

    async def collect():
        return b"".join([chunk async for chunk in logs.stream(path, options, is_running)])
    return asyncio.run(collect()).decode()


def test_logs_join_partial_lines_and_honour_tail_timestamps_and_limit(tmp_path):
    folder = tmp_path / "ns_pod_uid" / "c"
    _write_log(folder, 0, ["2026-01-01T00:00:00.1Z stdout F old run"])
    path = _write_log(folder, 1, ["2026-01-01T00:00:01.000000001Z stdout F one",
                                  "2026-01-01T00:00:02Z stderr P tw", "2026-01-01T00:00:02Z stderr F o",
                                  "2026-01-01T00:00:03Z stdout F three", "not a cri line"])
    assert logs.log_file(tmp_path / "ns_pod_uid", "c", previous=False) == path
    assert _read(logs.log_file(tmp_path / "ns_pod_uid", "c", previous=True), logs.LogOptions()) == "old run\n"
    assert _read(path, logs.LogOptions()) == "one\ntwo\nthree\n"
    assert _read(path, logs.LogOptions(tail_lines=1)) == "three\n"
    assert _read(path, logs.LogOptions(tail_lines=0)) == ""
    assert _read(path, logs.LogOptions(timestamps=True, tail_lines=1)) == "2026-01-01T00:00:03Z three\n"
    assert _read(path, logs.LogOptions(limit_bytes=6)) == "one\ntw"
    assert logs.log_file(tmp_path / "ns_pod_uid", "other", previous=False) is None


def test_following_a_stopped_container_returns_what_is_left(tmp_path):
    path = _write_log(tmp_path / "c", 0, ["2026-01-01T00:00:00Z stdout F a"])
    with path.open("a") as handle:
        handle.write("2026-01-01T00:00:01Z stdout F b")  # no newline yet: still being written
    assert _read(path, logs.LogOptions(follow=True), running=False) == "a\nb\n"


def test_the_command_line_names_a_bad_file_without_a_traceback(tmp_path, capsys):
    from kpy_components.component import daemon
    from kpy_components.kubelet import cli
    path = tmp_path / "kubelet.yaml"
    path.write_text("kind: KubeletConfiguration\nreadOnlyPort: 10255\nmaxPods: lots\n")
    assert cli.main(["--config", str(path)]) == daemon.EXIT_BAD_CONFIG
    err = capsys.readouterr().err
    assert f"kpy-kubelet: {path}: readOnlyPort: kpy never serves" in err
    assert f"kpy-kubelet: {path}: maxPods: must be an integer" in err
    assert "Traceback" not in err
