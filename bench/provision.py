"""Provisioning benchmark: wall time of a fresh `ansible-playbook site.yml` on a new 5-host lab, then of the no-op
re-run, side by side with the targets and the anchors they beat (performance-anchors.md).

Usage (root, after ./scripts/setup):  .venv/bin/python bench/provision.py [--workers 2] [--control-plane 3] [--cold-cache]
                                                                        [--lab bench] [--subnet-index 50]
Uses its own lab (default `bench`, 10.213.50.0/24) and a throw-away inventory folder, and removes both at the end.
The controller's wheelhouse cache (~/.cache/kpy/wheelhouse) is used as any run would: the fresh run builds the
wheelhouse only if kpy's sources changed since it was last built, and says which. --cold-cache gives the run an
empty wheelhouse cache of its own (what a first `make cluster` on a new machine pays; pip's own cache still counts).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_FRESH_S, TARGET_NOOP_S = 60.0, 10.0  # issue 11
KUBESPRAY_S_PER_NODE = 15 * 60 / 10  # 15 min for 10 nodes (kubespray #478)


def run_site(inventory: Path, extra_vars: list[str]) -> tuple[float, str]:
    """Wall time of one site.yml run, and its output (from the wheelhouse task on)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    started = time.monotonic()
    proc = subprocess.run([BIN / "ansible-playbook", "-i", str(inventory), "site.yml", *extra_vars], cwd=REPO, env=env,
                          capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"site.yml failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def recap(output: str) -> str:
    return output[output.rfind("PLAY RECAP"):]


def wheelhouse_built(output: str) -> bool:
    """Whether the run's kpy_wheelhouse task built an archive (changed) rather than finding it in the cache."""
    task = output[output.find("Build the wheelhouse on the controller"):]
    return any(line.startswith("changed:") for line in task[:task.find("TASK [")].splitlines())


def changed_total(recap: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", recap))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-plane", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cold-cache", action="store_true", help="an empty wheelhouse cache for this run")
    parser.add_argument("--lab", default="bench", help="lab name (removed at the end)")
    parser.add_argument("--subnet-index", type=int, default=50, help="the lab's network is 10.213.N.0/24")
    args = parser.parse_args()
    hosts = args.control_plane + args.workers
    folder = Path(tempfile.mkdtemp(prefix="kpy-bench-"))
    inventory = folder / "bench"
    shutil.copytree(REPO / "inventory/lab/group_vars", inventory / "group_vars")
    extra_vars = ["-e", f"kpy_install_cache_dir={folder / 'wheelhouse-cache'}"] if args.cold_cache else []
    try:
        subprocess.run([BIN / "kpy-lab", "up", f"--lab={args.lab}", f"--subnet-index={args.subnet_index}",
                        f"--control-plane={args.control_plane}", f"--workers={args.workers}",
                        f"--inventory={inventory / 'hosts.yml'}"], check=True, capture_output=True)
        fresh, fresh_output = run_site(inventory, extra_vars)
        noop, noop_output = run_site(inventory, extra_vars)
    finally:
        subprocess.run([BIN / "kpy-lab", "down", f"--lab={args.lab}"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
    kubespray = KUBESPRAY_S_PER_NODE * hosts
    print(f"hosts: {hosts} ({args.control_plane} control plane + etcd, {args.workers} workers)")
    print("wheelhouse     : " + ("built during the fresh run" if wheelhouse_built(fresh_output) else
                                 "from the controller's cache (kpy's sources unchanged since it was built)")
          + (" (empty cache: --cold-cache)" if args.cold_cache else ""))
    print(f"fresh site.yml : {fresh:7.1f} s   target {TARGET_FRESH_S:.0f} s  ratio {fresh / TARGET_FRESH_S:.2f}"
          f"   kubespray at its pace ~{kubespray:.0f} s: {kubespray / fresh:.1f}x faster")
    print(f"no-op re-run   : {noop:7.1f} s   target {TARGET_NOOP_S:.0f} s  ratio {noop / TARGET_NOOP_S:.2f}"
          f"   changed tasks on re-run: {changed_total(recap(noop_output))}")


if __name__ == "__main__":
    main()
