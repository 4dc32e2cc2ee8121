"""API server security: authentication, authorization, reviews; `security.build_security` wires them."""
