"""Upgrade benchmark: wall time of the rolling upgrade N-1 -> N (playbooks/upgrade.yml) of a 5-host lab cluster,
and the longest single-node drain, with a web Deployment of 3 replicas behind a PodDisruptionBudget (minAvailable 2)
on it, so that drains wait for replacements as they would under a real workload.

Usage (root, after ./scripts/setup):  .venv/bin/python bench/upgrade.py [--batch 20%]
Uses its own lab (`bupg`, 10.213.52.0/24) brought up at the previous minor of this checkout, removed at the end.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

from labcluster import lab_cluster
from provision import BIN, REPO

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
      containers:
        - name: web
          image: busybox:1.35
          command: [httpd, -f, -p, "8080", -h, /etc]
          readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 1}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="20%", help="nodes upgraded at once (kpy_upgrade_batch)")
    args = parser.parse_args()
    target = (REPO / "VERSION").read_text().strip()
    major, minor, _ = target.split(".")
    previous = f"{major}.{int(minor) - 1}.0"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    with lab_cluster("bupg", 52, control_plane=3, workers=2, site_args=("-e", f"kpy_version={previous}")) as cluster:
        kubectl = ["kubectl", "--kubeconfig", str(cluster.kubeconfig)]
        subprocess.run([*kubectl, "apply", "-f", "-"], input=WEB, text=True, check=True, capture_output=True)
        subprocess.run([*kubectl, "rollout", "status", "deployment/web", "--timeout=180s"], check=True,
                       capture_output=True)
        started = time.monotonic()
        run = subprocess.run([BIN / "ansible-playbook", "-i", str(cluster.inventory), "playbooks/upgrade.yml",
                              "-e", f"kpy_version={target}", "-e", f"kpy_upgrade_batch={args.batch}"],
                             cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        if run.returncode != 0:
            sys.exit(f"upgrade.yml failed:\n{run.stdout[-4000:]}")
        nodes = json.loads(subprocess.run([*kubectl, "get", "nodes", "-o", "json"], check=True, capture_output=True,
                                          text=True).stdout)["items"]
    drains = {host: float(seconds) for host, seconds in re.findall(r'"(\S+) drained in ([\d.]+) s"', run.stdout)}
    versions = sorted({n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes})
    print(f"rolling upgrade {previous} -> {target}, 5 hosts (3 control plane + etcd, 2 workers), batch {args.batch}")
    print(f"wall time of playbooks/upgrade.yml : {wall:7.1f} s  (plan, install, 3 etcd, 3 API servers, "
          f"3+3 controller managers/schedulers, {len(drains)} nodes drained and switched)")
    if drains:
        longest = max(drains, key=drains.get)
        print(f"longest single-node drain          : {drains[longest]:7.1f} s  ({longest}; all: "
              + ", ".join(f"{host} {seconds:.1f}" for host, seconds in sorted(drains.items())) + ")")
    print(f"node versions after                : {', '.join(versions)}")


if __name__ == "__main__":
    main()
