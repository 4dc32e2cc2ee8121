"""The API server's HTTP layer: aiohttp app, routing, handlers, watches, discovery, OpenAPI, health."""
