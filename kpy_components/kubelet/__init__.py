"""kpy-kubelet: the node agent. Registers its Node, runs the pods bound to it through CRI v1 (containerd), reports
their status, and serves the kubelet API (logs, exec, attach, port-forward) on 10250.

Layout: `cri/` the gRPC client and request building; `model.py` the values the parts exchange; `volumes.py`,
`env.py` what a container gets; `probes.py`, `backoff.py`, `status.py` how a pod is judged and reported;
`streaming.py` exec/attach/port-forward; `node.py`, `network.py`, `pods.py`, `server.py`, `cli.py` the agent.
"""
