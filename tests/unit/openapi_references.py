"""The `$ref`s of an OpenAPI document, shared by the unit tests that check each resolves inside its document."""
from __future__ import annotations


def references(document: dict, prefix: str) -> set[str]:
    """The names every `$ref` anywhere in `document` points at, with `prefix` ("#/components/schemas/" for
    OpenAPI 3, "#/definitions/" for Swagger 2) taken off."""
    found = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                found.add(node["$ref"].removeprefix(prefix))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(document)
    return found
