"""kpy-proxy: kpy's kube-proxy, in nftables mode (the model: kube-proxy's nftables proxier, GA in 1.33).

    model.py      Service + EndpointSlice dicts -> service ports and the endpoints each kind of traffic may use
    rules.py      service ports -> the wanted nftables ruleset (chains, maps, sets): pure, no kernel
    script.py     rulesets -> `nft -f` scripts: a full sync, or a partial one (what changed between two rulesets)
    nft.py        runs those scripts with the `nft` binary (one transaction per script) and reads what exists
    conntrack_flows.py  stale UDP conntrack entries to delete after a sync (pure), and deleting them
    conntrack.py  conntrack sysctls set at start
    proxier.py    the sync loop: informers mark changes, one sync at a time, at most every minSyncPeriod
    config.py     the KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1)
    serving.py    /healthz and /livez (10256) and /metrics (10249), plain HTTP as upstream
    cli.py        the kpy-proxy entry point

This package's __init__ imports nothing, so the pure modules (model, rules, script, nft) run on a bare python3 too.
"""
