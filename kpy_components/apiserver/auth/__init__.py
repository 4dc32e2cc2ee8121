"""API server security: authentication, authorization, reviews and token issuing; `security.SecurityRuntime` wires
them (with admission) into the http.context.Security the server calls."""
