"""A lab cluster for benchmarks: a fresh lab of its own provisioned with site.yml (removed afterwards), or a running
one named by its inventory folder; and commands on its hosts over `kpy-lab ssh`.

    with lab_cluster("bench", 25, control_plane=1, workers=2) as cluster:
        cluster.kubeconfig, cluster.ssh("bench-w1", "uptime")
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provision import BIN, REPO, run_site


@dataclass(frozen=True)
class LabCluster:
    lab: str
    inventory: Path  # the inventory folder: hosts.yml, group_vars/, artifacts/ (written by site.yml)

    @property
    def kubeconfig(self) -> Path:
        return self.inventory / "artifacts" / "admin.kubeconfig"

    def ssh(self, host: str, command: str, stdin: str | None = None) -> str:
        """`command` run by the shell of lab host `host` as root; its stdout. Exits naming the host on failure."""
        proc = subprocess.run([BIN / "kpy-lab", "ssh", f"--lab={self.lab}", host, command], input=stdin,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"on {host}: {command.splitlines()[0]!r} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout


@contextlib.contextmanager
def lab_cluster(lab: str, subnet_index: int, *, control_plane: int, workers: int,
                inventory: Path | None = None, site_args: tuple[str, ...] = ()) -> Iterator[LabCluster]:
    """The running lab whose inventory folder is `inventory` (left as it is), or else a fresh lab `lab` on
    10.213.<subnet_index>.0/24 provisioned by site.yml (with `site_args`) from a throw-away inventory folder, which
    is taken down and removed at the end."""
    if inventory is not None:
        cluster = LabCluster(lab, inventory.resolve())
        if not cluster.kubeconfig.is_file():
            sys.exit(f"--inventory {inventory}: no {cluster.kubeconfig.relative_to(cluster.inventory)} there "
                     "(an inventory folder that site.yml has provisioned is needed)")
        yield cluster
        return
    folder = Path(tempfile.mkdtemp(prefix=f"kpy-{lab}-"))
    cluster = LabCluster(lab, folder / lab)
    shutil.copytree(REPO / "inventory/lab/group_vars", cluster.inventory / "group_vars")
    try:
        up = subprocess.run([BIN / "kpy-lab", "up", f"--lab={lab}", f"--subnet-index={subnet_index}",
                             f"--control-plane={control_plane}", f"--workers={workers}",
                             f"--inventory={cluster.inventory / 'hosts.yml'}"], capture_output=True, text=True)
        if up.returncode != 0:
            sys.exit(f"kpy-lab up --lab={lab} failed: {up.stderr.strip()}")
        run_site(cluster.inventory, list(site_args))
        yield cluster
    finally:
        subprocess.run([BIN / "kpy-lab", "down", f"--lab={lab}"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
