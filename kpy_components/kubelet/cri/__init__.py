"""CRI v1 towards the container runtime (containerd's CRI plugin): `api.proto` (the subset of runtime.v1 kpy uses)
and its checked-in stubs (`scripts/gen-cri`), `client.py` the async gRPC client that answers with model.py
observations, and pure request builders: `requests.py` (PodSandboxConfig, ContainerConfig), `dns.py` (a pod's
resolv.conf), `resources.py` (cgroup values and OOM score from requests/limits), `expansion.py` ($(VAR) in
command/args)."""
