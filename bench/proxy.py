"""kpy-proxy benchmark: what a sync costs as Services grow, and whether the per-packet cost stays flat.

Renderer (this process, no kernel): for 10 / 100 / 1,000 / 5,000 Services (one port, two endpoints each), the time
to turn Service and EndpointSlice dicts into the ruleset (model + rules), to write the full `nft -f` script, and to
diff one endpoint change into a partial script; the script's size and its chains, rules and elements.

Kernel (`--lab`, inside one lab host; nothing here touches this machine's netfilter): the same scripts loaded with
`nft -f` (timed inside the host around the nft call: a full sync at each size, then one endpoint change as a
partial sync), and TCP connections per second from a network-namespace "pod" to one Service's ClusterIP while
0 / 1,000 / 5,000 other Services are programmed, beside connections straight to the pod's IP. Verdict maps make
the lookup one hash per packet, so the ClusterIP rate should not fall as Services are added (iptables mode walks
one rule per Service). Targets (issue 11): 1,000 Services programmed in <= 1 s, one change live in <= 100 ms,
ClusterIP/direct connection rate >= 0.9.

Usage: .venv/bin/python bench/proxy.py [--sizes 10,100,1000,5000] [--lab] [--connections 2000]
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "tests" / "lab"))  # the lab test's pod network and scripts, shared with this bench

from kpy_components.proxy import model, rules, script  # noqa: E402

LAB, HOST = "prx", "prx-w1"
NODE = HOST
SETTINGS = rules.Settings(node_name=NODE, cluster_cidr="10.244.0.0/16")
TARGET_IP = "10.96.0.2"


def objects(count: int, moved: int | None = None) -> tuple[list[dict], list[dict]]:
    """`count` Services with two endpoints each; Service 0 is the one the traffic test uses (the pods a and b);
    `moved`: that Service's second endpoint changed (a one-endpoint change)."""
    services, slices = [], []
    for i in range(count):
        ip = TARGET_IP if i == 0 else f"10.96.{(i + 2) // 250 + 1}.{(i + 2) % 250 + 1}"
        name = f"svc-{i}"
        services.append({"metadata": {"namespace": "bench", "name": name},
                         "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        pods = (["10.244.1.10", "10.244.1.11"] if i == 0
                else [f"10.244.{2 + i // 200}.{(i % 200) + 1}", f"10.244.{40 + i // 200}.{(i % 200) + 1}"])
        if moved == i:
            pods[1] = "10.244.1.12"
        slices.append({"metadata": {"namespace": "bench", "name": f"{name}-1",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                       "endpoints": [{"addresses": [p], "nodeName": NODE} for p in pods]})
    return services, slices


def timed(function, *args):
    """(result, seconds)."""
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def render(count: int, moved: int | None = None) -> rules.Ruleset:
    return rules.render(model.all_service_ports(*objects(count, moved)), SETTINGS)


def one_change(cache: model.ServicePortCache, services: list[dict], slices: list[dict],
               current: rules.Ruleset) -> tuple[rules.Ruleset, str]:
    """What a sync does after one EndpointSlice changed: re-read (cached), render (cached), diff."""
    wanted = rules.render(cache.ports(services, slices), SETTINGS)
    return wanted, script.partial(current, wanted)


def renderer_rows(sizes: list[int]) -> list[dict]:
    rows = []
    for count in sizes:
        services, slices = objects(count)
        cache = model.ServicePortCache()
        ruleset, render_seconds = timed(lambda: rules.render(cache.ports(services, slices), SETTINGS))
        text, full_seconds = timed(script.full, ruleset)
        slices = [objects(1, moved=0)[1][0], *slices[1:]]  # a new object for the changed slice, as informers do
        (_, diff), partial_seconds = timed(one_change, cache, services, slices, ruleset)
        rows.append({"services": count, "render_ms": render_seconds * 1e3, "full_script_ms": full_seconds * 1e3,
                     "partial_ms": partial_seconds * 1e3, "bytes": len(text), "partial_lines": diff.count("\n"),
                     **ruleset.counts(), "full": text, "partial": diff})
    return rows


def kpy_lab(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([str(Path(sys.executable).parent / "kpy-lab"), *args], input=stdin, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"kpy-lab {' '.join(args[:3])}: {done.stderr.strip()}")
    return done.stdout


def on_host(command: str, stdin: str | None = None) -> str:
    return kpy_lab("ssh", f"--lab={LAB}", HOST, command, stdin=stdin)


def nft_seconds(text: str) -> float:
    """Seconds `nft -f` took inside the host to load `text` (the file is copied first, outside the timing)."""
    on_host("cat > /tmp/bench.nft", stdin=text)
    code = ("import subprocess, time; t = time.perf_counter(); "
            "subprocess.run(['nft', '-f', '/tmp/bench.nft'], check=True); print(time.perf_counter() - t)")
    return float(on_host(f"python3 -c {shlex.quote(code)}"))


# Runs in pod-c: COUNT connections one after another, each until the server's greeting arrived; prints the rate
# and the p50 and p99 of connect-to-greeting latency in ms.
RATE = r"""
import socket, statistics, sys, time
host, count = sys.argv[1], int(sys.argv[2])
latencies = []
started = time.perf_counter()
for _ in range(count):
    begun = time.perf_counter()
    with socket.create_connection((host, int(sys.argv[3])), timeout=5) as s:
        s.recv(64)
    latencies.append(time.perf_counter() - begun)
cuts = statistics.quantiles(latencies, n=100)
print(count / (time.perf_counter() - started), cuts[49] * 1e3, cuts[98] * 1e3)
"""


def rate(address: str, port: int, connections: int) -> tuple[float, float, float]:
    """(connections/s, p50 ms, p99 ms) from pod-c."""
    rate, p50, p99 = on_host(f"ip netns exec pod-c python3 /tmp/rate.py {address} {connections} {port}").split()
    return float(rate), float(p50), float(p99)


def lab_rows(rows: list[dict], connections: int) -> None:
    from test_proxy_kernel import CLIENT, SERVER, SETUP  # the lab test's pod network: bridge kpy0, pods a, b, c

    kpy_lab("up", f"--lab={LAB}", "--subnet-index=24", "--control-plane=0", "--workers=1",
            "--inventory=/tmp/kpy-bench-proxy-hosts.yml")
    try:
        for name, text in (("server", SERVER), ("client", CLIENT), ("rate", RATE)):
            on_host(f"cat > /tmp/{name}.py", stdin=text)
        on_host(SETUP)
        deadline = time.monotonic() + 30
        while "a " not in on_host("ip netns exec pod-c python3 /tmp/client.py 10.244.1.10 8080 1"):
            if time.monotonic() > deadline:
                raise SystemExit("the pods' servers did not start")
        print("\nkernel (inside lab host): nft -f of the full script into an empty table and again over itself (a "
              "restart), then one endpoint change (+ its compute above: the change's time to be live)")
        print(f"{'services':>9} {'full sync s':>12} {'resync s':>9} {'programmed s':>13} {'one change ms':>14} "
              f"{'live ms':>8}")
        for row in rows:
            on_host("nft delete table ip kube-proxy 2>/dev/null || true")
            full, again = nft_seconds(row["full"]), nft_seconds(row["full"])
            partial = nft_seconds(row["partial"])
            programmed = full + (row["render_ms"] + row["full_script_ms"]) / 1e3  # from dicts to rules in the kernel
            print(f"{row['services']:>9,} {full:>12.3f} {again:>9.3f} {programmed:>13.3f} {partial * 1e3:>14.1f} "
                  f"{partial * 1e3 + row['partial_ms']:>8.1f}")
        print(f"\nTCP connections/s from a pod (median of 3 alternating runs of {connections}): ClusterIP vs the pod "
              "IP, as Services grow")
        print(f"{'services':>9} {'ClusterIP/s':>12} {'direct/s':>9} {'ratio':>6} {'p50 ms':>13} {'p99 ms':>13}  "
              "(latency: ClusterIP / direct)")
        for count in (1, 1000, 5000):
            on_host("nft delete table ip kube-proxy 2>/dev/null || true")
            on_host("cat > /tmp/bench.nft && nft -f /tmp/bench.nft", stdin=script.full(render(count)))
            runs = [(rate(TARGET_IP, 80, connections), rate("10.244.1.10", 8080, connections)) for _ in range(3)]
            through, direct = (tuple(statistics.median(r[i][k] for r in runs) for k in range(3)) for i in (0, 1))
            print(f"{count:>9,} {through[0]:>12.0f} {direct[0]:>9.0f} {through[0] / direct[0]:>6.2f} "
                  f"{through[1]:>6.2f} / {direct[1]:<4.2f} {through[2]:>6.2f} / {direct[2]:<4.2f}")
    finally:
        kpy_lab("down", f"--lab={LAB}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--lab", action="store_true", help="also load the rules and send traffic in a lab host")
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args()
    rows = renderer_rows([int(size) for size in args.sizes.split(",")])
    print("renderer (this process): Service/EndpointSlice dicts -> ruleset -> nft script")
    print(f"{'services':>9} {'render ms':>10} {'full script ms':>15} {'one change ms':>14} {'script KiB':>11} "
          f"{'chains':>7} {'rules':>7} {'elements':>9} {'partial lines':>14}")
    for row in rows:
        print(f"{row['services']:>9,} {row['render_ms']:>10.1f} {row['full_script_ms']:>15.1f} "
              f"{row['partial_ms']:>14.1f} {row['bytes'] / 1024:>11.0f} {row['chain']:>7,} {row['rule']:>7,} "
              f"{row['element']:>9,} {row['partial_lines']:>14}")
    if args.lab:
        lab_rows(rows, args.connections)


if __name__ == "__main__":
    main()
