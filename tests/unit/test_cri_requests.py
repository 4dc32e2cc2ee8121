"""CRI request building: upstream kubelet's rules for $(VAR) expansion, pod DNS, cgroup values, OOM scores,
security contexts, labels and paths. Cases are worked out from the upstream sources' arithmetic and tests."""
import pytest

from kpy_components.kubelet.cri import api_pb2, dns, requests, resources
from kpy_components.kubelet.cri.expansion import command_and_args, expand
from kpy_components.kubelet.model import ContainerConfigError, Mount

GiB = 1 << 30


@pytest.mark.parametrize("text, expected", [
    ("$(A)", "a"),
    ("x$(A)y$(B)z", "xaybz"),
    ("$(MISSING)", "$(MISSING)"),  # undefined stays as written
    ("$$(A)", "$(A)"),  # escaped
    ("$$$(A)", "$a"),  # escaped $ then a reference
    ("$$$$(A)", "$$(A)"),
    ("$(A", "$(A"),  # unclosed
    ("$(A$(B)", "$(A$(B)"),  # the name runs to the first ')': "A$(B" is undefined
    ("$A", "$A"),  # a $ that opens no expression
    ("cost: 5$", "cost: 5$"),  # trailing $
    ("$()", "$()"),  # empty name, undefined
    ("$(EMPTY)!", "!"),  # defined as empty
    ("$(NESTED)", "$(A)"),  # values are not expanded again
])
def test_expansion(text, expected):
    assert expand(text, {"A": "a", "B": "b", "EMPTY": "", "NESTED": "$(A)"}) == expected


def test_command_and_args_expand_from_the_resolved_environment_last_value_winning():
    container = {"command": ["/bin/$(TOOL)"], "args": ["--port=$(PORT)", "$$(PORT)", "$(NOPE)"]}
    command, args = command_and_args(container, [("TOOL", "old"), ("PORT", "80"), ("TOOL", "server")])
    assert command == ["/bin/server"]
    assert args == ["--port=80", "$(PORT)", "$(NOPE)"]
    assert command_and_args({}, []) == ([], [])  # no command/args: the image's ENTRYPOINT and CMD stay


def pod(**spec) -> dict:
    return {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec}}


HOST = dns.ResolvConf(servers=("192.0.2.53",), searches=("corp.example", "example"), options=("rotate",))
SETTINGS = dns.DNSSettings(cluster_dns=("10.96.0.10",), cluster_domain="cluster.local", host=HOST)


def dns_of(spec: dict, settings=SETTINGS) -> tuple[list, list, list]:
    config = dns.pod_dns_config(pod(**spec), settings)
    return list(config.servers), list(config.searches), list(config.options)


def test_cluster_first_dns():
    assert dns_of({}) == (["10.96.0.10"],
                          ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "example"],
                          ["ndots:5"])


@pytest.mark.parametrize("spec, kind", [
    ({"dnsPolicy": "ClusterFirst"}, "cluster"),
    ({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, "host"),  # hostNetwork falls back to the host's
    ({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True}, "cluster"),
    ({"dnsPolicy": "ClusterFirstWithHostNet"}, "cluster"),
    ({"dnsPolicy": "Default"}, "host"),
    ({"dnsPolicy": "None"}, "none"),
])
def test_dns_policies(spec, kind):
    assert dns.policy_of(spec, SETTINGS) == kind
    servers, _, options = dns_of(spec)
    expected = {"cluster": (["10.96.0.10"], ["ndots:5"]), "host": (["192.0.2.53"], ["rotate"]), "none": ([], [])}
    assert (servers, options) == expected[kind]


def test_cluster_first_without_cluster_dns_uses_the_hosts():
    assert dns_of({}, dns.DNSSettings(host=HOST)) == (["192.0.2.53"], ["corp.example", "example"], ["rotate"])


def test_pod_dns_config_is_merged_in():
    servers, searches, options = dns_of({"dnsConfig": {
        "nameservers": ["10.96.0.10", "1.1.1.1"],
        "searches": ["extra.test", "svc.cluster.local"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}, {"name": "timeout", "value": "1"}]}})
    assert servers == ["10.96.0.10", "1.1.1.1"]  # appended, duplicates dropped
    assert searches == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "example",
                        "extra.test"]
    assert options == ["ndots:2", "edns0", "timeout:1"]  # same-name options overridden


def test_dns_none_takes_only_the_pods_config():
    assert dns_of({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.0.0.1"], "searches": ["a.test"]}}) == (
        ["10.0.0.1"], ["a.test"], [])


def test_search_list_is_cut_to_upstreams_limits():
    many = dns.DNSSettings(cluster_dns=("10.96.0.10",), host=dns.ResolvConf(searches=tuple(f"d{i}.test" for i in range(40))))
    _, searches, _ = dns_of({}, many)
    assert len(searches) == dns.MAX_SEARCH_DOMAINS and searches[:3] == ["shop.svc.cluster.local", "svc.cluster.local",
                                                                          "cluster.local"]
    long = dns.DNSSettings(cluster_dns=("10.96.0.10",), host=dns.ResolvConf(searches=tuple(
        f"{i}{'x' * 250}.test" for i in range(10))))
    _, searches, _ = dns_of({}, long)
    assert len(" ".join(searches)) <= dns.MAX_SEARCH_CHARS and len(searches) == 3 + 7


def test_parse_resolv_conf():
    text = """# generated
nameserver 192.0.2.1
nameserver 192.0.2.2 ; second
search old.example
search corp.example. example
options ndots:2 rotate
options timeout:1
"""
    assert dns.parse_resolv_conf(text) == dns.ResolvConf(("192.0.2.1", "192.0.2.2"), ("corp.example", "example"),
                                                         ("ndots:2", "rotate", "timeout:1"))


@pytest.mark.parametrize("milli, shares", [(0, 2), (1, 2), (2, 2), (100, 102), (250, 256), (1000, 1024),
                                           (1500, 1536), (300_000, 262144)])
def test_cpu_shares(milli, shares):
    assert resources.milli_cpu_to_shares(milli) == shares


@pytest.mark.parametrize("milli, quota", [(0, 0), (1, 1000), (9, 1000), (10, 1000), (11, 1100), (500, 50000),
                                          (2500, 250000)])
def test_cpu_quota(milli, quota):
    assert resources.milli_cpu_to_quota(milli) == quota


def container(requests_=None, limits=None, **extra) -> dict:
    return {"name": "app", "image": "busybox",
            "resources": {k: v for k, v in (("requests", requests_), ("limits", limits)) if v is not None}, **extra}


def linux(c: dict, memory_capacity=8 * GiB, **kwargs) -> api_pb2.LinuxContainerResources:
    return resources.linux_resources(pod(containers=[c]), c, memory_capacity=memory_capacity, **kwargs)


def test_linux_resources_from_requests_and_limits():
    r = linux(container({"cpu": "250m", "memory": "64Mi"}, {"cpu": "1.5", "memory": "128Mi"}))
    assert (r.cpu_shares, r.cpu_period, r.cpu_quota, r.memory_limit_in_bytes) == (256, 100000, 150000, 128 << 20)


def test_cpu_request_defaults_to_the_limit_and_quantities_round_up():
    r = linux(container(None, {"cpu": "0.0001", "memory": "1.5Gi"}))
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (2, 1000, 3 * GiB // 2)  # 0.1m rounds up to 1m
    r = linux(container(None, {"cpu": "2"}))
    assert (r.cpu_shares, r.cpu_quota) == (2048, 200000)


def test_no_resources_means_minimum_shares_and_no_limits():
    r = linux(container())
    assert (r.cpu_shares, r.cpu_period, r.cpu_quota, r.memory_limit_in_bytes) == (2, 100000, 0, 0)
    r = linux(container(), cpu_cfs_quota=False)
    assert (r.cpu_period, r.cpu_quota) == (0, 0)


@pytest.mark.parametrize("c, score", [
    (container(), 1000),  # BestEffort
    (container({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}), -997),  # Guaranteed
    (container({"memory": "1Gi"}), 1000 - 1000 * GiB // (8 * GiB)),  # Burstable: 875
    (container({"cpu": "100m"}), 999),  # Burstable without a memory request: never 1000
    (container({"memory": "8Gi"}), 3),  # at most the node's memory: 0, raised to 3
    (container({"memory": "7.99Gi"}), 3),
    (container({"memory": "100Mi"}), 1000 - 1000 * (100 << 20) // (8 * GiB)),  # 988
])
def test_oom_score_adj_by_qos_class(c, score):
    assert resources.oom_score_adj(pod(containers=[c]), c, 8 * GiB) == score


def test_node_critical_pods_score_as_guaranteed():
    c = container()
    assert resources.oom_score_adj(pod(containers=[c], priorityClassName="system-node-critical"), c, GiB) == -997


def test_one_burstable_container_makes_the_whole_pod_burstable():
    guaranteed = container({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})
    other = {**container({"memory": "2Gi"}), "name": "side"}
    spec_pod = pod(containers=[guaranteed, other])
    assert resources.oom_score_adj(spec_pod, guaranteed, 8 * GiB) == 1000 - 1000 * GiB // (8 * GiB)


def test_a_bad_quantity_names_the_container_and_field():
    with pytest.raises(ContainerConfigError, match=r"container 'app': resources\.limits\.memory: .*'lots'"):
        linux(container(None, {"memory": "lots"}))


FULL_POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"},
                 "annotations": {"note": "x"}},
    "spec": {
        "hostname": "web-0", "subdomain": "web", "terminationGracePeriodSeconds": 30,
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000],
                            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
        "containers": [
            {"name": "app", "image": "busybox:1.35", "workingDir": "/srv", "stdin": True, "tty": True,
             "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81},
                       {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"}],
             "securityContext": {"runAsUser": 0, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                 "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                                 "seccompProfile": {"type": "Localhost", "localhostProfile": "audit.json"}}},
            {"name": "side", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 8080}],
             "securityContext": {"privileged": True, "allowPrivilegeEscalation": True}},
        ],
    },
}


def test_pod_sandbox_config():
    config = requests.pod_sandbox_config(FULL_POD, dns_settings=SETTINGS, attempt=2,
                                         cgroup_parent="/kubepods/burstable/podu-1")
    assert (config.metadata.name, config.metadata.namespace, config.metadata.uid, config.metadata.attempt) == (
        "web-0", "shop", "u-1", 2)
    assert config.hostname == "web-0"
    assert config.log_directory == "/var/log/pods/shop_web-0_u-1"
    assert dict(config.labels) == {"app": "web", "io.kubernetes.pod.name": "web-0",
                                   "io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.uid": "u-1"}
    assert dict(config.annotations) == {"note": "x"}
    assert [(m.protocol, m.container_port, m.host_port, m.host_ip) for m in config.port_mappings] == [
        (api_pb2.TCP, 80, 8080, ""), (api_pb2.UDP, 53, 5353, "127.0.0.1")]  # hostPorts only, once each
    linux = config.linux
    assert linux.cgroup_parent == "/kubepods/burstable/podu-1"
    assert dict(linux.sysctls) == {"net.ipv4.ip_unprivileged_port_start": "0"}
    context = linux.security_context
    assert (context.run_as_user.value, context.run_as_group.value) == (1000, 3000)
    assert list(context.supplemental_groups) == [2000, 4000]  # fsGroup first
    assert context.privileged  # one container is privileged
    assert context.seccomp.profile_type == api_pb2.SecurityProfile.RuntimeDefault
    options = context.namespace_options
    assert (options.network, options.pid, options.ipc) == (api_pb2.POD, api_pb2.CONTAINER, api_pb2.POD)


def test_host_namespaces_and_hostname():
    config = requests.pod_sandbox_config(pod(hostNetwork=True, hostPID=True, hostIPC=True), dns_settings=SETTINGS)
    options = config.linux.security_context.namespace_options
    assert (options.network, options.pid, options.ipc) == (api_pb2.NODE, api_pb2.NODE, api_pb2.NODE)
    assert config.hostname == ""  # the node's
    assert not config.linux.security_context.HasField("run_as_user")
    shared = requests.pod_sandbox_config(pod(shareProcessNamespace=True), dns_settings=SETTINGS)
    assert shared.linux.security_context.namespace_options.pid == api_pb2.POD


def test_hostname_rules():
    assert requests.hostname(pod(), "cluster.local") == "web-0"
    long = {"metadata": {"name": "a" * 60 + "-.-bcdef", "namespace": "ns"}, "spec": {}}
    assert requests.hostname(long, "cluster.local") == "a" * 60  # cut to 63, trailing '-' and '.' dropped
    fqdn = pod(hostname="db", subdomain="dbs", setHostnameAsFQDN=True)
    assert requests.hostname(fqdn, "cluster.local") == "db.dbs.shop.svc.cluster.local"
    assert requests.hostname(pod(hostname="db", setHostnameAsFQDN=True), "cluster.local") == "db"  # no subdomain
    too_long = pod(hostname="d" * 40, subdomain="s" * 10, setHostnameAsFQDN=True)
    with pytest.raises(requests.SandboxConfigError, match="FQDN .* is too long .*64 characters is the max, 74 characters requested"):
        requests.hostname(too_long, "cluster.local")


def test_container_config():
    app = FULL_POD["spec"]["containers"][0]
    config = requests.container_config(
        FULL_POD, app, attempt=3, image_ref="sha256:abc", envs=[("A", "1"), ("B", "2")],
        mounts=[Mount("/data", "/var/lib/kubelet/pods/u-1/volumes/data", read_only=True,
                      propagation="HostToContainer"), Mount("/cache", "/tmp/cache")],
        memory_capacity=8 * GiB)
    assert (config.metadata.name, config.metadata.attempt) == ("app", 3)
    assert (config.image.image, config.image.user_specified_image) == ("sha256:abc", "busybox:1.35")
    assert (config.working_dir, config.stdin, config.stdin_once, config.tty) == ("/srv", True, False, True)
    assert [(e.key, e.value) for e in config.envs] == [("A", "1"), ("B", "2")]
    assert [(m.container_path, m.host_path, m.readonly, m.propagation) for m in config.mounts] == [
        ("/data", "/var/lib/kubelet/pods/u-1/volumes/data", True, api_pb2.PROPAGATION_HOST_TO_CONTAINER),
        ("/cache", "/tmp/cache", False, api_pb2.PROPAGATION_PRIVATE)]
    assert config.log_path == "app/3.log"
    assert dict(config.labels) == {"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "web-0",
                                   "io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.uid": "u-1"}
    annotations = dict(config.annotations)
    assert annotations[requests.RESTART_COUNT_ANNOTATION] == "3"
    assert annotations[requests.TERMINATION_MESSAGE_PATH_ANNOTATION] == "/dev/termination-log"
    assert annotations[requests.TERMINATION_MESSAGE_POLICY_ANNOTATION] == "File"
    assert annotations[requests.TERMINATION_GRACE_PERIOD_ANNOTATION] == "30"
    assert annotations[requests.IMAGE_ANNOTATION] == "busybox:1.35"
    assert annotations[requests.HASH_ANNOTATION] == requests.container_hash(app)
    context = config.linux.security_context
    assert (context.run_as_user.value, context.run_as_group.value) == (0, 3000)  # container's user, pod's group
    assert (context.readonly_rootfs, context.no_new_privs, context.privileged) == (True, True, False)
    assert (list(context.capabilities.add_capabilities), list(context.capabilities.drop_capabilities)) == (
        ["NET_ADMIN"], ["ALL"])
    assert list(context.supplemental_groups) == [2000, 4000]
    assert (context.seccomp.profile_type, context.seccomp.localhost_ref) == (
        api_pb2.SecurityProfile.Localhost, "/var/lib/kubelet/seccomp/audit.json")


def test_container_security_defaults():
    side = FULL_POD["spec"]["containers"][1]
    context = requests.container_security_context(FULL_POD, side)
    assert (context.privileged, context.no_new_privs) == (True, False)  # allowPrivilegeEscalation true
    assert context.run_as_user.value == 1000  # the pod's
    assert context.seccomp.profile_type == api_pb2.SecurityProfile.Unconfined  # no profile: unconfined
    bare = requests.container_security_context(pod(), {"name": "c"})
    assert not bare.no_new_privs  # unset allowPrivilegeEscalation leaves it off
    assert not bare.HasField("run_as_user") and not bare.HasField("run_as_group")


def test_the_spec_hash_follows_the_spec():
    a = {"name": "app", "image": "busybox", "args": ["1"]}
    assert requests.container_hash(a) == requests.container_hash(dict(reversed(list(a.items()))))
    assert requests.container_hash(a) != requests.container_hash({**a, "args": ["2"]})
