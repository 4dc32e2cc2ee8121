"""On every control-plane host: both services run, answer /healthz on their documented ports over TLS, and keep
/metrics to holders of a cluster client certificate."""
import pytest

testinfra_hosts = ["loops-cp1", "loops-cp2", "loops-cp3"]
PORTS = {"kpy-controller-manager": 10257, "kpy-scheduler": 10259}
PROBE = ("import ssl, urllib.request, urllib.error\n"
         "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
         "try:\n"
         "    print(urllib.request.urlopen('https://127.0.0.1:%d%s', context=ctx, timeout=5).read().decode())\n"
         "except urllib.error.HTTPError as error:\n"
         "    print(error.code)\n")


@pytest.mark.parametrize("service", sorted(PORTS))
def test_service_runs_and_is_healthy(host, service):
    unit = host.service(service)
    assert unit.is_running and unit.is_enabled
    assert host.run("python3 -c %s", PROBE % (PORTS[service], "/healthz")).stdout.strip() == "ok"
    assert host.run("python3 -c %s", PROBE % (PORTS[service], "/metrics")).stdout.strip() == "401"
