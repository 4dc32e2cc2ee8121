"""A container's environment resolved as upstream's kubelet does it."""
import base64

import pytest

from kpy_components.kubelet.env import resolve_env, service_env
from kpy_components.kubelet.model import ContainerConfigError

pytestmark = pytest.mark.anyio


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Source:
    def __init__(self, configmaps=None, secrets=None):
        self.configmaps, self.secrets = configmaps or {}, secrets or {}
        self.reads = []

    async def configmap(self, namespace, name):
        self.reads.append(("configmap", namespace, name))
        data = self.configmaps.get((namespace, name))
        return None if data is None else {"metadata": {"name": name, "namespace": namespace}, "data": data}

    async def secret(self, namespace, name):
        data = self.secrets.get((namespace, name))
        return None if data is None else {"metadata": {"name": name}, "data": {k: b64(v) for k, v in data.items()}}


def pod(container: dict, **spec) -> dict:
    return {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web", "tier": "front"}, "annotations": {"note": 'say "hi"'}},
            "spec": {"nodeName": "w1", "serviceAccountName": "builder", "containers": [container], **spec}}


def service(name, namespace, ip, *ports):
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": ip, "ports": list(ports)}}


KUBERNETES = service("kubernetes", "default", "10.32.0.1", {"name": "https", "port": 443, "protocol": "TCP"})


async def resolve(container, source=None, services=(), **kwargs):
    p = pod(container, **kwargs.pop("spec", {}))
    return await resolve_env(p, container, source or Source(), services, **kwargs)


async def test_values_expand_earlier_variables_and_escapes():
    container = {"name": "app", "env": [
        {"name": "A", "value": "one"},
        {"name": "B", "value": "$(A)-two"},
        {"name": "C", "value": "$$(A) $(LATER) $(A"},
        {"name": "EMPTY", "value": ""},
        {"name": "LATER", "value": "x"},
        {"name": "SVC", "value": "$(KUBERNETES_SERVICE_HOST)"},
    ]}
    env = (await resolve(container, services=[KUBERNETES])).as_dict()
    assert env["B"] == "one-two"
    assert env["C"] == "$(A) $(LATER) $(A"  # escaped, not yet defined, unclosed
    assert env["EMPTY"] == ""
    assert env["SVC"] == "10.32.0.1"


async def test_config_map_and_secret_key_refs_and_their_errors():
    source = Source(configmaps={("shop", "cfg"): {"mode": "fast"}}, secrets={("shop", "creds"): {"pw": "s3cr3t"}})
    container = {"name": "app", "env": [
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}},
        {"name": "OPT1", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
        {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "x", "optional": True}}},
    ]}
    env = (await resolve(container, source)).as_dict()
    assert env["MODE"] == "fast" and env["PW"] == "s3cr3t"
    assert "OPT1" not in env and "OPT2" not in env

    cases = [
        ({"configMapKeyRef": {"name": "cfg", "key": "nope"}}, "couldn't find key nope in ConfigMap shop/cfg"),
        ({"configMapKeyRef": {"name": "gone", "key": "x"}}, 'configmap "gone" not found'),
        ({"secretKeyRef": {"name": "creds", "key": "user"}}, "couldn't find key user in Secret shop/creds"),
        ({"secretKeyRef": {"name": "gone", "key": "x"}}, 'secret "gone" not found'),
    ]
    for value_from, message in cases:
        with pytest.raises(ContainerConfigError) as caught:
            await resolve({"name": "app", "env": [{"name": "X", "valueFrom": value_from}]}, source)
        assert str(caught.value) == message


async def test_env_from_with_prefix_skips_invalid_names_with_one_event_and_env_overrides():
    source = Source(configmaps={("shop", "cfg"): {"good": "1", "1bad": "2", "also bad": "3", "dot.ok": "4"}},
                    secrets={("shop", "creds"): {"token": "t"}})
    container = {"name": "app",
                 "envFrom": [{"configMapRef": {"name": "cfg"}}, {"prefix": "S_", "secretRef": {"name": "creds"}},
                             {"configMapRef": {"name": "missing", "optional": True}}],
                 "env": [{"name": "good", "value": "override"}]}
    resolved = await resolve(container, source)
    env = resolved.as_dict()
    assert env == {"good": "override", "dot.ok": "4", "S_token": "t"}
    assert [(e.type, e.reason, e.message) for e in resolved.events] == [
        ("Warning", "InvalidEnvironmentVariableNames",
         "Keys [1bad, also bad] from the EnvFrom configMap shop/cfg were skipped since they are considered invalid "
         "environment variable names.")]
    with pytest.raises(ContainerConfigError, match='configmap "missing" not found'):
        await resolve({"name": "app", "envFrom": [{"configMapRef": {"name": "missing"}}]}, source)


async def test_a_prefix_can_make_a_key_valid():
    source = Source(configmaps={("shop", "cfg"): {"1x": "v"}})
    resolved = await resolve({"name": "app", "envFrom": [{"prefix": "P_", "configMapRef": {"name": "cfg"}}]},
                             source)
    assert resolved.as_dict() == {"P_1x": "v"} and resolved.events == []


async def test_objects_are_read_once_per_resolution():
    source = Source(configmaps={("shop", "cfg"): {"a": "1", "b": "2"}})
    container = {"name": "app", "env": [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b"}}}]}
    await resolve(container, source)
    assert source.reads == [("configmap", "shop", "cfg")]


async def test_field_refs():
    refs = {"NAME": "metadata.name", "NS": "metadata.namespace", "UID": "metadata.uid",
            "APP": "metadata.labels['app']", "NONE": "metadata.labels['absent']", "LABELS": "metadata.labels",
            "NOTE": "metadata.annotations['note']", "ANN": "metadata.annotations", "NODE": "spec.nodeName",
            "SA": "spec.serviceAccountName", "HOST": "status.hostIP", "HOSTS": "status.hostIPs",
            "IP": "status.podIP", "IPS": "status.podIPs"}
    container = {"name": "app", "env": [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}}
                                        for k, v in refs.items()]}
    env = (await resolve(container, pod_ips=["10.200.1.5", "fd00::5"], host_ips=["10.213.0.21"])).as_dict()
    assert env == {"NAME": "web-1", "NS": "shop", "UID": "u-1", "APP": "web", "NONE": "",
                   "LABELS": 'app="web"\ntier="front"', "NOTE": 'say "hi"', "ANN": 'note="say \\"hi\\""',
                   "NODE": "w1", "SA": "builder", "HOST": "10.213.0.21", "HOSTS": "10.213.0.21",
                   "IP": "10.200.1.5", "IPS": "10.200.1.5,fd00::5"}
    with pytest.raises(ContainerConfigError, match="unsupported fieldPath: spec.schedulerName"):
        await resolve({"name": "app", "env": [{"name": "X", "valueFrom": {"fieldRef":
                                                                           {"fieldPath": "spec.schedulerName"}}}]})


async def test_resource_field_refs_round_up_and_default_limits_to_allocatable():
    container = {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "100Mi"},
                                              "limits": {"cpu": "1500m"}},
                 "env": [{"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                         {"name": "CPU_REQ_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                                                  "divisor": "1m"}}},
                         {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                         {"name": "MEM_REQ_MI", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory",
                                                                                   "divisor": "1Mi"}}},
                         {"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
                         {"name": "EPH_REQ", "valueFrom": {"resourceFieldRef": {
                             "containerName": "app", "resource": "requests.ephemeral-storage"}}}]}
    env = (await resolve(container, node_allocatable={"cpu": "2", "memory": "4Gi"})).as_dict()
    assert env == {"CPU_LIMIT": "2", "CPU_REQ_M": "250", "CPU_REQ": "1", "MEM_REQ_MI": "100",
                   "MEM_LIMIT": str(4 * 1024 ** 3), "EPH_REQ": "0"}
    with pytest.raises(ContainerConfigError, match="unsupported container resource : limits.gpu"):
        await resolve({"name": "app", "env": [{"name": "X", "valueFrom": {"resourceFieldRef":
                                                                           {"resource": "limits.gpu"}}}]})


def test_service_variables_docker_link_style():
    web = service("web-front", "shop", "10.32.0.20", {"port": 80}, {"name": "metrics", "port": 9090,
                                                                      "protocol": "UDP"})
    env = service_env([web, KUBERNETES], "shop", True)
    assert env["WEB_FRONT_SERVICE_HOST"] == "10.32.0.20"
    assert env["WEB_FRONT_SERVICE_PORT"] == "80"
    assert env["WEB_FRONT_SERVICE_PORT_METRICS"] == "9090"
    assert env["WEB_FRONT_PORT"] == "tcp://10.32.0.20:80"
    assert env["WEB_FRONT_PORT_80_TCP"] == "tcp://10.32.0.20:80"
    assert env["WEB_FRONT_PORT_80_TCP_PROTO"] == "tcp"
    assert env["WEB_FRONT_PORT_80_TCP_PORT"] == "80"
    assert env["WEB_FRONT_PORT_80_TCP_ADDR"] == "10.32.0.20"
    assert env["WEB_FRONT_PORT_9090_UDP"] == "udp://10.32.0.20:9090"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert len([k for k in env if k.startswith("WEB_FRONT")]) == 3 + 1 + 4 * 2


def test_service_selection_rules():
    own = service("db", "shop", "10.32.0.30", {"port": 5432})
    other_ns = service("cache", "elsewhere", "10.32.0.40", {"port": 6379})
    headless = service("peers", "shop", "None", {"port": 7000})
    no_ip = service("pending", "shop", "", {"port": 1})
    env = service_env([own, other_ns, headless, no_ip, KUBERNETES], "shop", True)
    assert {k.split("_")[0] for k in env} == {"DB", "KUBERNETES"}
    links_off = service_env([own, KUBERNETES], "shop", False)
    assert {k.split("_")[0] for k in links_off} == {"KUBERNETES"}
    # a pod in `default` sees the master service once; one named like it in the pod's namespace replaces it
    shadow = service("kubernetes", "shop", "10.32.0.99", {"port": 8443})
    assert service_env([KUBERNETES, shadow], "shop", True)["KUBERNETES_SERVICE_HOST"] == "10.32.0.99"
    assert service_env([shadow, KUBERNETES], "shop", True)["KUBERNETES_SERVICE_HOST"] == "10.32.0.99"
    v6 = service("v6", "shop", "fd00::10", {"port": 80})
    assert service_env([v6], "shop", True)["V6_PORT"] == "tcp://[fd00::10]:80"


async def test_explicit_variables_win_over_service_variables_and_links_can_be_disabled():
    own = service("db", "shop", "10.32.0.30", {"port": 5432})
    container = {"name": "app", "env": [{"name": "DB_SERVICE_HOST", "value": "mine"}]}
    env = (await resolve(container, services=[own, KUBERNETES])).as_dict()
    assert env["DB_SERVICE_HOST"] == "mine" and env["DB_SERVICE_PORT"] == "5432"
    env = (await resolve({"name": "app"}, services=[own, KUBERNETES], spec={"enableServiceLinks": False})).as_dict()
    assert "DB_SERVICE_HOST" not in env and env["KUBERNETES_SERVICE_HOST"] == "10.32.0.1"
