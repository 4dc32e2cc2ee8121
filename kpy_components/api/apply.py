"""Server-side apply and metadata.managedFields, after k8s.io/apiserver's field manager and structured-merge-diff.

Field sets are kept as Python sets of paths; a path is a tuple of fieldsV1 tokens: `f:<field>` (a struct or map
field), `k:{"name":"web"}` (an element of an associative list, keyed by its list-map keys, JSON with sorted keys) and
`v:<json>` (an element of a set such as finalizers). fieldsV1 is the same tree as JSON, with `.` marking a node that
is itself a member when it also has members below it.

- `apply(live, applied, manager, force)`: merges the applied configuration into the live object (associative lists
  merge by their keys, atomic lists and structs are replaced, maps merge), removes what this applier applied before
  and no longer applies (unless another manager owns it), and records the applier's set as an `Apply` entry. A field
  owned by another manager whose value the apply would change is a conflict: 409 worded as Kubernetes words it,
  unless `force`, which takes the field over.
- `record_update(old, new, manager)`: an ordinary write (create/update/patch): the writer's `Update` entry gains what
  it changed, other managers lose it, and fields that disappeared leave every set.
List semantics come from `patch.SCHEMA` (the one table kpy keeps of them).
"""
from __future__ import annotations

import json

from .errors import APIError
from .meta import deep_copy, now_rfc3339
from .patch import SCHEMA, ListField, field_type, root_type

# Metadata the API server owns: never part of any manager's set (fieldmanager's stripMeta).
_SYSTEM_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"}
_KEY_DEFAULTS = {"protocol": "TCP"}  # list-map key fields Kubernetes defaults (ports)
# Struct fields Go never omits: an Update that creates them does not own the struct itself (no "." entry).
_ALWAYS_PRESENT = {"metadata", "spec", "status", "template", "strategy", "updateStrategy", "jobTemplate"}

Path = tuple


# --- paths -------------------------------------------------------------------------------------------------------

def _element_key(item: dict, meta: ListField) -> str:
    key = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in meta.keys if k in item or k in _KEY_DEFAULTS}
    return "k:" + json.dumps(key, separators=(",", ":"), sort_keys=True)


def _value_key(value) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"), sort_keys=True)


def _is_associative(meta, value) -> bool:
    return isinstance(meta, ListField) and bool(meta.keys) and all(isinstance(v, dict) for v in value)


def _is_set(meta) -> bool:
    return isinstance(meta, ListField) and meta.set_


def _atomic(schema) -> bool:
    return isinstance(schema, dict) and schema.get("__atomic__", False)


def _collect(value, schema, prefix: Path, out: dict, update: bool, field: str = "") -> None:
    """Fill `out` with path -> value for every member path of value."""
    if isinstance(value, dict) and not _atomic(schema):
        if (update and prefix and field not in _ALWAYS_PRESENT) or not value:
            out[prefix] = value
        for key, child in value.items():
            if not prefix and key in ("apiVersion", "kind"):
                continue
            if prefix == ("f:metadata",) and key in _SYSTEM_META:
                continue
            _collect(child, field_type(schema if isinstance(schema, dict) else None, key), prefix + (f"f:{key}",),
                     out, update, key)
    elif isinstance(value, list) and _is_associative(schema, value):
        item_type = SCHEMA.get(schema.item, {}) if schema.item else None
        for item in value:
            element = prefix + (_element_key(item, schema),)
            out[element] = item
            for key, child in item.items():
                _collect(child, field_type(item_type, key), element + (f"f:{key}",), out, update, key)
    elif isinstance(value, list) and _is_set(schema):
        out.update((prefix + (_value_key(v),), v) for v in value)
    else:
        out[prefix] = value


def field_values(obj: dict | None, kind: str, update: bool = False) -> dict[Path, object]:
    """Every path `obj` sets (system metadata excluded) with its value. `update=True` also lists the maps an update
    creates."""
    out: dict[Path, object] = {}
    if obj:
        _collect(obj, root_type(kind), (), out, update)
    out.pop((), None)
    return out


def field_set(obj: dict | None, kind: str, update: bool = False) -> set[Path]:
    return set(field_values(obj, kind, update))


def _find(node, token: str, schema):
    """The child of node named by token (None when absent)."""
    if token.startswith("f:"):
        return node.get(token[2:]) if isinstance(node, dict) else None
    if not isinstance(node, list):
        return None
    for item in node:
        if token.startswith("k:") and isinstance(item, dict) and isinstance(schema, ListField) \
                and _element_key(item, schema) == token:
            return item
        if token.startswith("v:") and _value_key(item) == token:
            return item
    return None


def _walk(obj, path: Path, kind: str):
    """(value at path, found)."""
    node, schema = obj, root_type(kind)
    for token in path:
        node_schema = schema
        child = _find(node, token, node_schema)
        if child is None:
            return None, False
        if token.startswith("f:"):
            schema = field_type(node_schema if isinstance(node_schema, dict) else None, token[2:])
        elif token.startswith("k:"):
            schema = SCHEMA.get(node_schema.item, {}) if node_schema.item else None
        node = child
    return node, True


def _remove(obj: dict, path: Path, kind: str) -> None:
    parent, found = _walk(obj, path[:-1], kind)
    if not found:
        return
    token = path[-1]
    if token.startswith("f:") and isinstance(parent, dict):
        parent.pop(token[2:], None)
    elif isinstance(parent, list):
        list_schema = _schema_at(path[:-1], kind)
        parent[:] = [item for item in parent if _find([item], token, list_schema) is None]


def _schema_at(path: Path, kind: str):
    schema = root_type(kind)
    for token in path:
        if token.startswith("f:"):
            schema = field_type(schema if isinstance(schema, dict) else None, token[2:])
        elif token.startswith("k:"):
            schema = SCHEMA.get(schema.item, {}) if isinstance(schema, ListField) and schema.item else None
    return schema


def path_string(path: Path) -> str:
    """structured-merge-diff's path notation: `.spec.template.spec.containers[name="web"].image`."""
    out = []
    for token in path:
        if token.startswith("f:"):
            out.append("." + token[2:])
        elif token.startswith("k:"):
            key = json.loads(token[2:])
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]")
        else:
            out.append(f"[={token[2:]}]")
    return "".join(out)


# --- fieldsV1 <-> sets -------------------------------------------------------------------------------------------

def to_fields_v1(paths: set[Path]) -> dict:
    """The fieldsV1 tree of a set ("." first where a member also has members below it, as Kubernetes writes it;
    tokens in order). One pass over the paths builds the tree; a second orders it and adds the "." marks."""
    root: dict = {}
    members: set[int] = set()  # ids of the tree nodes that are members themselves
    for path in paths:
        node = root
        for token in path:
            node = node.setdefault(token, {})
        members.add(id(node))

    def marked(node: dict) -> dict:
        tree = {".": {}} if node and id(node) in members else {}
        for token in sorted(node):
            tree[token] = marked(node[token])
        return tree

    return marked(root)


def from_fields_v1(tree: dict, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for token, child in (tree or {}).items():
        if token == ".":
            paths.add(prefix)
            continue
        path = prefix + (token,)
        if not child:
            paths.add(path)
        else:
            paths |= from_fields_v1(child, path)
    return paths


# --- managers ----------------------------------------------------------------------------------------------------

def _identity(entry: dict) -> tuple:
    version = "" if entry.get("operation") == "Apply" else entry.get("apiVersion", "")
    return entry.get("manager", ""), entry.get("operation", ""), version, entry.get("subresource", "")


def _managers(obj: dict | None) -> dict[tuple, tuple[dict, set]]:
    managers = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        managers[_identity(entry)] = (entry, from_fields_v1(entry.get("fieldsV1") or {}))
    return managers


def _write_managers(obj: dict, managers: dict[tuple, tuple[dict, set]], before: dict[tuple, set] = None) -> None:
    """Store the managers' sets as managedFields; `before` (identity -> set as read) spares re-encoding the sets
    that did not change."""
    entries = []
    for identity, (entry, paths) in managers.items():
        if not paths:
            continue
        unchanged = before is not None and before.get(identity) == paths and "fieldsV1" in entry
        fields = entry["fieldsV1"] if unchanged else to_fields_v1(paths)
        entries.append({**{k: v for k, v in entry.items() if k != "fieldsV1"}, "fieldsType": "FieldsV1",
                        "fieldsV1": fields})
    entries.sort(key=lambda e: (e.get("operation", ""), e.get("time", ""), e.get("manager", ""),
                                e.get("apiVersion", ""), e.get("subresource", "")))
    metadata = obj.setdefault("metadata", {})
    if entries:
        metadata["managedFields"] = entries
    else:
        metadata.pop("managedFields", None)


def _entry(manager: str, operation: str, api_version: str, subresource: str, now: str) -> dict:
    entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now}
    if subresource:
        entry["subresource"] = subresource
    return entry


def _manager_text(entry: dict) -> str:
    """apiserver's printManager: `"kubectl-client-side-apply" using apps/v1` for updaters, `"kubectl"` for appliers."""
    text = json.dumps(entry.get("manager", ""))
    if entry.get("subresource"):
        text += f' with subresource {json.dumps(entry["subresource"])}'
    if entry.get("operation") == "Update":
        text += f" using {entry.get('apiVersion', '')}"
    return text


def conflict_error(conflicts: list[tuple[dict, Path]]) -> APIError:
    """409 Conflict: `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_manager_text(entry)}",
               "field": path_string(path)} for entry, path in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {_manager_text(entry)}: {path_string(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(_manager_text(entry), []).append(path_string(path))
        lines = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {p}" for p in by_manager[manager]]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return APIError(409, "Conflict", message, {"causes": causes})  # apiserver's NewApplyConflict: causes only


# --- merging -----------------------------------------------------------------------------------------------------

def _merge(live, applied, schema):
    if isinstance(live, dict) and isinstance(applied, dict) and not _atomic(schema):
        result = dict(live)
        for key, value in applied.items():
            sub = field_type(schema if isinstance(schema, dict) else None, key)
            result[key] = _merge(live.get(key), value, sub) if key in live else deep_copy(value)
        return result
    if isinstance(live, list) and isinstance(applied, list) and _is_associative(schema, live + applied):
        item_type = SCHEMA.get(schema.item, {}) if schema.item else None
        result = [deep_copy(i) for i in live]
        position = {_element_key(existing, schema): n for n, existing in enumerate(result)}
        for item in applied:
            at = position.get(_element_key(item, schema))
            if at is None:
                result.append(deep_copy(item))
            else:
                result[at] = _merge(result[at], item, item_type)
        return result
    if isinstance(live, list) and isinstance(applied, list) and _is_set(schema):
        return deep_copy(live) + [deep_copy(v) for v in applied if v not in live]
    return deep_copy(applied)


def _parents(paths: set[Path]) -> set[Path]:
    return {p[:i] for p in paths for i in range(1, len(p))}


def _changed(before: dict[Path, object], after: dict[Path, object]) -> set[Path]:
    """Paths of `after` that are new, or leaves whose value differs (a parent changes only by appearing)."""
    parents = _parents(set(after))
    return {path for path, value in after.items()
            if path not in before or (path not in parents and before[path] != value)}


def _owned_below(paths: set[Path], path: Path) -> bool:
    return any(p[:len(path)] == path for p in paths)


_KUBECTL = "kubectl"  # `kubectl apply --server-side`'s field manager
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _unchanged_since_client_side_apply(live: dict | None, live_values: dict[Path, object], kind: str) -> set[Path]:
    """The fields of the object's client-side apply annotation whose live value is still the applied one: upstream's
    lastAppliedManager lets `kubectl apply --server-side` take exactly these over without a conflict (the
    client-side -> server-side apply migration)."""
    text = (((live or {}).get("metadata") or {}).get("annotations") or {}).get(_LAST_APPLIED)
    try:
        last_applied = json.loads(text) if text else None
    except ValueError:
        return set()
    if not isinstance(last_applied, dict):
        return set()
    return {path for path, value in field_values(last_applied, kind).items() if live_values.get(path) == value}


def apply(live: dict | None, applied: dict, manager: str, force: bool = False, subresource: str = "",
          now: str | None = None) -> dict:
    """The object after server-side applying `applied` as `manager` onto `live` (None or {} when it does not exist
    yet). Raises the 409 conflict error unless `force`. Neither input is changed."""
    now = now or now_rfc3339()
    kind = applied.get("kind") or (live or {}).get("kind", "")
    api_version = applied.get("apiVersion") or (live or {}).get("apiVersion", "")
    applied = deep_copy(applied)
    (applied.get("metadata") or {}).pop("managedFields", None)
    new_set = field_set(applied, kind)
    me = (manager, "Apply", "", subresource)
    managers = _managers(live)
    before = {identity: set(paths) for identity, (_, paths) in managers.items()}
    if live and not managers:  # objects written before anyone tracked fields
        managers[("before-first-apply", "Update", api_version, "")] = (
            _entry("before-first-apply", "Update", api_version, "", now), field_set(live, kind, update=True))
    previous = managers.get(me, (None, set()))[1]
    merged = _merge(deep_copy(live) if live else {}, applied, root_type(kind))

    live_values = field_values(live, kind)
    merged_values = field_values(merged, kind)
    modified = _changed(live_values, {p: merged_values.get(p) for p in new_set}) & set(live_values)
    conflicts = [(identity, entry, path) for identity, (entry, paths) in managers.items() if identity != me
                 for path in sorted(modified & paths)]
    if conflicts and not force and not (manager == _KUBECTL and {p for _, _, p in conflicts}
                                        <= _unchanged_since_client_side_apply(live, live_values, kind)):
        raise conflict_error([(e, p) for _, e, p in conflicts])
    for identity, _, path in conflicts:
        managers[identity][1].discard(path)

    others = set().union(*(paths for identity, (_, paths) in managers.items() if identity != me))
    removed: list[Path] = []
    for path in sorted(previous - new_set, key=len):  # outermost first: an element goes with its fields
        if any(path[:len(r)] == r for r in removed):
            continue
        if not _owned_below(others, path) and not _owned_below(new_set, path):
            _remove(merged, path, kind)
            removed.append(path)
    managers[me] = (_entry(manager, "Apply", api_version, subresource, now), new_set)
    _write_managers(merged, managers, before)
    return merged


def record_update(old: dict | None, new: dict, manager: str, subresource: str = "", now: str | None = None) -> dict:
    """Track a non-apply write of `new` (over `old`, None/{} for a create) in new's managedFields, in place; returns
    `new`. The writer takes over the fields it changed; removed fields leave every manager.

    As upstream's field manager, a write that sets managedFields itself (other than on a subresource) is taken at
    its word: kubectl's client-side -> server-side apply migration replaces the `kubectl-client-side-apply` entry
    with its own Apply entry this way. `managedFields: [{}]` resets them."""
    now = now or now_rfc3339()
    kind = new.get("kind") or (old or {}).get("kind", "")
    api_version = new.get("apiVersion") or (old or {}).get("apiVersion", "")
    supplied = (new.get("metadata") or {}).get("managedFields")
    if supplied == [{}]:
        managers = {}
    elif old and (not supplied or subresource):
        managers = _managers(old)
    else:
        managers = _managers(new)
    before = {identity: set(paths) for identity, (_, paths) in managers.items()}
    old_values, new_values = field_values(old, kind, update=True), field_values(new, kind, update=True)
    changed = _changed(old_values, new_values)
    removed = set(old_values) - set(new_values)
    me = (manager, "Update", api_version, subresource)
    for identity, (_, paths) in managers.items():
        if identity != me:
            paths -= changed | removed
    if changed or me in managers:
        entry, paths = managers.get(me, (None, set()))
        paths = (paths | changed) - removed
        if changed or entry is None:
            entry = _entry(manager, "Update", api_version, subresource, now)
        managers[me] = (entry, paths)
    _write_managers(new, managers, before)
    return new


update_managed_fields = record_update
