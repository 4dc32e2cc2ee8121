"""kpy-scheduler: places pods on nodes the way kube-scheduler does, talking to the API server only through the API.

    podinfo.py    per-pod data computed once (requests, ports, tolerations)
    cache.py      NodeInfos with requested resources, pods and host ports; assumed pods; the per-cycle snapshot
    queue.py      activeQ (priority, then arrival), backoffQ, unschedulable pods moved back on cluster events
    framework.py  Status and one interface per extension point; a Profile runs the enabled plugins
    plugins/      one module per plugin, and the name -> factory registry
    config.py     KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) with every problem reported
    messages.py   the FailedScheduling wording ("0/5 nodes are available: ...")
    scheduler.py  schedule_one, asynchronous binding through pods/binding, failure handling
    cli.py        the `kpy-scheduler` command
"""
