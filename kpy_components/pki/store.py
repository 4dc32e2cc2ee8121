"""The PKI directory on the controller, with writes held back until `commit` (so check mode writes nothing).

Reads see pending writes, so a kubeconfig rendered after its certificate was re-issued embeds the new one.
Commit writes each file atomically (temporary file in the same directory, then rename) with its mode set before
any content is written, so a key is never readable by others, not even for a moment.
"""
import hashlib
import os
import stat
import tempfile
from pathlib import Path

SECRET = 0o600  # private keys, kubeconfigs with embedded keys, the encryption config
PUBLIC = 0o644  # certificates, public keys
_DIRECTORY = 0o700  # the tree holds private keys


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._pending: dict[str, tuple[bytes, int]] = {}
        self._chmods: dict[str, int] = {}

    def read(self, relative: str) -> bytes | None:
        if relative in self._pending:
            return self._pending[relative][0]
        try:
            return (self.root / relative).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, relative: str, data: bytes, mode: int) -> None:
        self._pending[relative] = (data, mode)
        self._chmods.pop(relative, None)

    def ensure_mode(self, relative: str, mode: int) -> bool:
        """Stage a mode fix for an existing file; True when its mode differs."""
        if relative in self._pending:
            return False
        try:
            current = stat.S_IMODE((self.root / relative).stat().st_mode)
        except FileNotFoundError:
            return False
        if current == mode:
            return False
        self._chmods[relative] = mode
        return True

    def checksums(self) -> dict[str, str]:
        """SHA-1 (what Ansible compares files by) of every file in the tree as it is, or will be after commit."""
        on_disk = (p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith("."))
        paths = {str(p.relative_to(self.root)) for p in on_disk} | set(self._pending)
        return {p: hashlib.sha1(self.read(p)).hexdigest() for p in sorted(paths)}

    def commit(self) -> None:
        for relative, (data, mode) in self._pending.items():
            _atomic_write(self.root / relative, data, mode)
        for relative, mode in self._chmods.items():
            os.chmod(self.root / relative, mode)
        self._pending.clear()
        self._chmods.clear()


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    _make_dirs(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _make_dirs(directory: Path) -> None:
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        new.mkdir(mode=_DIRECTORY)
        os.chmod(new, _DIRECTORY)  # mkdir's mode is filtered through the umask
