"""Client machinery every kpy component uses to talk to the API server (and only through the API):

    kubeconfig.py     ClientConfig from a kubeconfig or the in-cluster service account
    rest.py           async REST client for any ResourceInfo (verbs, patch types, watch streams, retries)
    errors.py         the client's exception tree and predicates (is_not_found, is_conflict, is_gone, ...)
                      and ignore_not_found
    cache.py          an indexed local store of objects
    informer.py       list+watch kept in a cache, with add/update/delete handlers; a shared informer factory
    workqueue.py      keyed work queue: de-duplication, one worker per key, delayed and rate-limited re-adds
    ratelimit.py      per-key exponential backoff and an overall token bucket
    leaderelection.py Lease-based leader election
    events.py         an event recorder (core/v1 Events with count aggregation)
"""

from .cache import Indexer, field_index, key_of, split_key
from .errors import (ClientConnectionError, KubeconfigError, ignore_not_found, is_already_exists, is_conflict,
                     is_forbidden, is_gone, is_invalid, is_not_found, is_retryable)
from .events import EventRecorder
from .informer import Informer, SharedInformerFactory
from .kubeconfig import ClientConfig, in_cluster, load_default, load_kubeconfig
from .leaderelection import LeaderElectionConfig, LeaderElector
from .rest import RESTClient, RetryPolicy, WatchEvent
from .workqueue import ShutDown, WorkQueue, run_workers

__all__ = [
    "ClientConfig", "ClientConnectionError", "EventRecorder", "Indexer", "Informer", "KubeconfigError",
    "LeaderElectionConfig", "LeaderElector", "RESTClient", "RetryPolicy", "SharedInformerFactory", "ShutDown",
    "WatchEvent", "WorkQueue", "field_index", "ignore_not_found", "in_cluster", "is_already_exists", "is_conflict", "is_forbidden",
    "is_gone", "is_invalid", "is_not_found", "is_retryable", "key_of", "load_default", "load_kubeconfig",
    "run_workers", "split_key",
]
