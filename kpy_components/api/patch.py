"""The three patch formats of the Kubernetes API, applied to plain JSON dicts.

- JSON patch (RFC 6902, `application/json-patch+json`): an undecodable patch is 400, an operation that does not
  apply (missing path, failed `test`) is 422 Invalid, as kube-apiserver answers.
- JSON merge patch (RFC 7386, `application/merge-patch+json`): `null` deletes, objects merge, anything else replaces.
- Strategic merge patch (`application/strategic-merge-patch+json`): k8s.io/apimachinery's strategicpatch semantics
  for the kinds kpy serves. Lists declared with a merge key (containers by name, env by name, ports by containerPort,
  volumes by name, conditions by type, ...) merge element-wise; primitive lists with strategy merge (finalizers) union;
  every other list is replaced. Directives: `$patch: replace|delete|merge` (on maps and list elements),
  `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`, `$retainKeys`; `null` deletes a key.

The list metadata (`SCHEMA`) is the one table of list semantics in kpy: server-side apply (apply.py) reads the same
table for its associative lists (`ListField.keys`) and sets.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import APIError, bad_request
from .meta import deep_copy


def _unprocessable(message: str) -> APIError:
    return APIError(422, "Invalid", message)


# --- JSON patch (RFC 6902) ---------------------------------------------------------------------------------------

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise _unprocessable(f'JSON pointer must be empty or start with a "/": {path!r}')
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list, token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _unprocessable(f"invalid array index {token!r} in path {path!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise _unprocessable(f"index {index} out of bounds for array of length {len(container)} in path {path!r}")
    return index


def _walk(doc, parts: list[str], path: str, op: str):
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list):
            node = node[_index(node, part, path, False)]
        else:
            raise _unprocessable(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return node


def _parent(doc, parts: list[str], path: str, op: str):
    return _walk(doc, parts[:-1], path, op)


def _get(doc, path: str, op: str):
    return _walk(doc, _pointer(path), path, op)


def _add(doc, path: str, value, op: str = "add"):
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path, op)
    if isinstance(parent, dict):
        parent[parts[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], path, True), value)
    else:
        raise _unprocessable(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return doc


def _remove(doc, path: str, op: str = "remove"):
    parts = _pointer(path)
    if not parts:
        raise _unprocessable(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, parts, path, op)
    if isinstance(parent, dict) and parts[-1] in parent:
        return parent.pop(parts[-1])
    if isinstance(parent, list):
        return parent.pop(_index(parent, parts[-1], path, False))
    raise _unprocessable(f'{op} operation does not apply: doc is missing path: "{path}": missing value')


def _decoded(body):
    """A patch body as JSON data: raw bytes/str are parsed (400 when they are not JSON)."""
    if isinstance(body, (bytes, str)):
        try:
            return json.loads(body)
        except ValueError as e:
            raise bad_request(f"error decoding patch: {e}") from None
    return body


def decode_json_patch(body) -> list[dict]:
    """Parse and check a JSON patch document; 400 when it is not a list of operations."""
    body = _decoded(body)
    if not isinstance(body, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    for operation in body:
        if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
            raise bad_request(f"invalid JSON patch operation: {json.dumps(operation)}")
    return body


def apply_json_patch(doc, patch) -> dict:
    """Apply RFC 6902 operations to a copy of doc. `patch` is the decoded list (or the raw body)."""
    doc = deep_copy(doc)
    for operation in decode_json_patch(patch):
        op, path = operation["op"], operation.get("path")
        if path is None:
            raise bad_request(f"missing path in JSON patch operation {op!r}")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise bad_request(f"missing value in JSON patch operation {op!r}")
        if op == "add":
            doc = _add(doc, path, deep_copy(operation["value"]))
        elif op == "remove":
            _remove(doc, path)
        elif op == "replace":
            if _pointer(path):
                _remove(doc, path, "replace")
            doc = _add(doc, path, deep_copy(operation["value"]), "replace")
        elif op in ("move", "copy"):
            source = operation.get("from")
            if source is None:
                raise bad_request(f"missing from in JSON patch operation {op!r}")
            if op == "move" and (path + "/").startswith(source + "/") and path != source:
                raise _unprocessable(f"move operation does not apply: cannot move {source!r} into its child {path!r}")
            value = _remove(doc, source, op) if op == "move" else deep_copy(_get(doc, source, op))
            doc = _add(doc, path, value, op)
        elif op == "test":
            if _get(doc, path, "test") != operation["value"]:
                raise _unprocessable(f"testing value {path} failed: test failed")
        else:
            raise bad_request(f"unexpected kind of JSON patch operation: {op!r}")
    return doc


# --- JSON merge patch (RFC 7386) ---------------------------------------------------------------------------------

def apply_merge_patch(target, patch):
    """RFC 7386 on a copy of target."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result = deep_copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def create_merge_patch(original, modified):
    """The RFC 7386 patch turning original into modified (None for no change at the top of a dict)."""
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return deep_copy(modified)
    patch = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = deep_copy(value)
        elif original[key] != value:
            if isinstance(value, dict) and isinstance(original[key], dict):
                patch[key] = create_merge_patch(original[key], value)
            else:
                patch[key] = deep_copy(value)
    return patch


# --- list semantics of the kinds kpy serves ----------------------------------------------------------------------

@dataclass(frozen=True)
class ListField:
    """A list field. `keys`: its associative keys (server-side apply listMapKeys; the strategic merge key is
    `merge_key`, by default keys[0]). `strategy` "merge" makes strategic merge patch merge it (element-wise for maps
    with a merge key, union for primitives); otherwise the list is replaced. `set_` marks primitive sets (SSA)."""
    keys: tuple[str, ...] = ()
    strategy: str = ""
    item: str | None = None  # the element's type in SCHEMA
    merge_key: str | None = None
    retain_keys: bool = False
    set_: bool = False

    @property
    def patch_merge_key(self) -> str | None:
        return self.merge_key or (self.keys[0] if self.keys else None)


def _map_list(*keys: str, item: str | None = None, merge_key: str | None = None, strategy: str = "merge",
              retain_keys: bool = False) -> ListField:
    return ListField(keys, strategy, item, merge_key, retain_keys)


_ATOMIC = ListField()
_MERGED_SET = ListField(strategy="merge", set_=True)
_CONDITIONS = _map_list("type")

# Type name -> field -> nested type name (a struct descended into) or ListField. Fields not listed are merged as
# plain maps (dicts) or replaced (lists and scalars). "atomic" structs are replaced whole by server-side apply.
SCHEMA: dict[str, dict] = {
    "ObjectMeta": {"finalizers": _MERGED_SET, "ownerReferences": _map_list("uid", item="OwnerReference"),
                   "managedFields": _ATOMIC},
    "OwnerReference": {"__atomic__": True},
    "LabelSelector": {"__atomic__": True},
    "PodTemplateSpec": {"metadata": "ObjectMeta", "spec": "PodSpec"},
    "PodSpec": {
        "containers": _map_list("name", item="Container"),
        "initContainers": _map_list("name", item="Container"),
        "ephemeralContainers": _map_list("name", item="Container"),
        "volumes": _map_list("name", retain_keys=True),
        "imagePullSecrets": _map_list("name"),
        "hostAliases": _map_list("ip"),
        "topologySpreadConstraints": _map_list("topologyKey", "whenUnsatisfiable"),
        "schedulingGates": _map_list("name"),
        "resourceClaims": _map_list("name", retain_keys=True),
        "tolerations": _ATOMIC, "readinessGates": _ATOMIC,
    },
    "Container": {
        "ports": _map_list("containerPort", "protocol", merge_key="containerPort"),
        "env": _map_list("name"),
        "volumeMounts": _map_list("mountPath"),
        "volumeDevices": _map_list("devicePath"),
        "resizePolicy": _ATOMIC,
    },
    "PodStatus": {"conditions": _CONDITIONS, "podIPs": _map_list("ip"), "hostIPs": _map_list("ip")},
    "DeploymentSpec": {"selector": "LabelSelector", "template": "PodTemplateSpec"},
    "DeploymentStatus": {"conditions": _CONDITIONS},
    "ReplicaSetSpec": {"selector": "LabelSelector", "template": "PodTemplateSpec"},
    "ReplicaSetStatus": {"conditions": _CONDITIONS},
    "DaemonSetSpec": {"selector": "LabelSelector", "template": "PodTemplateSpec"},
    "DaemonSetStatus": {"conditions": _CONDITIONS},
    "StatefulSetSpec": {"selector": "LabelSelector", "template": "PodTemplateSpec", "volumeClaimTemplates": _ATOMIC},
    "StatefulSetStatus": {"conditions": _CONDITIONS},
    "ReplicationControllerSpec": {"template": "PodTemplateSpec"},
    "JobSpec": {"selector": "LabelSelector", "template": "PodTemplateSpec"},
    "JobStatus": {"conditions": _CONDITIONS},
    "JobTemplateSpec": {"metadata": "ObjectMeta", "spec": "JobSpec"},
    "CronJobSpec": {"jobTemplate": "JobTemplateSpec"},
    "ServiceSpec": {"ports": _map_list("port", "protocol", merge_key="port"), "externalIPs": _ATOMIC,
                    "clusterIPs": _ATOMIC, "ipFamilies": _ATOMIC},
    "ServiceStatus": {"conditions": _CONDITIONS},
    "NodeSpec": {"taints": _ATOMIC, "podCIDRs": _MERGED_SET},
    "NodeStatus": {"conditions": _CONDITIONS, "addresses": _map_list("type")},
    "NamespaceStatus": {"conditions": _CONDITIONS},
    "ServiceAccount": {"secrets": _map_list("name")},
    "PodDisruptionBudgetSpec": {"selector": "LabelSelector"},
    "PodDisruptionBudgetStatus": {"conditions": _CONDITIONS},
    "MutatingWebhookConfiguration": {"webhooks": _map_list("name")},
    "ValidatingWebhookConfiguration": {"webhooks": _map_list("name")},
    "CertificateSigningRequestStatus": {"conditions": _CONDITIONS},
}

_WORKLOADS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "ReplicationController",
              "PodDisruptionBudget", "Pod", "Service", "Node", "Namespace"}


# Kinds whose field maps were registered at run time (custom resources, from their CRD's schema): kind -> root.
CUSTOM_ROOTS: dict[str, dict] = {}


def register_custom(kind: str, types: dict[str, dict], root: dict | None) -> None:
    """Register (or, with root None, forget) a custom kind's list semantics: `types` join SCHEMA under names
    unique to the kind, `root` is its top-level field map."""
    for name in [n for n in SCHEMA if n.startswith(f"{kind}/")]:
        del SCHEMA[name]
    CUSTOM_ROOTS.pop(kind, None)
    if root is not None:
        SCHEMA.update(types)
        CUSTOM_ROOTS[kind] = root


def root_type(kind: str) -> dict:
    """The top-level field map of a kind: metadata, spec and status typed where SCHEMA knows them."""
    if kind in CUSTOM_ROOTS:
        return CUSTOM_ROOTS[kind]
    root = {"metadata": "ObjectMeta"}
    if kind == "CronJob":
        root["spec"] = "CronJobSpec"
    elif kind in _WORKLOADS:
        root["spec"], root["status"] = f"{kind}Spec", f"{kind}Status"
    if kind in ("ServiceAccount", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        root.update(SCHEMA[kind])  # kinds whose merged lists sit at the top level
    return root


def field_type(parent: dict | None, field: str):
    """The ListField or nested field map of `field` inside a type (None when unknown)."""
    if not parent:
        return None
    spec = parent.get(field)
    if isinstance(spec, str):
        return SCHEMA.get(spec, {})
    return spec


# --- strategic merge patch ---------------------------------------------------------------------------------------

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def _strip_directives(value):
    """A new value taken from the patch: directives and nulls dropped (they mean nothing without an original)."""
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value
                if not (isinstance(v, dict) and v.get(DIRECTIVE) in ("delete", "replace"))]
    return value


def _key_of(item, merge_key: str | None):
    return item.get(merge_key) if merge_key and isinstance(item, dict) else item


def _order(items: list, order: list, merge_key: str | None) -> list:
    """Stable sort of items by their position in `order` (keys or whole values)."""
    position = {json.dumps(_key_of(o, merge_key), sort_keys=True): i for i, o in enumerate(order)}
    return sorted(items, key=lambda it: position.get(json.dumps(_key_of(it, merge_key), sort_keys=True), len(order)))


def _normalize_order(merged: list, patch_order: list, server_order: list, merge_key: str | None) -> list:
    """strategicpatch.normalizeElementOrder: items named by the patch in the patch's order, server-only items in the
    server's order, the two interleaved where the server's order relates them."""
    keys_in_patch = {json.dumps(_key_of(o, merge_key), sort_keys=True) for o in patch_order}
    ident = [json.dumps(_key_of(it, merge_key), sort_keys=True) for it in merged]
    patch_items = _order([m for m, k in zip(merged, ident) if k in keys_in_patch], patch_order, merge_key)
    server_items = _order([m for m, k in zip(merged, ident) if k not in keys_in_patch], server_order, merge_key)
    server_index = {json.dumps(_key_of(o, merge_key), sort_keys=True): i for i, o in enumerate(server_order)}
    result, i, j = [], 0, 0
    while i < len(server_items) or j < len(patch_items):
        if j >= len(patch_items):
            result.append(server_items[i]); i += 1
        elif i >= len(server_items):
            result.append(patch_items[j]); j += 1
        else:
            left = server_index.get(json.dumps(_key_of(server_items[i], merge_key), sort_keys=True))
            right = server_index.get(json.dumps(_key_of(patch_items[j], merge_key), sort_keys=True))
            if left is not None and right is not None and left < right:
                result.append(server_items[i]); i += 1
            else:
                result.append(patch_items[j]); j += 1
    return result


def _merge_list(original: list, patch: list, meta: ListField | None, delete_list: bool = False) -> list:
    if meta is None or meta.strategy != "merge":
        return _strip_directives(patch)
    if not original and not patch:
        return original
    merge_key = meta.patch_merge_key
    if not any(isinstance(v, dict) for v in original + patch):
        if delete_list:
            return [v for v in original if v not in patch]
        merged = []
        for value in original + patch:
            if value not in merged:
                merged.append(value)
        return _normalize_order(merged, patch, original, None)
    if not merge_key:
        raise bad_request("cannot merge lists without merge key")
    item_type = SCHEMA.get(meta.item, {}) if meta.item else None
    plain, replace = [], False
    for element in patch:
        if not isinstance(element, dict):
            raise bad_request(f"invalid list element in strategic merge patch: {json.dumps(element)}")
        directive = element.get(DIRECTIVE)
        if directive is None:
            plain.append(element)
        elif directive == "delete":
            if merge_key not in element:
                raise bad_request(f"map: {json.dumps(element)} does not contain declared merge key: {merge_key}")
            original = [o for o in original if _key_of(o, merge_key) != element[merge_key]]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise bad_request(f"unknown patch type: {directive} in map: {json.dumps(element)}")
    if replace:
        return _strip_directives(plain)
    merged = [deep_copy(o) for o in original]
    for element in plain:
        if merge_key not in element:
            raise bad_request(f"map: {json.dumps(element)} does not contain declared merge key: {merge_key}")
        at = next((i for i, o in enumerate(merged) if _key_of(o, merge_key) == element[merge_key]), None)
        if at is None:
            merged.append(_strip_directives(element))
        else:
            merged[at] = _merge_map(merged[at], element, item_type)
    return _normalize_order(merged, plain, original, merge_key)


def _apply_retain_keys(original: dict, patch: dict) -> None:
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise bad_request("invalid patch format of retainKeys")
    for key, value in patch.items():
        if value is not None and not key.startswith(("$", )) and key not in keep:
            raise _unprocessable("doesn't match the retainKeys list: "
                                 f"{key} is in the patch but not in $retainKeys")
    for key in list(original):
        if key not in keep:
            del original[key]


def _apply_set_element_order(original: dict, patch: dict, schema: dict | None) -> None:
    for directive in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(directive)
        field = directive[len(SET_ORDER):]
        if not isinstance(order, list):
            raise bad_request("invalid patch format of setElementOrder list")
        meta = field_type(schema, field)
        meta = meta if isinstance(meta, ListField) else None
        merge_key = meta.patch_merge_key if meta else None
        in_original, in_patch = field in original, field in patch
        server_order = original.get(field) or []
        if in_original and in_patch:
            merged = _merge_list(server_order, patch.pop(field), meta)
        elif in_patch:
            merged = _strip_directives(patch.pop(field))
        elif in_original:
            merged = server_order
        else:
            continue
        original[field] = _normalize_order(merged, order, server_order, merge_key)


def _merge_map(original: dict | None, patch: dict, schema: dict | None) -> dict | None:
    directive = patch.get(DIRECTIVE)
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != DIRECTIVE})
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise bad_request(f"unknown patch type: {directive} in map: {json.dumps(patch)}")
    result = deep_copy(original) if isinstance(original, dict) else {}
    patch = dict(patch)
    patch.pop(DIRECTIVE, None)
    if RETAIN_KEYS in patch:
        _apply_retain_keys(result, patch)
    _apply_set_element_order(result, patch, schema)
    for key, value in patch.items():
        delete_list = key.startswith(DELETE_PRIMITIVE)
        if delete_list:
            key = key[len(DELETE_PRIMITIVE):]
            if key not in result:
                continue
        elif key.startswith("$"):
            raise bad_request(f"unknown directive {key} in strategic merge patch")
        if value is None:
            result.pop(key, None)
            continue
        sub = field_type(schema, key)
        current = result.get(key)
        if key not in result:
            result[key] = _strip_directives(value)
        elif isinstance(current, dict) and isinstance(value, dict):
            result[key] = _merge_map(current, value, sub if isinstance(sub, dict) else None)
        elif isinstance(current, list) and isinstance(value, list):
            result[key] = _merge_list(current, value, sub if isinstance(sub, ListField) else None, delete_list)
        else:
            result[key] = _strip_directives(value)
    return result


def apply_strategic_merge_patch(original: dict, patch, kind: str) -> dict:
    """Strategic merge patch of an object of `kind` (its list semantics from SCHEMA). A copy is returned.
    Malformed patches are 400 BadRequest; a patch contradicting its $retainKeys is 422."""
    patch = _decoded(patch)
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    merged = _merge_map(original, patch, root_type(kind))
    return merged if merged is not None else {}
