"""Action kpy_cluster_ready: site.yml's final gate, once, on the controller and in-process (no module to ship, no
round trip to a host; the API is read with the admin certificate).

Always, each waited for up to its deadline:
  1. every host of `hosts` is a Node with condition Ready=True;
  2. the kube-dns Service has endpoints, all ready, and each answers kubernetes.default.svc.<domain> (A) when asked
     over UDP straight from the controller: kpy-dns serves on its host's address, so no pod is needed.
Then the pod check (a short-lived pod resolving the name through the Service address, as any pod does: containerd,
CNI, the kubelet, kpy-proxy's rules and kpy-dns together), removed again whatever happens, when `pod_check` is
`always`, or when it is `auto` and
  - this run changed anything on a host (any of the registered results named in `watched` is changed), or
  - the record file does not say that a pod passed this check on this very cluster (the kube-system namespace's
    UID, which a rebuilt cluster does not share), or
  - the controller got no answer from any kpy-dns endpoint (a controller outside the nodes' network; when some
    answer, a silent one fails the gate).
A passing pod check is recorded; writing a new record is the only change this action reports.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from ansible.plugins.action import ActionBase

from kpy_components.client.oneshot import api_request

POLL_SECONDS = 1.0
DNS_TIMEOUT_SECONDS = 2.0


def missing_ready_nodes(nodes: list[dict], hosts: list[str]) -> list[str]:
    """The hosts among `hosts` that are not registered Nodes with condition Ready=True, sorted."""
    ready = {node["metadata"]["name"] for node in nodes
             if any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (node.get("status") or {}).get("conditions") or ())}
    return sorted(set(hosts) - ready)


def dns_endpoints(slices: list[dict]) -> tuple[list[str], list[str]]:
    """(ready addresses, addresses not ready) of the kube-dns EndpointSlices. An absent `ready` condition counts as
    ready (the EndpointSlice API's rule for consumers)."""
    ready, unready = [], []
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or ():
            is_ready = (endpoint.get("conditions") or {}).get("ready", True) is not False
            (ready if is_ready else unready).extend(endpoint.get("addresses") or ())
    return sorted(ready), sorted(unready)


def changed_results(hostvars, hosts: list[str], watched: list[str]) -> list[str]:
    """'host: result' for each registered result named in `watched` that reports changed on one of `hosts`."""
    found = []
    for host in hosts:
        variables = hostvars[host]
        for name in watched:
            result = variables[name] if name in variables else None
            if isinstance(result, dict) and result.get("changed"):
                found.append(f"{host}: {name}")
    return found


def pod_check_reasons(mode: str, changed: list[str], recorded_uid: str | None, cluster_uid: str,
                      unanswered: list[str]) -> list[str]:
    """Why the pod check must run (empty: it may be skipped)."""
    if mode == "always":
        return ["cluster_ready_pod_check is always"]
    reasons = []
    if changed:
        reasons.append("this run changed " + ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else ""))
    if recorded_uid != cluster_uid:
        reasons.append("no pod has passed the check on this cluster yet")
    if unanswered:
        reasons.append("the controller got no DNS answer from " + ", ".join(unanswered))
    return reasons


class GateFailed(Exception):
    pass


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        self._args = self._task.args
        args = self._args
        try:
            hosts = list(args["hosts"])
            self._wait("every host to be a Ready node", int(args["nodes_wait_seconds"]), lambda: self._nodes(hosts))
            answered, unanswered = self._wait("the cluster DNS to answer", int(args["dns_wait_seconds"]), self._dns)
            cluster_uid = self._get("/api/v1/namespaces/kube-system")["metadata"]["uid"]
            record = Path(args["record"])
            changed = changed_results(task_vars["hostvars"], hosts, list(args.get("watched") or ()))
            reasons = pod_check_reasons(args.get("pod_check", "auto"), changed, self._recorded_uid(record),
                                        cluster_uid, unanswered)
            if reasons:
                self._pod_check()
                result["changed"] = self._record(record, cluster_uid)
            result["pod_check"] = reasons
        except GateFailed as error:
            return {**result, "failed": True, "msg": str(error)}
        result["msg"] = (f"{len(hosts)} nodes Ready; kube-dns answered from {', '.join(answered) or 'no endpoint'}; "
                         + (f"a pod resolved kubernetes.default ({'; '.join(reasons)})" if reasons else
                            "pod check skipped (nothing changed; a pod passed it on this cluster before)"))
        return result

    # The API, with the admin certificate.
    def _request(self, method: str, path: str, body: dict | None = None) -> tuple[int | None, object]:
        args = self._args
        return api_request(f"{args['api_url']}{path}", method, body, ca=args["ca"], cert=args["cert"], key=args["key"],
                           timeout=10)

    def _get(self, path: str) -> dict:
        status, body = self._request("GET", path)
        if status != 200:
            raise GateFailed(f"GET {self._args['api_url']}{path}: {status or 'no answer'} {body}")
        return body

    def _wait(self, what: str, seconds: int, attempt):
        """attempt() until it returns (done, value, why-not) with done true, for at most `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            done, value, why = attempt()
            if done:
                return value
            if time.monotonic() >= deadline:
                raise GateFailed(f"gave up after {seconds} s waiting for {what}: {why}")
            time.sleep(POLL_SECONDS)

    def _nodes(self, hosts: list[str]):
        status, body = self._request("GET", "/api/v1/nodes")
        if status != 200:
            return False, None, f"GET /api/v1/nodes: {status or 'no answer'} {body}"
        missing = missing_ready_nodes(body.get("items") or [], hosts)
        return not missing, None, f"not Ready nodes: {', '.join(missing)}"

    def _dns(self):
        status, body = self._request(
            "GET", "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices"
                   "?labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns")
        if status != 200:
            return False, None, f"reading kube-dns's EndpointSlices: {status or 'no answer'} {body}"
        ready, unready = dns_endpoints(body.get("items") or [])
        if unready or not ready:
            return False, None, (f"kube-dns endpoints not ready: {', '.join(unready)}" if unready
                                 else "the kube-dns Service has no endpoints")
        name = f"kubernetes.default.svc.{self._args['domain']}."
        answered, unanswered, wrong = [], [], []
        for address in ready:
            try:
                reply = dns.query.udp(dns.message.make_query(name, "A"), address, timeout=DNS_TIMEOUT_SECONDS)
            except (dns.exception.Timeout, OSError):
                unanswered.append(address)
                continue
            if reply.rcode() == dns.rcode.NOERROR and any(r.rdtype == dns.rdatatype.A for r in reply.answer):
                answered.append(address)
            else:
                wrong.append(f"{address} answered {dns.rcode.to_text(reply.rcode())} without an A record")
        if wrong:
            return False, None, f"{name} did not resolve: {'; '.join(wrong)}"
        if answered and unanswered:  # the controller reaches kpy-dns, so an endpoint that stays silent is broken
            return False, None, f"no DNS answer from {', '.join(unanswered)} (others answered)"
        return True, (answered, unanswered), ""

    # The pod check.
    def _pod_check(self) -> None:
        status, pod = self._request("POST", "/api/v1/namespaces/default/pods", dict(self._args["probe_pod"]))
        if status != 201:
            raise GateFailed(f"could not create the DNS check pod: {status or 'no answer'} {pod}")
        path = f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}"
        try:
            phase = self._wait(f"the DNS check pod default/{pod['metadata']['name']} to finish",
                               int(self._args["dns_wait_seconds"]),
                               lambda: self._pod_phase(path))
        finally:
            self._request("DELETE", path, {"gracePeriodSeconds": 0})
        if phase != "Succeeded":
            raise GateFailed(f"a pod could not resolve kubernetes.default through the cluster DNS "
                             f"({self._args['cluster_dns']}): pod default/{pod['metadata']['name']} {phase}")

    def _pod_phase(self, path: str):
        status, body = self._request("GET", path)
        phase = ((body or {}).get("status") or {}).get("phase", "") if status == 200 else ""
        return phase in ("Succeeded", "Failed"), phase, f"pod phase {phase or status}"

    # The record of a passing pod check.
    @staticmethod
    def _recorded_uid(record: Path) -> str | None:
        try:
            return json.loads(record.read_text()).get("kube_system_uid")
        except (OSError, ValueError, AttributeError):
            return None

    def _record(self, record: Path, cluster_uid: str) -> bool:
        if self._recorded_uid(record) == cluster_uid:
            return False
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"kube_system_uid": cluster_uid}) + "\n")
        return True
