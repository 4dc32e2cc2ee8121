"""kpy-controller-manager: the controllers that keep the cluster in its desired state, one module each in
controllers/, all on the shared client layer (kpy_components.client) and component runtime."""
