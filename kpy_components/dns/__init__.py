"""kpy-dns: the cluster DNS add-on (CoreDNS-like), on dnspython.

    records.py  the cluster zone as a name index (Kubernetes DNS specification 1.1.0), updated per Service
    feed.py     Services, EndpointSlices and Namespaces informers -> the index
    answer.py   query bytes -> response bytes: the zone, the forwarder, errors, truncation
    forward.py  upstream resolvers and their TTL-bound answer cache
    server.py   UDP and TCP listeners on asyncio, with the rendered-answer cache in front
    probes.py   /health (8080), /ready (8181), /metrics (9153), as CoreDNS's
    metrics.py  CoreDNS's metric names
    config.py   the KpyDNSConfiguration file
    cli.py      the kpy-dns binary
"""
