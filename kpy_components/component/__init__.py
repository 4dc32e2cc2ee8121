"""The runtime every kpy component binary shares: config reading, health/metrics serving over TLS, leader election
and the command line."""
