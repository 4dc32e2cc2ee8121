"""Streams into containers (exec, attach, port-forward), shared by kpy-apiserver and kpy-kubelet.

    kubectl --(SPDY/3.1, or WebSocket)--> API server --(SPDY/3.1 over mTLS)--> kubelet --(as it came)--> containerd

`upgrade.py` relays an HTTP upgrade byte for byte (every SPDY hop, and WebSockets the runtime speaks itself);
`websocket.py` serves what newer kubectl speak first — the v5 channel protocol (translated to SPDY streams) and the
SPDY-in-WebSocket port-forward tunnel (unwrapped); `spdy.py` is the SPDY/3.1 framing and session the translation needs.
"""
