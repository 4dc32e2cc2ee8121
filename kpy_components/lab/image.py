"""The lab's Debian bookworm image and the local package repository its hosts install from.

Both are built once with debootstrap and cached, keyed on what goes into them; lab hosts boot from the image
through an overlay, so hosts never change it. Hosts have no outside network: the packages roles install on them
(etcd, runc, python3-venv, ...) are downloaded here, on the machine, into a flat apt repository that every host
mounts read-only at /srv/debs.
"""
import fcntl
import hashlib
import json
import re
import shutil
from pathlib import Path

from kpy_components.lab.paths import CACHE_DIR
from kpy_components.lab.run import LabError, run

SUITE = "bookworm"
# What every lab host has from the start: enough for systemd, SSH and Ansible (as on a minimal cloud image).
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "iproute2", "nftables",
    "sudo", "procps", "iputils-ping", "netcat-openbsd", "ca-certificates",
)
# What roles install on hosts later, served from the local repository.
REPO_PACKAGES = ("python3-venv", "python3-packaging", "etcd-server", "etcd-client", "runc", "openssl", "conntrack",
                 # nodes: the CRI runtime, the CNI plugins (bridge/portmap program iptables), the lab's image registry
                 "containerd", "containernetworking-plugins", "iptables", "docker-registry", "busybox-static",
                 # workers: the local load balancer in front of every API server
                 "haproxy")
# Bump when the preparation below changes, so cached images are rebuilt.
PREPARE_REVISION = 2

SSH_KEYGEN_DROPIN = """[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""


def image_key() -> str:
    spec = {"suite": SUITE, "base": BASE_PACKAGES, "repo": REPO_PACKAGES, "revision": PREPARE_REVISION}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def image_dir() -> Path:
    return CACHE_DIR / "images" / image_key()


def ensure_image(log=print) -> Path:
    """Return the cached image directory (holding `rootfs/` and `debs/`), building it first if needed. Labs booted
    at the same time (Molecule scenarios, tests) wait for one build instead of racing in the same folder."""
    final = image_dir()
    if (final / "ready").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "ready").exists():
            return final
        return _build(final, log)


def _build(final: Path, log) -> Path:
    building = final.with_name(final.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    rootfs, debs = building / "rootfs", building / "debs"
    rootfs.mkdir(parents=True)
    log(f"building lab image {final.name} with debootstrap (about a minute, once)")
    run("debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs),
        *_machine_mirror())
    _download_repo_packages(rootfs, debs)
    _prepare(rootfs)
    _index_local_repo(rootfs, debs)
    (building / "ready").write_text(image_key() + "\n")
    shutil.rmtree(final, ignore_errors=True)
    building.rename(final)
    return final


def _machine_mirror() -> list[str]:
    """The Debian mirror this machine's apt uses, so the image comes from the same place (debootstrap's default
    otherwise)."""
    for source in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if source.exists():
            match = re.search(r"(?:URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+/debian)\s", source.read_text(), re.M)
            if match:
                return [match.group(1)]
    return []


def _download_repo_packages(rootfs: Path, debs: Path) -> None:
    """Resolve REPO_PACKAGES against the image's installed set and keep the .debs as a flat repository."""
    archives = rootfs / "var/cache/apt/archives"
    run("chroot", str(rootfs), "apt-get", "clean")  # drop debootstrap's own downloads first
    run("chroot", str(rootfs), "apt-get", "update", "-qq")
    run("chroot", str(rootfs), "apt-get", "install", "-qq", "--download-only", "--no-install-recommends", "-y",
        *REPO_PACKAGES)
    debs.mkdir(parents=True)
    for deb in archives.glob("*.deb"):
        shutil.move(deb, debs / deb.name)
    index = run("dpkg-scanpackages", "-m", ".", cwd=debs)
    (debs / "Packages").write_text(index.stdout)
    if "Package: etcd-server" not in index.stdout:
        raise LabError("the local package repository has no etcd-server; apt could not download it")


def _index_local_repo(rootfs: Path, debs: Path) -> None:
    """Fill the image's apt lists from the local repository, so hosts can install at once (apt's cache-age checks
    would otherwise take the empty lists of a fresh image as current)."""
    mountpoint = rootfs / "srv/debs"
    run("mount", "--bind", "-o", "ro", str(debs), str(mountpoint))
    try:
        run("chroot", str(rootfs), "apt-get", "update", "-qq")
    finally:
        run("umount", str(mountpoint))


def _prepare(rootfs: Path) -> None:
    """Turn the debootstrap tree into a bootable, SSH-ready, network-less host image."""
    run("chroot", str(rootfs), "apt-get", "clean")
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    (rootfs / "etc/apt/sources.list").write_text("deb [trusted=yes] file:/srv/debs ./\n")
    for extra in (rootfs / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    (rootfs / "srv/debs").mkdir(parents=True, exist_ok=True)
    # Each host gets its own machine-id and SSH host keys at first boot.
    (rootfs / "etc/machine-id").write_text("")
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    dropin = rootfs / "etc/systemd/system/ssh.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "kpy-lab-hostkeys.conf").write_text(SSH_KEYGEN_DROPIN)
    run("chroot", str(rootfs), "systemctl", "enable", "systemd-networkd", "ssh")
    # Units that only make sense on real machines (or fight the machine's own) stay off.
    run("chroot", str(rootfs), "systemctl", "mask", "systemd-resolved", "getty@tty1", "console-getty",
        "systemd-timesyncd", "apt-daily.timer", "apt-daily-upgrade.timer", check=False)
    # An unprivileged user with passwordless sudo, as cloud images have; root logs in with the same key.
    run("chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash", "ansible")
    (rootfs / "etc/sudoers.d/ansible").write_text("ansible ALL=(ALL) NOPASSWD:ALL\n")
    (rootfs / "etc/sudoers.d/ansible").chmod(0o440)
