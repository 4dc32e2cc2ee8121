"""The kpy_component_versions module on this machine: versioned links in a temporary /opt/kpy, the real kubelet,
kpy-proxy and kpy-dns /version servers on loopback (aiohttp in a thread), an etcd /health stand-in, and a stand-in
systemctl (this machine runs no kpy units) answering `show` from a file of active units."""
import asyncio
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kpy_components.dns.probes import ProbeServers
from kpy_components.kubelet import server as kubelet_server
from kpy_components.proxy import serving as proxy_serving
from kpy_components.version import VERSION

REPO = Path(__file__).resolve().parents[2]
SYSTEMCTL = """#!/bin/sh
# show --property=LoadState,ActiveState UNIT.service: loaded everywhere; active when listed in $0.active
unit=$(basename "$3" .service)
echo LoadState=loaded
if grep -qx "$unit" "$0.active"; then echo ActiveState=active; else echo ActiveState=inactive; fi
"""


def run_module(tmp_path, check=False, **options):
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(options, _ansible_check_mode=check)}))
    proc = subprocess.run([sys.executable, REPO / "library/kpy_component_versions.py", args_file],
                          capture_output=True, text=True, check=False)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def component_servers():
    """The real kubelet, kpy-proxy and kpy-dns health apps on free loopback ports: unit -> base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        async def ok():
            return None
        kubelet = await proxy_serving.start(kubelet_server.healthz_app({"ping": ok}), ("127.0.0.1", 0))
        proxy = await proxy_serving.start(
            proxy_serving.health_app(lambda: True, lambda: True, lambda: None, lambda: 0.0), ("127.0.0.1", 0))
        dns = ProbeServers(("127.0.0.1", 0), ("127.0.0.1", 0), ("127.0.0.1", 0), CollectorRegistry(), list)
        await dns.start()
        return kubelet, proxy, dns

    kubelet, proxy, dns = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    yield {"kpy-kubelet": f"http://127.0.0.1:{kubelet.addresses[0][1]}",
           "kpy-proxy": f"http://127.0.0.1:{proxy.addresses[0][1]}",
           "kpy-dns": f"http://127.0.0.1:{dns.ports['health']}"}

    async def stop():
        await kubelet.cleanup()
        await proxy.cleanup()
        await dns.stop()
    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=30)


@pytest.fixture
def etcd_health():
    """etcd's /health answer on its metrics port (what the member answers is set per test)."""
    answer = {"body": {"health": "true", "reason": ""}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(answer["body"]).encode()
            self.send_response(200 if self.path == "/health" and answer["body"]["health"] == "true" else 503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield answer, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=30)


@pytest.fixture
def host(tmp_path):
    """A host layout: /opt/kpy/<version> venvs, component links, the stand-in systemctl and its active units."""
    root = tmp_path / "opt/kpy"
    (root / "components").mkdir(parents=True)
    for version in ("1.30.2", VERSION):
        (root / version).mkdir(exist_ok=True)
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(SYSTEMCTL)
    systemctl.chmod(0o755)

    def layout(links: dict[str, str], active: list[str]) -> dict:
        for unit, target in links.items():
            os.symlink(target if target.startswith("/") else root / target, root / "components" / unit)
        Path(f"{systemctl}.active").write_text("".join(f"{unit}\n" for unit in active))
        return {"components_dir": str(root / "components"), "systemctl": str(systemctl),
                "etcd_config": str(tmp_path / "missing-etcd.yaml"), "apiserver_config": str(tmp_path / "none.yaml")}
    return layout


def test_installed_and_running_versions_of_every_unit(tmp_path, host, component_servers, etcd_health):
    options = host({"kpy-etcd": "1.30.2", "kpy-kubelet": VERSION, "kpy-proxy": "1.30.2", "kpy-dns": VERSION},
                   ["kpy-etcd", "kpy-kubelet", "kpy-proxy", "kpy-dns"])
    result = run_module(tmp_path, units=["kpy-etcd", "kpy-kubelet", "kpy-proxy", "kpy-dns"],
                        endpoints={**component_servers, "kpy-etcd": etcd_health[1]}, **options)
    assert result["changed"] is False and result["hostname"]
    components = result["components"]
    assert components["kpy-etcd"] == {
        "installed": "1.30.2", "link": f"{tmp_path}/opt/kpy/1.30.2", "active": True, "running": "1.30.2",
        "version_error": None, "problem": None, "health_checked": True}
    # the proxy's link says 1.30.2 but the process answering is this checkout's (the old process still runs)
    for unit, installed in (("kpy-kubelet", VERSION), ("kpy-proxy", "1.30.2"), ("kpy-dns", VERSION)):
        assert (components[unit]["installed"], components[unit]["running"]) == (installed, VERSION), unit
        assert components[unit]["active"] is True and components[unit]["version_error"] is None


def test_unhealthy_etcd_member_reported(tmp_path, host, etcd_health):
    etcd_health[0]["body"] = {"health": "false", "reason": "RAFT NO LEADER"}
    options = host({"kpy-etcd": VERSION}, ["kpy-etcd"])
    result = run_module(tmp_path, units=["kpy-etcd"], endpoints={"kpy-etcd": etcd_health[1]}, **options)
    problem = result["components"]["kpy-etcd"]["problem"]
    assert problem.startswith(f"GET {etcd_health[1]}/health: HTTP 503") and "RAFT NO LEADER" in problem


def test_inactive_units_and_unreadable_versions(tmp_path, host):
    options = host({"kpy-kubelet": VERSION, "kpy-proxy": "not-a-version", "kpy-scheduler": "/nowhere"},
                   ["kpy-scheduler"])
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    result = run_module(tmp_path, check=True, units=["kpy-kubelet", "kpy-proxy", "kpy-scheduler"],
                        endpoints={"kpy-scheduler": dead}, **options)
    components = result["components"]
    assert components["kpy-kubelet"]["active"] is False and components["kpy-kubelet"]["running"] is None
    assert components["kpy-proxy"]["installed"] is None and components["kpy-proxy"]["link"].endswith("not-a-version")
    scheduler = components["kpy-scheduler"]
    assert scheduler["installed"] is None and scheduler["active"] is True and scheduler["running"] is None
    assert scheduler["version_error"].startswith(f"GET {dead}/version: ")


def test_units_absent_from_the_host_are_left_out(tmp_path, host):
    options = host({}, [])
    options["systemctl"] = str(tmp_path / "no-systemctl")  # systemd unknown: only links count
    assert run_module(tmp_path, **options)["components"] == {}


def test_bad_timeout_named(tmp_path):
    result = run_module(tmp_path, timeout=0)
    assert result["failed"] is True and result["msg"] == "timeout must be positive, not 0.0"
