"""Bringing a whole lab up and down: image, bridge, SSH key, hosts, inventory."""
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kpy_components.lab import inventory, network
from kpy_components.lab.image import ensure_image
from kpy_components.lab.machine import Machine
from kpy_components.lab.paths import STATE_DIR
from kpy_components.lab.run import LabError, run
from kpy_components.lab.spec import LabSpec

BOOT_TIMEOUT = 90


def lab_dir(name: str) -> Path:
    return STATE_DIR / name


def load_spec(name: str) -> LabSpec | None:
    """The spec a running lab was brought up with, or None when there is no such lab."""
    try:
        return LabSpec(**json.loads((lab_dir(name) / "lab.json").read_text()))
    except FileNotFoundError:
        return None


def up(spec: LabSpec, inventory_path: Path | None, log=print) -> list[Machine]:
    existing = load_spec(spec.name)
    if existing and existing != spec:
        raise LabError(f"lab {spec.name!r} is already up with a different shape ({existing}); "
                       f"run `kpy-lab down --lab {spec.name}` first")
    _check_subnet_free(spec)
    image = ensure_image(log)
    directory = lab_dir(spec.name)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lab.json").write_text(json.dumps(spec.__dict__))
    key = _ssh_key(directory)
    network.create_bridge(spec)
    machines = [Machine(spec, host, directory) for host in spec.hosts]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(machines)) as pool:
        list(pool.map(lambda m: m.start(image, key.with_suffix(".pub").read_text()), machines))
        deadline = time.monotonic() + BOOT_TIMEOUT
        list(pool.map(lambda m: m.wait_for_ssh(deadline), machines))
        list(pool.map(Machine.enable_pod_cgroups, machines))
    log(f"lab {spec.name}: {len(machines)} hosts answering on SSH after {time.monotonic() - started:.1f}s")
    if inventory_path:
        inventory_path.parent.mkdir(parents=True, exist_ok=True)
        inventory_path.write_text(inventory.render(spec, key))
        log(f"wrote {inventory_path}")
    return machines


def down(name: str, log=print) -> None:
    spec = load_spec(name)
    if spec is None:
        log(f"lab {name}: nothing to remove")
        return
    directory = lab_dir(name)
    machines = [Machine(spec, host, directory) for host in spec.hosts]
    with ThreadPoolExecutor(max_workers=len(machines)) as pool:
        list(pool.map(Machine.stop, machines))
    network.delete_bridge(spec)
    shutil.rmtree(directory)
    if not any(STATE_DIR.iterdir()):
        STATE_DIR.rmdir()
    log(f"lab {name}: removed {len(machines)} hosts, their overlays and cgroups, and bridge {spec.bridge}")


def status(name: str) -> list[tuple[Machine, bool]]:
    spec = load_spec(name)
    if spec is None:
        return []
    return [(m, m.pid is not None) for m in (Machine(spec, h, lab_dir(name)) for h in spec.hosts)]


def labs() -> list[str]:
    return sorted(p.name for p in STATE_DIR.glob("*") if (p / "lab.json").exists()) if STATE_DIR.exists() else []


def _check_subnet_free(spec: LabSpec) -> None:
    for other in labs():
        other_spec = load_spec(other)
        if other != spec.name and other_spec and other_spec.subnet_index == spec.subnet_index:
            raise LabError(f"subnet {spec.network} is used by lab {other!r}; pick another --subnet-index")


def _ssh_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    if not key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kpy-lab", "-f", str(key))
    return key
