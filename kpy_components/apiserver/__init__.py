"""kpy-apiserver: the Kubernetes API over TLS, stored in etcd (or SQLite in a single process)."""
