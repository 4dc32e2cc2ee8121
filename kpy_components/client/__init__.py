"""Client machinery every kpy component uses to talk to the API server (and only through the API):

    kubeconfig.py     ClientConfig from a kubeconfig or the in-cluster service account
    rest.py           async REST client for any ResourceInfo (verbs, patch types, watch streams, retries)
    errors.py         the client's exception tree and predicates (is_not_found, is_conflict, is_gone, ...)
    cache.py          an indexed local store of objects
    informer.py       list+watch kept in a cache, with add/update/delete handlers; a shared informer factory
    workqueue.py      keyed work queue: de-duplication, one worker per key, delayed and rate-limited re-adds
    ratelimit.py      per-key exponential backoff and an overall token bucket
    leaderelection.py Lease-based leader election
    events.py         an event recorder (core/v1 Events with count aggregation)
"""
