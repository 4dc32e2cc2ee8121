"""Label and field selectors with Kubernetes' syntax, semantics and error wording.

Label selectors (k8s.io/apimachinery/pkg/labels): `a=b,c!=d,e in (x,y),f notin (z),g,!h,i>3,j<5`; or LabelSelector
dicts (matchLabels / matchExpressions with In, NotIn, Exists, DoesNotExist). `!=` and `notin` also match objects
without the key. The empty selector matches everything; a missing (None) LabelSelector dict matches nothing.

Field selectors (k8s.io/apimachinery/pkg/fields): `a=b,c==d,e!=f` (comma = AND, backslash escapes `,` `=` `!` `\\`),
checked against the fields the resource supports (`ResourceInfo.field_selectors`): anything else is a 400
`field label not supported: <field>`, as Kubernetes answers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import APIError, bad_request
from .resources import ResourceInfo

# --- label selectors ---------------------------------------------------------------------------------------------

_SET_OPS = {"in", "notin"}
_ORDER_OPS = {"gt", "lt"}
_NAME_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Requirement:
    """One term. `op` is one of =, ==, !=, in, notin, exists, !, gt, lt; `values` is sorted for set operators."""
    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "==", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        return number > int(self.values[0]) if self.op == "gt" else number < int(self.values[0])

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in _SET_OPS:
            return f"{self.key} {self.op} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a nil LabelSelector: matches no object

    def matches(self, labels: dict | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        """Kubernetes' canonical form: requirements sorted by key, values sorted."""
        return ",".join(str(r) for r in self.requirements)


def _label_error(message: str) -> APIError:
    return bad_request(f"unable to parse requirement: {message}")


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX_RE.match(prefix)):
        raise _label_error(f'key: Invalid value: "{key}": prefix part must be a lowercase RFC 1123 subdomain')
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        raise _label_error(f'key: Invalid value: "{key}": name part must consist of alphanumeric characters, '
                           "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', "
                           "or 'my.name',  or '123-abc', regex used for validation is "
                           "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def _check_value(key: str, value: str) -> None:
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise _label_error(f'values[0][{key}]: Invalid value: "{value}": a valid label must be an empty string or '
                           "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                           "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                           "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def requirement(key: str, op: str, values=()) -> Requirement:
    """A validated Requirement (keys and values as Kubernetes checks them); APIError 400 when invalid."""
    _check_key(key)
    values = tuple(values)
    if op in _SET_OPS and not values:
        raise _label_error(f"for 'in', 'notin' operators, values set can't be empty")
    if op in ("=", "==", "!=") and len(values) != 1:
        raise _label_error("exact-match compatibility requires one single value")
    if op in ("exists", "!") and values:
        raise _label_error("values set must be empty for exists and does not exist")
    if op in _ORDER_OPS:
        if len(values) != 1 or not re.fullmatch(r"-?\d+", values[0]):
            raise _label_error(f"for 'Gt', 'Lt' operators, the value must be an integer")
    else:
        for value in values:
            _check_value(key, value)
    return Requirement(key, op, tuple(sorted(set(values))) if op in _SET_OPS else values)


def _selector(requirements: list[Requirement]) -> LabelSelector:
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


# Tokens of the string form: identifiers run until whitespace or one of the special characters.
_TOKEN_RE = re.compile(r"\s*(==|!=|=|!|\(|\)|,|>|<|[^\s=!(),<>]+)")


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            break  # only trailing whitespace is left
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def parse_label_selector(text: str | None) -> LabelSelector:
    """The string form as clients send it in `labelSelector=`; APIError 400 naming what could not be parsed."""
    tokens = _tokens(text or "")
    requirements, i = [], 0

    def expect(what: str) -> str:
        nonlocal i
        if i >= len(tokens):
            raise _label_error(f"found '', expected: {what}")
        i += 1
        return tokens[i - 1]

    while i < len(tokens):
        token = expect("identifier")
        if token == "!":
            key = expect("identifier after '!'")
            requirements.append(requirement(key, "!"))
        else:
            key = token
            if key in ("=", "==", "!=", "(", ")", ",", ">", "<"):
                raise _label_error(f"found '{key}', expected: !, identifier, or 'end of string'")
            if i >= len(tokens) or tokens[i] == ",":
                requirements.append(requirement(key, "exists"))
            else:
                op = expect("operator")
                if op in ("=", "==", "!="):
                    has_value = i < len(tokens) and tokens[i] not in (",",)
                    requirements.append(requirement(key, op, [expect("value")] if has_value else [""]))
                elif op in (">", "<"):
                    requirements.append(requirement(key, "gt" if op == ">" else "lt", [expect("value")]))
                elif op in _SET_OPS:
                    if expect("'('") != "(":
                        raise _label_error(f"found '{tokens[i - 1]}', expected: '('")
                    values = []
                    while True:
                        value = expect("',', ')' or identifier")
                        if value == ")":
                            break
                        if value == ",":
                            continue
                        values.append(value)
                    requirements.append(requirement(key, op, values))
                else:
                    raise _label_error(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(tokens):
            if tokens[i] != ",":
                raise _label_error(f"found '{tokens[i]}', expected: ',' or 'end of string'")
            i += 1
            if i == len(tokens):
                raise _label_error("found '', expected: identifier after ','")
    return _selector(requirements)


_EXPRESSION_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_dict(selector: dict | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None matches nothing, {} matches everything."""
    if selector is None:
        return LabelSelector(nothing=True)
    requirements = [requirement(k, "=", [v]) for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        operator = expression.get("operator")
        if operator not in _EXPRESSION_OPS:
            raise _label_error(f'"{operator}" is not a valid label selector operator')
        requirements.append(requirement(expression.get("key", ""), _EXPRESSION_OPS[operator],
                                        expression.get("values") or []))
    return _selector(requirements)


def format_labels(labels: dict | None) -> str:
    """labels.FormatLabels: `a=b,c=d` sorted by key, `<none>` when empty (services' SELECTOR, nodeSelector)."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels)) if labels else "<none>"


def format_label_selector(selector: dict | None) -> str:
    """metav1.FormatLabelSelector: the canonical string, `<none>` when it selects nothing or everything."""
    try:
        text = str(label_selector_from_dict(selector))
    except APIError:
        return "<error>"
    return text or "<none>"


# --- field selectors ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldTerm:
    field: str
    op: str  # "=" (also for "==") or "!="
    value: str


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str, whole: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=!":
                raise bad_request(f"invalid field selector: invalid escape sequence in '{whole}'")
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _find_operator(term: str) -> tuple[int, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return i, op
        i += 1
    return None


# Fields whose value is not the plain dotted path of the JSON object, per resource (Kubernetes' GetAttrs).
def _bool_field(path: str):
    return lambda obj: "true" if _dotted(obj, path) is True else "false"


def _int_field(path: str):
    return lambda obj: str(_dotted(obj, path) or 0)


def _event_source(obj: dict) -> str:
    return (obj.get("source") or {}).get("component") or obj.get("reportingComponent") or ""


def _pod_ip(obj: dict) -> str:
    ips = (obj.get("status") or {}).get("podIPs") or []
    return ips[0].get("ip", "") if ips else (obj.get("status") or {}).get("podIP", "")


_SPECIAL_FIELDS = {
    "pods": {"spec.hostNetwork": _bool_field("spec.hostNetwork"), "status.podIP": _pod_ip},
    "nodes": {"spec.unschedulable": _bool_field("spec.unschedulable")},
    "events": {"source": _event_source},
    "replicationcontrollers": {"status.replicas": _int_field("status.replicas")},
    "replicasets.apps": {"status.replicas": _int_field("status.replicas")},
    "jobs.batch": {"status.successful": _int_field("status.succeeded")},
    # events.k8s.io/v1 names the core Event fields differently.
    "events.events.k8s.io": {
        **{f"involvedObject.{f}": (lambda f: lambda o: _text(_dotted(o, f"regarding.{f}")))(f)
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "source": lambda o: (o.get("deprecatedSource") or {}).get("component") or o.get("reportingController", ""),
        "reportingComponent": lambda o: o.get("reportingController", ""),
    },
}


def _dotted(obj: dict, path: str):
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_value(info: ResourceInfo | None, obj: dict, field: str) -> str:
    """The string a field selector compares for `field` of `obj` (missing fields compare as "")."""
    special = _SPECIAL_FIELDS.get(info.qualified, {}).get(field) if info else None
    return special(obj) if special else _text(_dotted(obj, field))


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...] = ()
    info: ResourceInfo | None = None

    def matches(self, obj: dict) -> bool:
        for term in self.terms:
            equal = field_value(self.info, obj, term.field) == term.value
            if equal != (term.op == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.terms

    def exact(self, field: str) -> str | None:
        """The value the selector requires `field` to equal (e.g. metadata.name for a single-object watch)."""
        return next((t.value for t in self.terms if t.field == field and t.op == "="), None)

    def __str__(self) -> str:
        def escape(text: str) -> str:
            return re.sub(r"([\\,=!])", r"\\\1", text)
        return ",".join(f"{t.field}{t.op}{escape(t.value)}" for t in self.terms)


def parse_field_selector(text: str | None, info: ResourceInfo | None = None) -> FieldSelector:
    """Parse `fieldSelector=`; with `info`, reject fields the resource does not support (400, Kubernetes' words)."""
    terms = []
    for raw in _split_unescaped(text or "", ","):
        if not raw.strip():
            continue
        found = _find_operator(raw)
        if found is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{raw}'")
        at, op = found
        field = raw[:at].strip()
        value = _unescape(raw[at + len(op):], text or "")
        if info is not None and field not in info.field_selectors:
            raise bad_request(f"field label not supported: {field}")
        terms.append(FieldTerm(field, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(terms), info)
