"""kpy-proxy's nft scripts: full syncs, partial syncs (diffs), and the order nft needs inside one transaction."""
import pytest

from kpy_components.proxy import script
from kpy_components.proxy.model import Endpoint, ServicePort
from kpy_components.proxy.rules import Settings, affinity_set, endpoint_base, hashed, render
from kpy_components.proxy.script import Existing

SETTINGS = Settings(node_name="n1", cluster_cidr="10.244.0.0/16")
A, B, C = (Endpoint(f"10.244.1.{i}", 8080) for i in (10, 11, 12))
T = "ip kube-proxy"


def port(*endpoints, name="web", ip="10.96.0.20", **fields) -> ServicePort:
    return ServicePort("demo", name, "http", "tcp", 80, (ip,), endpoints=endpoints, **fields)


def ep_chain(p, e):
    return hashed("endpoint", endpoint_base(p, e))


def index(lines: list[str], line: str) -> int:
    assert line in lines, f"{line!r} not in the script"
    return lines.index(line)


def test_a_full_sync_declares_flushes_and_fills_everything_in_order():
    p = port(A, B, affinity_seconds=60)
    ruleset = render([p], SETTINGS)
    lines = script.full(ruleset).splitlines()
    assert lines[0] == f'add table {T} {{ comment "rules for kube-proxy" ; }}'
    index(lines, f"add chain {T} nat-prerouting {{ type nat hook prerouting priority dstnat ; "
                        "policy accept ; }")
    for name in ruleset.chains:
        index(lines, f"add chain {T} {name}" if not name.startswith(("nat-", "filter-"))
              else next(line for line in lines if line.startswith(f"add chain {T} {name} ")))
        index(lines, f"flush chain {T} {name}")
    index(lines, f"flush map {T} service-ips")
    index(lines, f"flush set {T} cluster-ips")
    affinity = affinity_set(p, A)
    assert f"flush set {T} {affinity}" not in lines  # clients' affinity survives a full sync
    first_rule = next(i for i, line in enumerate(lines) if line.startswith("add rule"))
    last_declaration = max(i for i, line in enumerate(lines) if line.startswith(("add chain", "add set", "add map")))
    first_element = next(i for i, line in enumerate(lines) if line.startswith("add element"))
    assert last_declaration < first_rule < first_element
    service = hashed("service", p.key)
    index(lines, f"add element {T} service-ips {{ 10.96.0.20 . tcp . 80 : goto {service} }}")
    assert not any(line.startswith(("delete", "add element ip kube-proxy no-endpoint")) for line in lines)


def test_a_full_sync_removes_what_exists_but_is_not_wanted_after_the_rest():
    old_port = port(A, name="gone", affinity_seconds=60)
    existing = Existing.of(render([old_port, port(A)], SETTINGS))
    lines = script.full(render([port(A)], SETTINGS), existing).splitlines()
    gone = ep_chain(old_port, A)
    flush, delete = index(lines, f"flush chain {T} {gone}"), index(lines, f"delete chain {T} {gone}")
    set_delete = index(lines, f"delete set {T} {affinity_set(old_port, A)}")
    last_add = max(i for i, line in enumerate(lines) if line.startswith("add "))
    assert last_add < flush < delete < set_delete
    assert f"delete chain {T} {ep_chain(port(A), A)}" not in lines


def test_identical_rulesets_give_an_empty_partial_script():
    assert script.partial(render([port(A, B)], SETTINGS), render([port(A, B)], SETTINGS)) == ""


def test_an_endpoint_change_touches_only_its_chains():
    old, new = render([port(A, B), port(A, name="api", ip="10.96.0.30")], SETTINGS), \
        render([port(A, C), port(A, name="api", ip="10.96.0.30")], SETTINGS)
    p = port(A, C)
    lines = script.partial(old, new).splitlines()
    service = hashed("service", p.key)
    assert lines[:3] == [f"add chain {T} {service}", f"flush chain {T} {service}", f"add chain {T} {ep_chain(p, C)}"]
    assert f"flush chain {T} {ep_chain(p, C)}" not in lines  # new: nothing to flush
    index(lines, f"add rule {T} {ep_chain(p, C)} meta l4proto tcp dnat to 10.244.1.12:8080")
    assert lines[-2:] == [f"flush chain {T} {ep_chain(p, B)}", f"delete chain {T} {ep_chain(p, B)}"]
    assert not any("element" in line or "/api/" in line or line.endswith(ep_chain(p, A)) for line in lines)


def test_a_changed_element_is_deleted_then_added_and_removed_keys_deleted():
    before = render([port(A, name="web"), port(A, name="old", ip="10.96.0.40")], SETTINGS)
    after = render([port(A, name="web", internal_local=True)], Settings(node_name="n1"))
    lines = script.partial(before, after).splitlines()
    delete = index(lines, f"delete element {T} service-ips {{ 10.96.0.40 . tcp . 80, 10.96.0.20 . tcp . 80 }}")
    local = hashed("local", port(A).key)
    add = index(lines, f"add element {T} service-ips {{ 10.96.0.20 . tcp . 80 : goto {local} }}")
    index(lines, f"add chain {T} {local}") < delete < add
    index(lines, f"delete element {T} cluster-ips {{ 10.96.0.40 }}")
    assert add < index(lines, f"flush chain {T} {hashed('service', port(A, name='old').key)}")


def test_a_service_losing_its_endpoints_moves_to_the_reject_map():
    lines = script.partial(render([port(A)], SETTINGS), render([port()], SETTINGS)).splitlines()
    index(lines, f"delete element {T} service-ips {{ 10.96.0.20 . tcp . 80 }}")
    index(lines, f"add element {T} no-endpoint-services {{ 10.96.0.20 . tcp . 80 : goto reject-chain }}")
    assert lines[-4:] == [f"flush chain {T} {ep_chain(port(A), A)}", f"flush chain {T} {hashed('service', port(A).key)}",
                          f"delete chain {T} {ep_chain(port(A), A)}", f"delete chain {T} {hashed('service', port(A).key)}"]


def test_affinity_sets_come_and_go_with_affinity():
    plain, sticky = render([port(A)], SETTINGS), render([port(A, affinity_seconds=60)], SETTINGS)
    name = affinity_set(port(A, affinity_seconds=60), A)
    on = script.partial(plain, sticky).splitlines()
    declared = index(on, f"add set {T} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }}")
    assert declared < index(on, f"add rule {T} {ep_chain(port(A), A)} update @{name} {{ ip saddr }}")
    off = script.partial(sticky, plain).splitlines()
    assert off[-1] == f"delete set {T} {name}"
    index(off, f"flush chain {T} {ep_chain(port(A), A)}") < len(off) - 1


def test_many_elements_are_split_over_lines_of_one_script(monkeypatch):
    monkeypatch.setattr(script, "ELEMENTS_PER_LINE", 2)
    ports = [port(A, name=f"s{i}", ip=f"10.96.0.{i}") for i in range(1, 6)]
    lines = [line for line in script.full(render(ports, SETTINGS)).splitlines()
             if line.startswith(f"add element {T} service-ips")]
    assert [line.count(" : goto ") for line in lines] == [2, 2, 1]


@pytest.mark.parametrize("count", [0, 1, 50])
def test_a_partial_script_from_nothing_builds_what_a_full_one_builds(count):
    """Partial diffs compose: applying old->new to `old` yields `new` (checked on the names each script adds)."""
    ports = [port(A, B, name=f"s{i}", ip=f"10.96.2.{i}") for i in range(count)]
    new = render(ports, SETTINGS)
    old = render([], SETTINGS)
    added = {line.split()[4] for line in script.partial(old, new).splitlines() if line.startswith("add chain")}
    assert added == set(new.chains) - set(old.chains)
