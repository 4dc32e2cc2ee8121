"""Fixtures for the control-loop integration tests: a fresh REAL kpy-apiserver per test module (cluster-scoped
objects such as Nodes do not leak between modules), an admin REST client, the real kubectl of each tested version
(`kubectl`, a fresh discovery cache each), simulated nodes (simnodes.py), and components run in-process without
leader election:

    async with run_component(controller_manager.run, cm_config(["replicaset"]), cluster): ...

Tests are async (anyio on asyncio).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))  # simnodes, for the test modules beside this file

from apiserver.conftest import KUBECTL_DIR, KUBECTL_VERSIONS, APIServerProcess, Kubectl, dev_apiserver  # noqa: E402
from kpy_components.client import (RESTClient, SharedInformerFactory, is_already_exists,  # noqa: E402
                                   is_not_found, load_kubeconfig)
from kpy_components.component.runner import Context  # noqa: E402
from kpy_components.controller_manager import config as cm_config_module  # noqa: E402
from kpy_components.controller_manager import manager  # noqa: E402
from kpy_components.scheduler import cli as scheduler_cli  # noqa: E402
from kpy_components.scheduler import config as scheduler_config  # noqa: E402
from simnodes import SimulatedNodes  # noqa: E402

_names = itertools.count()
_node_names = itertools.count()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> APIServerProcess:
    with dev_apiserver(tmp_path_factory.mktemp("controlloops-apiserver")) as server:
        yield server


@pytest.fixture(params=KUBECTL_VERSIONS, ids=lambda v: f"kubectl-{v}")
def kubectl(request, cluster, tmp_path) -> Kubectl:
    """The real kubectl, each version with a fresh discovery cache, as the module's admin."""
    if not (KUBECTL_DIR / f"kubectl.{request.param}").exists():
        pytest.fail(f"kubectl {request.param} is missing: the tests need the real kubectl")
    return Kubectl(request.param, cluster.admin_kubeconfig, tmp_path / "kubectl-cache")


@pytest.fixture
async def client(cluster):
    async with RESTClient(load_kubeconfig(cluster.admin_kubeconfig), user_agent="controlloops-tests") as rest:
        yield rest


@pytest.fixture
async def namespace(client) -> str:
    """A fresh namespace with its `default` ServiceAccount (created here in case the serviceaccount controller is
    not among those under test)."""
    name = f"cl-{next(_names)}"
    await client.create(client.resource("namespaces"), {"metadata": {"name": name}})
    try:
        await client.create(client.resource("serviceaccounts"), {"metadata": {"name": "default"}}, name)
    except Exception as error:  # noqa: BLE001 - the controller got there first
        if not is_already_exists(error):
            raise
    return name


async def exists(client, info, name: str, namespace: str | None = None) -> bool:
    try:
        await client.get(info, name, namespace)
    except Exception as error:  # noqa: BLE001
        if is_not_found(error):
            return False
        raise
    return True


@pytest.fixture
async def nodes(client):
    """Simulated nodes, started (add them with `await nodes.add("n1", cpu="2")`)."""
    async with SimulatedNodes(client) as simulated:
        yield simulated


def cm_config(controllers: list[str], **fields) -> cm_config_module.ControllerManagerConfig:
    """A controller-manager configuration running exactly `controllers`, with dataclass `fields` replaced."""
    config = cm_config_module.parse({"controllers": controllers}, "test")
    return dataclasses.replace(config, **fields)


@contextlib.asynccontextmanager
async def run_component(run, config, cluster: APIServerProcess, name: str = "component-under-test"):
    """Run a component's work function (`controller_manager.manager.run`, the scheduler's run) in this process
    with the admin kubeconfig, as the runner would while leading; cancelled when the block ends. Yields its
    Context. A crash of the component fails the block."""
    client = RESTClient(load_kubeconfig(cluster.admin_kubeconfig), user_agent=name)
    context = Context(name, f"{name}-test", client, SharedInformerFactory(client), CollectorRegistry())
    task = asyncio.create_task(run(context, config), name=name)
    try:
        yield context
        if task.done() and task.exception() is not None:
            raise task.exception()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await context.close()
        await client.aclose()


@contextlib.asynccontextmanager
async def scheduled_cluster(cluster: APIServerProcess, nodes: SimulatedNodes, controllers: list[str], node_prefix: str,
                            node_count: int = 2):
    """`node_count` simulated nodes of 8 CPUs named `<node_prefix>-<n>`, the default scheduler and the controller
    manager running exactly `controllers`, in this process; yields (node names, the controller manager's Context).
    The nodes are deleted afterwards: the next test's simulated kubelets would not look after them."""
    names = [f"{node_prefix}-{next(_node_names)}" for _ in range(node_count)]
    for name in names:
        await nodes.add(name, cpu="8")
    try:
        async with run_component(scheduler_cli.run, scheduler_config.load(None), cluster, name="default-scheduler"):
            async with run_component(manager.run, cm_config(controllers), cluster,
                                     name="kube-controller-manager") as context:
                yield names, context
    finally:
        for name in names:
            await nodes.client.delete(nodes.nodes_info, name)


async def eventually(predicate, timeout: float = 20.0, interval: float = 0.2, message: str = ""):
    """Await `predicate()` (sync or async) until it returns something truthy; that value, or a failure naming
    `message` and the last value seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while True:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {timeout:g}s: {message or predicate}; last seen: {last!r}")
        await asyncio.sleep(interval)
