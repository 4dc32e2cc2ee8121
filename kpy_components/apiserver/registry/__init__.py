"""The registry: one generic store over Storage, a strategy per resource, subresources, allocators."""
