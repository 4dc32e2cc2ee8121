"""`x-kubernetes-validations` CEL rules of a structural schema, evaluated with cel-python (`celpy`): a maintained
pure-Python CEL implementation (parser, type-checked evaluation, the standard macros has/all/exists/map/filter and
string functions), so kpy needs no native build; cel-expr-python binds Google's C++ runtime instead.

As upstream: each rule sees `self` (the value at its schema level) and, in transition rules on update, `oldSelf`
(rules that name oldSelf are skipped on create and where no old value exists). A rule that is false yields
`<path>: Invalid value: "<schema type>": <message>` (message, else `failed rule: <rule>`); a rule whose evaluation
fails (a missing field without has()) is reported with the evaluation error, never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import celpy

from kpy_components.api import meta
from kpy_components.api.errors import Cause

_KEY = "x-kubernetes-validations"
_REASONS = {"FieldValueForbidden": meta.field_forbidden, "FieldValueRequired": meta.field_required}
_environment = celpy.Environment()


@dataclass
class _Rule:
    text: str
    program: object
    message: str
    field_path: str
    reason: str
    transition: bool


@dataclass
class Rules:
    """Compiled rules of one schema, by the schema node they sit on."""
    node_rules: dict[int, list[_Rule]] = field(default_factory=dict)
    schema: dict = field(default_factory=dict)

    def check(self, obj, old) -> list[Cause]:
        if not self.node_rules:
            return []
        causes: list[Cause] = []
        self._walk(obj, old, self.schema, "", causes)
        return causes

    def _walk(self, value, old, schema: dict, path: str, causes: list[Cause]) -> None:
        if value is None or not isinstance(schema, dict):
            return
        for rule in self.node_rules.get(id(schema), ()):
            if rule.transition and old is None:
                continue
            causes.extend(_evaluate(rule, value, old, schema, path))
        if isinstance(value, dict):
            properties = schema.get("properties") or {}
            additional = schema.get("additionalProperties")
            for name, item in value.items():
                child = properties.get(name, additional if isinstance(additional, dict) else None)
                if child is not None:
                    before = old.get(name) if isinstance(old, dict) else None
                    self._walk(item, before, child, f"{path}.{name}" if path else name, causes)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                # upstream correlates list items for oldSelf only in map/set lists; elsewhere there is none
                self._walk(item, None, schema["items"], f"{path}[{index}]", causes)


def _evaluate(rule: _Rule, value, old, schema: dict, path: str) -> list[Cause]:
    activation = {"self": celpy.json_to_cel(value)}
    if rule.transition:
        activation["oldSelf"] = celpy.json_to_cel(old)
    where = path + rule.field_path if rule.field_path else path
    shown = schema.get("type") or "object"
    try:
        result = rule.program.evaluate(activation)
    except celpy.CELEvalError as error:
        return [meta.field_invalid(where, shown, f"{rule.message or 'failed rule: ' + rule.text}: "
                                   f"evaluation error: {error.args[0] if error.args else error}")]
    if result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
        return []
    message = rule.message or f"failed rule: {rule.text}"
    make = _REASONS.get(rule.reason)
    return [make(where, message)] if make else [meta.field_invalid(where, shown, message)]


def _compile_node(schema: dict, path: str, rules: Rules, problems: list[Cause]) -> None:
    for index, spec in enumerate(schema.get(_KEY) or ()):
        here = f"{path}.{_KEY}[{index}]"
        text = spec.get("rule") if isinstance(spec, dict) else None
        if not text:
            problems.append(meta.field_required(f"{here}.rule"))
            continue
        try:
            program = _environment.program(_environment.compile(text))
        except Exception as error:  # celpy raises its own parse errors; every one is the author's to fix
            problems.append(meta.field_invalid(f"{here}.rule", text, f"compilation failed: {error}"))
            continue
        rules.node_rules.setdefault(id(schema), []).append(
            _Rule(text, program, spec.get("message") or "", spec.get("fieldPath") or "", spec.get("reason") or "",
                  "oldSelf" in text))
    for name, child in (schema.get("properties") or {}).items():
        if isinstance(child, dict):
            _compile_node(child, f"{path}.properties[{name}]", rules, problems)
    for key in ("additionalProperties", "items"):
        if isinstance(schema.get(key), dict):
            _compile_node(schema[key], f"{path}.{key}", rules, problems)


def compile_schema(schema: dict, path: str = "") -> Rules:
    """The rules of a schema (compile errors are checked when the CRD is written: see compile_problems)."""
    rules = Rules(schema=schema or {})
    if schema:
        _compile_node(schema, path, rules, [])
    return rules


def compile_problems(schema: dict, path: str) -> list[Cause]:
    """Rules that do not compile, worded for the CRD that holds them."""
    problems: list[Cause] = []
    if isinstance(schema, dict):
        _compile_node(schema, path, Rules(schema=schema), problems)
    return problems
