"""status.typeChecking of ValidatingAdmissionPolicies, as kube-apiserver's type-checking controller writes it, as far
as cel-python can check: every expression (validations' expression and messageExpression, matchConditions,
variables, auditAnnotations' valueExpression) is compiled, and an expression that does not compile, or that names a
variable policies do not declare, gets an expressionWarning `{fieldRef, warning}` worded as CEL's errors
(`ERROR: <input>:1:5: undeclared reference to 'obj' (in container '')` with the expression and a caret below).
cel-python has no type checker: field names and types against the matched kinds' schemas are not checked.

Run inside the API server: follows the policies and writes status (with observedGeneration) whenever a policy's
generation is newer than the one its status was computed for.
"""
from __future__ import annotations

import asyncio
import logging

import celpy
from lark import Token, Tree

from kpy_components.api import errors, meta
from kpy_components.apiserver.registry.following import follow, settle_each

from .webhooks import GROUP

log = logging.getLogger(__name__)
PLURAL = "validatingadmissionpolicies"
DECLARED = frozenset({"object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer"})
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_environment = celpy.Environment()
_RECHECK = 5.0  # seconds before a policy whose status could not be written is tried again


def expressions(spec: dict) -> list[tuple[str, str]]:
    """(fieldRef, expression) of every CEL expression of a policy spec, in upstream's fieldRef form."""
    out = []
    for field, keys in (("validations", ("expression", "messageExpression")), ("matchConditions", ("expression",)),
                        ("variables", ("expression",)), ("auditAnnotations", ("valueExpression",))):
        for index, item in enumerate(spec.get(field) or []):
            for key in keys:
                if isinstance(item, dict) and item.get(key):
                    out.append((f"spec.{field}[{index}].{key}", str(item[key])))
    return out


def _snippet(expression: str, line: int, column: int) -> str:
    text = expression.splitlines()[line - 1] if expression.splitlines() else ""
    return f"\n | {text}\n | {'.' * max(column - 1, 0)}^"


def _undeclared(tree: Tree) -> list[Token]:
    """Identifiers an expression reads that are neither declared variables nor bound by a macro."""
    bound, used = set(), []
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg" and len(node.children) >= 3 and str(node.children[1]) in _MACROS:
            first = next(iter(node.children[2].scan_values(lambda v: isinstance(v, Token) and v.type == "IDENT")),
                         None)
            if first is not None:
                bound.add(str(first))
        if node.data == "primary":
            used.extend(c for c in node.children if isinstance(c, Tree) and c.data == "ident")
    tokens = (ident.children[0] for ident in used)
    return sorted((t for t in tokens if str(t) not in DECLARED and str(t) not in bound),
                  key=lambda t: (t.line, t.column))


def check(expression: str) -> str | None:
    """The warning for one expression, or None when it compiles and reads only declared variables."""
    try:
        tree = _environment.compile(expression)
    except celpy.CELParseError as error:
        line, column = getattr(error, "line", 1) or 1, getattr(error, "column", 1) or 1
        return f"ERROR: <input>:{line}:{column}: Syntax error" + _snippet(expression, line, column)
    problems = [f"ERROR: <input>:{token.line}:{token.column}: undeclared reference to '{token}' (in container '')"
                + _snippet(expression, token.line, token.column) for token in _undeclared(tree)]
    return "\n".join(problems) or None


def type_checking(spec: dict) -> dict:
    warnings = [{"fieldRef": ref, "warning": warning} for ref, expression in expressions(spec)
                if (warning := check(expression)) is not None]
    return {"expressionWarnings": warnings} if warnings else {}


class PolicyTypeChecker:
    """Keeps every policy's status.typeChecking and status.observedGeneration current."""

    def __init__(self, api):
        self.api = api
        self.known: dict[str, dict] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def run(self) -> None:
        store = self.api.store(GROUP, PLURAL)
        listed = await store.list(resource_version="0")
        for policy in listed["items"]:
            self.known[meta.name_of(policy)] = policy
            self._queue.put_nowait(meta.name_of(policy))
        worker = asyncio.create_task(self._work(), name="policy-type-checker-worker")
        try:
            await follow(store, self.known, self._queue.put_nowait, listed["metadata"]["resourceVersion"])
        finally:
            worker.cancel()

    async def _work(self) -> None:
        await settle_each(self._queue, self.sync, "the type checking of ValidatingAdmissionPolicy", _RECHECK)

    async def sync(self, name: str) -> None:
        policy = self.known.get(name)
        if policy is None:
            return
        generation = (policy.get("metadata") or {}).get("generation")
        status = dict(policy.get("status") or {})
        if generation is not None and status.get("observedGeneration") == generation:
            return
        status["observedGeneration"] = generation
        status["typeChecking"] = type_checking(policy.get("spec") or {})
        try:
            await self.api.update_status(GROUP, PLURAL, "", dict(policy, status=status))
        except errors.APIError as error:
            if error.code not in (404, 409):  # gone, or changed since: its next event brings it back
                raise
