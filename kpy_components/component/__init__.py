"""The runtime every kpy component binary shares: config reading, health/metrics serving over TLS, leader election,
the command line, and the garbage collector's settings (collector.py)."""
