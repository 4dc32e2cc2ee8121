"""A real `kpy-apiserver --dev DIR --secure-port PORT` process on 127.0.0.1 (one per test session), and the real
kubectl binaries (1.27 and 1.33, each with a fresh --cache-dir) pointed at it with the admin kubeconfig.

The server runs with its real security (x509 users, RBAC with the default policy, admission).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from kpy_components.apiserver import dev
from processes import stop_process

KUBECTL_DIR = Path(os.path.realpath(shutil.which("kubectl") or "/usr/bin/kubectl")).parent
KUBECTL_VERSIONS = ("1.27", "1.33")
START_TIMEOUT = 30.0  # seconds until /readyz answers ok
_names = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class APIServerProcess:
    directory: Path
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def admin_kubeconfig(self) -> Path:
        return self.directory / dev.ADMIN_KUBECONFIG

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ssl_context(self, user: str | None = "admin") -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.directory / "ca.crt"))
        if user:
            context.load_cert_chain(self.directory / f"{user}.crt", self.directory / f"{user}.key")
        return context

    def get(self, path: str, user: str | None = "admin", accept: str = "application/json") -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, context=self.ssl_context(user), timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for a client certificate of `user` in `groups`, signed by the server's dev CA."""
        dev.client_certificate(self.directory, user, user, groups)
        return dev.kubeconfig_for(self.directory, user, self.port)


def _wait_ready(server: APIServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"kpy-apiserver exited with {server.process.returncode}:\n{server.log.read_text()}")
        try:
            status, _ = server.get("/readyz", user=None)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"kpy-apiserver not ready after {START_TIMEOUT}s:\n{server.log.read_text()}")


@contextlib.contextmanager
def running_apiserver(directory: Path, port: int, *arguments: str):
    """A kpy-apiserver process started with `arguments`, ready; stopped (SIGTERM) when the block ends."""
    log = directory / "apiserver.log"
    command = [str(Path(sys.executable).parent / "kpy-apiserver"), *arguments]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    server = APIServerProcess(directory, port, process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        stop_process(process, timeout=15)


@contextlib.contextmanager
def dev_apiserver(directory: Path):
    """`kpy-apiserver --dev directory` on a free port, ready; stopped when the block ends."""
    port = free_port()
    with running_apiserver(directory, port, "--dev", str(directory), "--secure-port", str(port)) as server:
        yield server


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory) -> APIServerProcess:
    with dev_apiserver(tmp_path_factory.mktemp("apiserver")) as server:
        yield server


class Kubectl:
    """One kubectl binary with its own fresh discovery cache, run against a kubeconfig."""

    def __init__(self, version: str, kubeconfig: Path, cache_dir: Path):
        self.version, self.kubeconfig, self.cache_dir = version, kubeconfig, cache_dir
        self.binary = KUBECTL_DIR / f"kubectl.{version}"

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]

    def __call__(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30) -> Result:
        done = subprocess.run(self.command(*args), input=input, capture_output=True, text=True, timeout=timeout)
        result = Result(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            pytest.fail(f"kubectl.{self.version} {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return result

    def as_user(self, kubeconfig: Path) -> Kubectl:
        return Kubectl(self.version, kubeconfig, self.cache_dir.parent / f"{self.cache_dir.name}-{kubeconfig.stem}")


@pytest.fixture(scope="module", params=KUBECTL_VERSIONS, ids=lambda v: f"kubectl-{v}")
def kubectl(request, apiserver, tmp_path_factory) -> Kubectl:
    binary = KUBECTL_DIR / f"kubectl.{request.param}"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: the tests need the real kubectl {request.param}")
    return Kubectl(request.param, apiserver.admin_kubeconfig, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture
def namespace(kubectl) -> str:
    """A fresh namespace for one test, created through kubectl (`create namespace`)."""
    name = f"t{kubectl.version.replace('.', '')}-{next(_names)}"
    result = kubectl("create", "namespace", name)
    assert result.stdout.strip() == f"namespace/{name} created"
    return name

