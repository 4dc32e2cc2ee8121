"""Storage for the API server: one interface (interface.py), backends for etcd and SQLite, a watch cache."""
