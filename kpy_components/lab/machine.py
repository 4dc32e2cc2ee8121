"""One lab host: an overlay on the cached image booted with systemd-nspawn, in cgroups of its own.

Contract: `start` returns once the host's nspawn runs (not once it is reachable: see `wait_for_ssh`); `stop`
leaves no process, mount or cgroup of the host behind and may be called on a host that is half started or gone.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from kpy_components.lab.run import LabError, run
from kpy_components.lab.spec import Host, LabSpec

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_hierarchies() -> tuple[str, ...]:
    """Every cgroup hierarchy mounted on the machine (the v1 controllers, systemd's, the unified one). Each host gets a
    cgroup of its own in all of them (lab-hosts.md: otherwise systemd inside misbehaves), so that what runs inside
    a host — pod containers' cgroups included — lands below the host's cgroup and never at the machine's root."""
    mounted = {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
               if line.split()[2] in ("cgroup", "cgroup2")}
    return tuple(sorted(p.name for p in CGROUP_ROOT.iterdir() if str(p) in mounted))


class Machine:
    def __init__(self, spec: LabSpec, host: Host, lab_dir: Path):
        self.spec, self.host = spec, host
        self.dir = lab_dir / host.name
        self.merged = self.dir / "merged"
        self.pid_file = self.dir / "nspawn.pid"

    # --- state -------------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    @property
    def cgroups(self) -> list[Path]:
        return [CGROUP_ROOT / h / "kpy-lab" / self.spec.name / self.host.name for h in cgroup_hierarchies()]

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, image: Path, authorized_key: str) -> None:
        if self.pid:
            return
        for sub in ("upper", "work", "merged", "containerd"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(self.merged):
            run("mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir={image / 'rootfs'},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}",
                str(self.merged))
        self._write_host_files(authorized_key)
        for cgroup in self.cgroups:
            _make_cgroup(cgroup)
        command = [
            "systemd-nspawn", "--quiet", f"--directory={self.merged}", f"--machine={self.host.name}", "--boot",
            f"--network-bridge={self.spec.bridge}", "--console=read-only", "--resolv-conf=off", "--timezone=off",
            # All capabilities and the keyring calls, so runc can run pod containers inside the host later.
            "--capability=all", "--system-call-filter=add_key keyctl request_key",
            f"--bind-ro={image / 'debs'}:/srv/debs",
            # containerd's overlayfs snapshotter cannot stack on the host's overlay root: give it a real filesystem
            # (a per-host folder on the machine's disk), as a real node's /var/lib/containerd is.
            f"--bind={self.dir / 'containerd'}:/var/lib/containerd",
        ]
        if not Path("/run/systemd/system").exists():  # no systemd on the machine to register with
            command += ["--register=no", "--keep-unit"]
        log = open(self.dir / "console.log", "ab")
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=self._enter_cgroups)
        self.pid_file.write_text(str(proc.pid))

    def _enter_cgroups(self) -> None:  # runs in the child between fork and exec
        for cgroup in self.cgroups:
            (cgroup / "cgroup.procs").write_text("0")

    def wait_for_ssh(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.pid is None:
                raise LabError(f"{self.host.name} stopped while booting; see {self.dir / 'console.log'}")
            try:
                with socket.create_connection((str(self.host.address), 22), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise LabError(f"{self.host.name} ({self.host.address}) did not answer on SSH; see {self.dir / 'console.log'}")

    def enable_pod_cgroups(self) -> None:
        """nspawn mounts the v1 cgroup controllers read-only inside the host, which stops runc; make them writable
        in the host's own mount namespace. Each mount still shows only the host's own subtree, so containers'
        cgroups land below the host's and go with it (nothing changes on the machine)."""
        init = self._init_pid()
        mounts = Path(f"/proc/{init}/mountinfo").read_text().splitlines()
        for line in mounts:
            fields = line.split()
            target, fstype = fields[4], fields[fields.index("-") + 1]
            if fstype != "cgroup" or "ro" not in fields[5].split(","):
                continue
            run("nsenter", "-t", str(init), "-m", "mount", "-o", "remount,bind,rw", target)

    def _init_pid(self) -> int:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        if not children:
            raise LabError(f"{self.host.name}: nspawn has no init process")
        return int(children[0])

    def stop(self, timeout: float = 20) -> None:
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGTERM)  # nspawn turns this into a clean power-off of the host
            deadline = time.monotonic() + timeout
            while self.pid and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pid:
                os.killpg(pid, signal.SIGKILL)
                time.sleep(0.2)
        # Whatever the host left running (a pod's PID 1 that ignores SIGTERM keeps systemd's shutdown waiting; its
        # containerd shim is no child of nspawn) is still in the host's cgroups: end it, so nothing outlives the host.
        self._kill_leftovers(deadline=time.monotonic() + 10)
        if os.path.ismount(self.merged):
            run("umount", str(self.merged))
        for cgroup in self.cgroups:
            _remove_cgroup_tree(cgroup)
        self.pid_file.unlink(missing_ok=True)

    def _kill_leftovers(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            pids = [int(pid) for cgroup in self.cgroups if cgroup.exists()
                    for procs in cgroup.rglob("cgroup.procs") for pid in procs.read_text().split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        raise LabError(f"{self.host.name}: processes in {self.cgroups[0]} survived SIGKILL")

    # --- files inside the host ---------------------------------------------------------------------------------
    def _write_host_files(self, authorized_key: str) -> None:
        root, spec = self.merged, self.spec
        (root / "etc/hostname").write_text(self.host.name + "\n")
        peers = "".join(f"{h.address}\t{h.name}\n" for h in spec.hosts)
        (root / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{peers}")
        resolv = root / "etc/resolv.conf"
        resolv.unlink(missing_ok=True)
        resolv.write_text("")
        (root / "etc/systemd/network/10-host0.network").write_text(
            "[Match]\nName=host0\n\n[Network]\n"
            f"Address={self.host.address}/{spec.network.prefixlen}\nGateway={spec.gateway}\nLinkLocalAddressing=no\n")
        for home, owner in (("root", "root"), ("home/ansible", "ansible")):
            ssh_dir = root / home / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            (ssh_dir / "authorized_keys").write_text(authorized_key)
            (ssh_dir / "authorized_keys").chmod(0o600)
            if owner != "root":
                run("chroot", str(root), "chown", "-R", f"{owner}:{owner}", f"/{home}/.ssh")


def _make_cgroup(cgroup: Path) -> None:
    """Create the cgroup and its parents; a cpuset cgroup starts with no CPUs or memory nodes (a process cannot join
    it then), so each level gets its parent's."""
    missing = [cgroup, *cgroup.parents]
    missing = [p for p in reversed(missing[:missing.index(CGROUP_ROOT / cgroup.relative_to(CGROUP_ROOT).parts[0])])]
    for level in missing:
        level.mkdir(exist_ok=True)
        for setting in ("cpuset.cpus", "cpuset.mems"):
            own = level / setting
            if own.exists() and not own.read_text().strip():
                own.write_text((level.parent / setting).read_text())


def _remove_cgroup_tree(cgroup: Path) -> None:
    """Remove a cgroup and whatever the host's systemd created below it, deepest first."""
    if not cgroup.exists():
        return
    for sub in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    cgroup.rmdir()
    for parent in (cgroup.parent, cgroup.parent.parent):  # kpy-lab/<lab>, then kpy-lab, once empty
        try:
            parent.rmdir()
        except OSError:
            break
