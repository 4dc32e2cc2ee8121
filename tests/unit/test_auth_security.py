"""SecurityRuntime end to end over the real registry on SQLite: default policy at start, RBAC changes honoured at
once (re-list before a denial, forwarded events) and revocations by the periodic re-list, the Node authorizer's
graph, TokenRequest tokens authenticating, reviews and admission wired in."""
import asyncio
import time

import pytest
from test_admission_chain import api, pod, request  # noqa: F401

from kpy_components.api.errors import APIError
from kpy_components.apiserver.auth.authn import TOKEN_CACHE_SECONDS
from kpy_components.apiserver.auth.policy_cache import _Source
from kpy_components.apiserver.auth.security import SecurityConfig, SecurityConfigError, SecurityRuntime
from kpy_components.apiserver.http.context import User
from kpy_components.pki import keys

pytestmark = pytest.mark.anyio
RBAC = "rbac.authorization.k8s.io"
ALICE = User("alice", ("system:authenticated",))
ADMIN = User("admin", ("system:masters", "system:authenticated"))


class BearerRequest:
    path = "/api/v1/namespaces/app/pods"
    transport = None

    def __init__(self, token):
        self.headers = {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def runtime(api):
    config = SecurityConfig(keys.private_pem(keys.generate("ecdsa-p256")), rbac_resync_seconds=0.05)
    runtime = SecurityRuntime(api, config)
    runtime.report = await runtime.start()
    yield runtime
    await runtime.close()


def _binding(name="alice-edit", role="edit", user="alice"):
    return {"metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "apiGroup": RBAC, "name": user}]}


async def _eventually(check, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_start_reconciles_the_default_policy(runtime, api):
    assert "created clusterroles/cluster-admin" in runtime.report
    assert (await api.get(RBAC, "clusterrolebindings", "", "cluster-admin"))["subjects"][0]["name"] == "system:masters"
    assert runtime.security.bootstrap and runtime.security.bootstrap[0]["kind"] == "ClusterRole"


async def test_masters_and_a_fresh_binding_are_honoured_at_once(runtime, api):
    list_pods = request("list", "pods", "app")
    assert await runtime.authorize(ADMIN, list_pods) == (True, "")
    assert await runtime.authorize(ALICE, list_pods) == (False, "")
    await api.create(RBAC, "clusterrolebindings", "", _binding())
    allowed, reason = await runtime.authorize(ALICE, list_pods)
    assert allowed and reason.startswith('RBAC: allowed by ClusterRoleBinding "alice-edit"')


async def test_removed_binding_is_revoked_by_the_periodic_re_list(runtime, api):
    await api.create(RBAC, "clusterrolebindings", "", _binding())
    assert (await runtime.authorize(ALICE, request("list", "pods", "app")))[0]
    await api.storage.delete(f"/registry/clusterrolebindings.{RBAC}/alice-edit")

    async def revoked():
        return not (await runtime.authorize(ALICE, request("list", "pods", "app")))[0]
    await _eventually(revoked)


async def test_forwarded_events_apply_without_listing(runtime):
    binding = _binding()
    binding["metadata"]["resourceVersion"] = "1"
    runtime.observe(RBAC, "clusterrolebindings", "ADDED", binding)
    assert runtime.authorizers.decide(ALICE, request("get", "pods", "app", "p"))[0]
    runtime.observe(RBAC, "clusterrolebindings", "DELETED", binding)
    assert not runtime.authorizers.decide(ALICE, request("get", "pods", "app", "p"))[0]


async def test_node_sees_secrets_of_a_pod_bound_to_it_once_the_pod_exists(runtime, api):
    node = User("system:node:n1", ("system:nodes", "system:authenticated"))
    secret = request("get", "secrets", "app", "db-password")
    allowed, reason = await runtime.authorize(node, secret)
    assert not allowed and reason == "no relationship found between node 'n1' and this object"
    await api.create("", "pods", "app", pod("db", nodeName="n1",
                                            volumes=[{"name": "s", "secret": {"secretName": "db-password"}}]))
    assert await runtime.authorize(node, secret) == (True, "")


async def test_issued_tokens_authenticate_until_the_pod_is_gone_and_the_token_cache_forgot(runtime, api):
    account = await api.get("", "serviceaccounts", "app", "default")
    created = await api.create("", "pods", "app", pod("job"))
    answer = await runtime.security.issue_token(account, {"spec": {"boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "job", "uid": created["metadata"]["uid"]}}})
    user = await runtime.security.authenticate(BearerRequest(answer["status"]["token"]))
    assert user.name == "system:serviceaccount:app:default"
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("job",)
    await api.storage.delete("/registry/pods/app/job")
    # remembered for the token cache's 10 s, as kube-apiserver does; refused once that has passed
    assert await runtime.security.authenticate(BearerRequest(answer["status"]["token"])) == user
    runtime.authenticator.clock = lambda: time.time() + TOKEN_CACHE_SECONDS + 1
    assert await runtime.security.authenticate(BearerRequest(answer["status"]["token"])) is None
    assert await runtime.security.authenticate(BearerRequest("abcdef.0123456789abcdef")) is None


async def test_reviews_and_admission_are_wired(runtime, api):
    review = runtime.security.virtual[("authorization.k8s.io", "selfsubjectaccessreviews")]
    answer = await review({"spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}}, ADMIN,
                          request("create", "selfsubjectaccessreviews", group="authorization.k8s.io"))
    assert answer["status"]["allowed"] is True
    with pytest.raises(APIError) as caught:
        await runtime.security.admit("CREATE", request("create", "pods", "app"), pod(serviceAccountName="ghost"),
                                     None, ADMIN)
    assert caught.value.message == ('pods "web" is forbidden: error looking up service account app/ghost: '
                                    'serviceaccount "ghost" not found')


async def test_concurrent_denials_share_one_list():
    calls = []

    async def load():
        calls.append(1)
        await asyncio.sleep(0.05)

    now = [0.0]
    source = _Source("test", load, lambda: now[0])
    now[0] = 1.0
    await asyncio.gather(*(source.refresh_after(1.0) for _ in range(5)))
    assert len(calls) == 1
    await source.refresh_after(1.0)  # a list that started after 1.0 already completed
    assert len(calls) == 1
    now[0] = 2.0
    await source.refresh_after(2.0)
    assert len(calls) == 2


def test_config_from_files_names_the_bad_file(tmp_path):
    good = tmp_path / "sa.key"
    good.write_bytes(keys.private_pem(keys.generate("rsa-2048")))
    assert SecurityConfig.from_files(good).audiences == ("https://kubernetes.default.svc.cluster.local",)
    with pytest.raises(SecurityConfigError, match="missing.key: cannot read the service-account key"):
        SecurityConfig.from_files(tmp_path / "missing.key")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(SecurityConfigError, match="junk.pem: not a PEM public or private key"):
        SecurityConfig.from_files(good, (junk,))
