"""kpy-proxy's sync loop and nft runner, against a recording stand-in for the nft binary (the kernel side runs in
tests/lab/test_proxy_kernel.py)."""
import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from kpy_components.proxy.config import ProxyConfig
from kpy_components.proxy.metrics import ProxyMetrics
from kpy_components.proxy.nft import Nft, NftError, parse_listing, run_local
from kpy_components.proxy.proxier import FULL_SYNC_PERIOD, Proxier, Snapshot, node_addresses, node_eligible
from kpy_components.proxy.script import Existing

SERVICE = {"metadata": {"namespace": "demo", "name": "web"},
           "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}
SLICE = {"metadata": {"namespace": "demo", "name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.244.1.10"], "nodeName": "n1"}]}
LISTING = {"chains": {"nftables": [{"metainfo": {"version": "1.0.6"}},
                                   {"chain": {"family": "ip", "table": "kube-proxy",
                                              "name": "service-OLDOLDOL-demo/old/tcp/"}},
                                   {"chain": {"family": "ip", "table": "kpy-pod-network", "name": "postrouting"}}]},
           "sets": {"nftables": [{"set": {"family": "ip", "table": "kube-proxy", "name": "affinity-OLD"}},
                                 {"set": {"family": "inet", "table": "kube-proxy", "name": "other-family"}}]},
           "maps": {"nftables": [{"map": {"family": "ip", "table": "kube-proxy", "name": "service-ips"}}]}}


class FakeNft:
    """Records the commands; answers `nft -t -j list KIND ip` from `listing` (None: no kube-proxy table) and
    fails scripts on demand."""

    def __init__(self, listing=None):
        self.listing, self.calls, self.fail, self.table = listing, [], False, True

    def __call__(self, argv, stdin):
        self.calls.append((argv, stdin))
        if argv[1:3] == ["list", "chain"]:
            if not self.table:
                raise NftError("Error: No such file or directory")
            return "table ip kube-proxy { ... }"
        if argv[1:4] == ["-t", "-j", "list"]:
            assert argv[5:] == ["ip"]
            return json.dumps((self.listing or {}).get(argv[4], {"nftables": [{"metainfo": {}}]}))
        if self.fail:
            raise NftError("Error: Could not process rule: No such file or directory")
        return ""

    @property
    def scripts(self):
        return [stdin for argv, stdin in self.calls if argv[1:] == ["-f", "-"]]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(fake, clock=None, **config):
    registry = CollectorRegistry()
    proxier = Proxier(ProxyConfig(cluster_cidr="10.244.0.0/16", **config), "n1", Nft(fake), ProxyMetrics(registry),
                      clock=clock or Clock(), wall_clock=lambda: 1.7e9)
    return proxier, registry


def test_parse_listing_names_chains_sets_and_maps_of_our_table():
    existing = parse_listing(*(json.dumps(LISTING[kind]) for kind in ("chains", "sets", "maps")))
    assert existing.chains == {"service-OLDOLDOL-demo/old/tcp/"}
    assert existing.containers == {"affinity-OLD": "set", "service-ips": "map"}
    assert parse_listing("").chains == frozenset()


def test_run_local_reports_what_the_command_printed():
    with pytest.raises(NftError, match="oops"):
        run_local(["sh", "-c", "echo oops >&2; exit 3"])
    with pytest.raises(NftError, match="/nonexistent/nft"):
        run_local(["/nonexistent/nft", "-f", "-"], "")
    assert run_local(["cat"], "table\n") == "table\n"


def test_a_missing_table_is_nothing_existing_and_listing_errors_raise():
    assert Nft(FakeNft()).existing() == Existing()

    def broken(argv, stdin):
        raise NftError("Error: Operation not permitted")
    with pytest.raises(NftError, match="not permitted"):
        Nft(broken).existing()


def test_the_first_sync_is_full_and_removes_leftovers_read_from_the_kernel():
    fake = FakeNft(LISTING)
    proxier, registry = make(fake)
    assert proxier.sync(Snapshot([SERVICE], [SLICE], None)) == "full"
    [text] = fake.scripts
    assert text.startswith("add table ip kube-proxy")
    assert "delete chain ip kube-proxy service-OLDOLDOL-demo/old/tcp/" in text
    assert "delete set ip kube-proxy affinity-OLD" in text
    assert "delete map ip kube-proxy service-ips" not in text  # still wanted
    assert registry.get_sample_value("kubeproxy_sync_full_proxy_rules_duration_seconds_count") == 1
    assert registry.get_sample_value("kubeproxy_sync_proxy_rules_nftables_total", {"kind": "chain"}) == \
        len(proxier.current.chains)


def test_unchanged_caches_write_nothing_and_a_change_is_a_partial_sync():
    fake = FakeNft()
    proxier, registry = make(fake)
    proxier.sync(Snapshot([SERVICE], [SLICE], None))
    assert proxier.sync(Snapshot([SERVICE], [SLICE], None)) == "none"
    assert len(fake.scripts) == 1
    moved = {**SLICE, "endpoints": [{"addresses": ["10.244.1.11"], "nodeName": "n1"}]}
    assert proxier.sync(Snapshot([SERVICE], [moved], None)) == "partial"
    assert "dnat to 10.244.1.11:8080" in fake.scripts[-1] and "add table" not in fake.scripts[-1]
    assert registry.get_sample_value("kubeproxy_sync_partial_proxy_rules_duration_seconds_count") == 2
    assert [argv[1:5] for argv, _ in fake.calls].count(["-t", "-j", "list", "chains"]) == 1  # once, at the start


def test_a_table_flushed_by_someone_else_is_rebuilt_at_the_next_sync():
    fake = FakeNft()
    proxier, _ = make(fake)
    proxier.sync(Snapshot([SERVICE], [SLICE], None))
    assert proxier.sync(Snapshot([SERVICE], [SLICE], None)) == "none"  # checked: still there
    fake.table = False  # `nft flush ruleset`
    assert proxier.sync(Snapshot([SERVICE], [SLICE], None)) == "full"
    assert fake.scripts[-1].startswith("add table") and "10.96.0.20 . tcp . 80" in fake.scripts[-1]


def test_a_refused_script_leaves_the_state_unknown_so_the_next_sync_is_full_and_lists_again():
    fake = FakeNft()
    proxier, registry = make(fake)
    proxier.sync(Snapshot([SERVICE], [SLICE], None))
    fake.fail = True
    with pytest.raises(NftError):
        proxier.sync(Snapshot([], [], None))
    assert proxier.current is None
    assert registry.get_sample_value("kubeproxy_sync_proxy_rules_nftables_sync_failures_total") == 1
    fake.fail = False
    assert proxier.sync(Snapshot([], [], None)) == "full"
    assert [argv[1:5] for argv, _ in fake.calls].count(["-t", "-j", "list", "chains"]) == 2


def test_a_full_sync_comes_back_every_full_sync_period():
    fake, clock = FakeNft(), Clock()
    proxier, _ = make(fake, clock)
    proxier.sync(Snapshot([SERVICE], [SLICE], None))
    clock.now += FULL_SYNC_PERIOD - 1
    assert proxier.sync(Snapshot([SERVICE], [SLICE], None)) == "none"
    clock.now += 1
    assert proxier.sync(Snapshot([SERVICE], [SLICE], None)) == "full"
    assert fake.scripts[-1].startswith("add table")


def test_primary_node_port_addresses_are_the_nodes_internal_ips():
    node = {"metadata": {"name": "n1"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "10.213.0.21"}, {"type": "Hostname", "address": "n1"},
        {"type": "InternalIP", "address": "fd00::21"}, {"type": "ExternalIP", "address": "192.0.2.1"}]}}
    assert node_addresses(node) == ("10.213.0.21",)
    proxier, _ = make(FakeNft(), node_port_addresses=("primary",))
    assert proxier.settings(node).nodeport_cidrs == ("10.213.0.21/32",)
    assert proxier.settings(None).nodeport_cidrs == ("127.0.0.1/32",)  # unknown yet: nowhere reachable
    assert make(FakeNft(), node_port_addresses=("10.0.0.0/8",))[0].settings(node).nodeport_cidrs == ("10.0.0.0/8",)


def test_node_eligibility():
    assert node_eligible(None) and node_eligible({"metadata": {}, "spec": {}})
    assert not node_eligible({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}})
    assert not node_eligible({"metadata": {}, "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler"}]}})


def test_health_needs_a_first_sync_and_no_change_waiting_past_twice_the_sync_period():
    clock = Clock()
    proxier, registry = make(FakeNft(), clock, sync_period=30.0)
    assert not proxier.healthy()
    proxier.last_synced_wall = 1.7e9
    assert proxier.healthy()
    proxier.mark_changed("service")
    proxier.mark_changed("endpoints")
    clock.now += 59
    assert proxier.healthy()
    clock.now += 1
    assert not proxier.healthy()
    assert registry.get_sample_value("kubeproxy_sync_proxy_rules_service_changes_total") == 1
    assert registry.get_sample_value("kubeproxy_sync_proxy_rules_endpoint_changes_total") == 1


@pytest.mark.anyio
async def test_the_loop_syncs_at_start_and_after_changes_then_stops_when_cancelled():
    fake = FakeNft()
    registry = CollectorRegistry()
    proxier = Proxier(ProxyConfig(min_sync_period=0.0, sync_period=30.0), "n1", Nft(fake), ProxyMetrics(registry))
    services = []
    task = asyncio.create_task(proxier.run(lambda: Snapshot(list(services), [SLICE], None)))

    async def until(predicate):
        async with asyncio.timeout(10):
            while not predicate():
                await asyncio.sleep(0.01)

    await until(lambda: len(fake.scripts) == 1)
    assert proxier.healthy() and registry.get_sample_value("kubeproxy_sync_proxy_rules_last_timestamp_seconds") > 0
    services.append(SERVICE)
    proxier.mark_changed("service")
    await until(lambda: len(fake.scripts) == 2)
    assert "10.96.0.20 . tcp . 80" in fake.scripts[1] and proxier.oldest_pending is None
    fake.fail = True  # a refused sync is retried as a full one, and keeps the change pending
    services.clear()
    proxier.mark_changed("service")
    await until(lambda: len(fake.scripts) >= 4)
    assert proxier.oldest_pending is not None
    fake.fail = False
    await until(lambda: proxier.oldest_pending is None)
    assert fake.scripts[-1].startswith("add table")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
