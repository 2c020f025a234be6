"""Validate an object against a CRD's structural schema (``openAPIV3Schema``) the way the Kubernetes
API server does when the object is created.

No API server runs on the test machines, so this follows what apiextensions-apiserver does with a
custom resource on create, in its order:

1. ``null`` in a field that is not ``nullable`` is dropped (reported: the API server prunes it);
2. ``default`` values are filled in;
3. fields the schema does not name are reported as *unknown*: the API server silently prunes them,
   ``kubectl apply --validate=strict`` refuses them; here they are problems, so a misspelt field
   fails a test instead of vanishing on a cluster. ``x-kubernetes-preserve-unknown-fields`` keeps
   a subtree open; the root's and an ``x-kubernetes-embedded-resource``'s ``apiVersion``, ``kind``
   and ``metadata`` are implicit, and that ``metadata`` is checked as ObjectMeta (name, labels);
4. value validation: ``type`` (with ``x-kubernetes-int-or-string``), ``format`` (int32, int64,
   date-time, byte), ``enum``, ``pattern``, lengths, bounds, item and property counts,
   ``required``, ``anyOf`` / ``allOf`` / ``oneOf`` / ``not``; ``x-kubernetes-list-type: map``
   rejects two items with the same ``x-kubernetes-list-map-keys`` and ``set`` two equal items;
5. the CEL rules of ``x-kubernetes-validations`` (evaluated with cel-python); transition rules,
   which read ``oldSelf``, only apply to updates and are skipped.

``StructuralSchema(schema).problems(obj)`` returns every problem as a :class:`Problem`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import re
from dataclasses import dataclass
from typing import Any

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# ObjectMeta fields a client may send (everything else in metadata is dropped by the API server).
OBJECT_META_FIELDS = {
    "name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences", "uid", "resourceVersion",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "managedFields", "selfLink",
}
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


@dataclass(frozen=True)
class Problem:
    """One reason the API server would not store the object as given.

    ``kind``: ``invalid`` (rejected: 422), ``unknown`` (a field the API server would prune) or
    ``rule`` (a CEL rule of ``x-kubernetes-validations`` failed: 422).
    """

    path: str
    message: str
    kind: str = "invalid"

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


@functools.lru_cache(maxsize=None)
def _cel_program(rule: str) -> Any:
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(rule))


def _cel_check(rule: dict[str, Any], value: Any) -> str | None:
    """None when ``rule`` holds for ``value``, else the rule's message (or why it could not run)."""
    import celpy

    text = rule["rule"]
    try:
        result = _cel_program(text).evaluate({"self": celpy.json_to_cel(value)})
    except Exception as exc:  # cel-python raises for type errors in some rules
        return f"rule {text!r} could not be evaluated: {exc}"
    if isinstance(result, celpy.CELEvalError):
        return f"rule {text!r} could not be evaluated: {result}"
    if bool(result):
        return None
    return rule.get("message") or f"failed rule: {text}"


def object_meta_problems(meta: Any, path: str, root: bool) -> list[Problem]:
    """ObjectMeta as the API server checks it: known fields only, a valid name, valid labels."""
    if not isinstance(meta, dict):
        return [Problem(path, f"must be an object, got {type(meta).__name__}")]
    out = [Problem(_join(path, k), "unknown field in ObjectMeta", "unknown") for k in sorted(set(meta) - OBJECT_META_FIELDS)]
    name = meta.get("name")
    if root and not name and not meta.get("generateName"):
        out.append(Problem(_join(path, "name"), "name or generateName is required"))
    if name is not None:
        if not isinstance(name, str) or len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
            out.append(Problem(_join(path, "name"), f"{name!r} is not a DNS-1123 subdomain (lower case alphanumerics, '-' and '.', at most 253)"))
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63 or not _DNS1123_LABEL.match(namespace)):
        out.append(Problem(_join(path, "namespace"), f"{namespace!r} is not a DNS-1123 label"))
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            out.append(Problem(_join(path, field), "must map strings to strings"))
            continue
        for key, value in values.items():
            prefix, _, name_part = key.rpartition("/")
            if (prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix))) or len(name_part) > 63 or not _QUALIFIED_NAME.match(name_part):
                out.append(Problem(_join(_join(path, field), key), "is not a qualified name ([prefix/]name, name at most 63 characters)"))
            if field == "labels" and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                out.append(Problem(_join(_join(path, field), key), f"label value {value!r} is invalid (at most 63 alphanumerics, '-', '_', '.')"))
    return out


class StructuralSchema:
    """A CRD version's ``openAPIV3Schema``; :meth:`problems` validates one object against it."""

    def __init__(self, schema: dict[str, Any], cel: bool = True) -> None:
        self.schema = schema
        self.cel = cel

    # -- 1 + 2: nulls and defaults ----------------------------------------------------------------
    def defaulted(self, obj: Any) -> tuple[Any, list[Problem]]:
        """A copy of ``obj`` with non-nullable nulls dropped and defaults filled in, and the dropped nulls."""
        dropped: list[Problem] = []
        return self._default(copy.deepcopy(obj), self.schema, "", dropped), dropped

    def _default(self, value: Any, node: dict[str, Any], path: str, dropped: list[Problem]) -> Any:
        if isinstance(value, dict):
            props = node.get("properties") or {}
            for key in list(value):
                sub = props.get(key)
                if sub is None and isinstance(node.get("additionalProperties"), dict):
                    sub = node["additionalProperties"]
                if sub is None:
                    continue
                if value[key] is None and not sub.get("nullable"):
                    dropped.append(Problem(_join(path, key), "null is dropped (the field is not nullable)", "unknown"))
                    del value[key]
                    continue
                value[key] = self._default(value[key], sub, _join(path, key), dropped)
            for key, sub in props.items():
                if key not in value and "default" in sub:
                    value[key] = self._default(copy.deepcopy(sub["default"]), sub, _join(path, key), dropped)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            value = [self._default(item, node["items"], _join(path, i), dropped) for i, item in enumerate(value)]
        return value

    # -- 3 to 5 -------------------------------------------------------------------------------------
    def problems(self, obj: Any, resource_root: bool = True) -> list[Problem]:
        """Every problem of ``obj`` (a whole resource when ``resource_root``), nulls and unknown fields included."""
        value, dropped = self.defaulted(obj)
        out = list(dropped)
        self._check(value, self.schema, "", out, resource_root=resource_root)
        return out

    def _check(self, value: Any, node: dict[str, Any], path: str, out: list[Problem], resource_root: bool = False) -> None:
        if value is None:
            if not node.get("nullable"):
                out.append(Problem(path, "must not be null"))
            return
        if not self._type_ok(value, node, path, out):
            return
        embedded = resource_root or node.get("x-kubernetes-embedded-resource")
        if isinstance(value, dict):
            self._check_object(value, node, path, out, bool(embedded), resource_root)
        elif isinstance(value, list):
            self._check_list(value, node, path, out)
        self._value_checks(value, node, path, out)
        if self.cel:
            for rule in node.get("x-kubernetes-validations") or []:
                if re.search(r"\boldSelf\b", rule["rule"]):
                    continue  # a transition rule: only on updates
                message = _cel_check(rule, value)
                if message:
                    out.append(Problem(rule.get("fieldPath") and _join(path, rule["fieldPath"].lstrip(".")) or path, message, "rule"))

    @staticmethod
    def _type_ok(value: Any, node: dict[str, Any], path: str, out: list[Problem]) -> bool:
        if node.get("x-kubernetes-int-or-string"):
            if _TYPES["integer"](value) or isinstance(value, str):
                return True
            out.append(Problem(path, f"must be an integer or a string, got {type(value).__name__} {value!r}"))
            return False
        kind = node.get("type")
        if kind and not _TYPES[kind](value):
            out.append(Problem(path, f"must be of type {kind}, got {type(value).__name__} {value!r}"[:300]))
            return False
        return True

    def _check_object(self, value: dict[str, Any], node: dict[str, Any], path: str, out: list[Problem], embedded: bool, resource_root: bool) -> None:
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        for key in node.get("required") or []:
            if key not in value:
                out.append(Problem(_join(path, key), "required field is missing"))
        for key, item in value.items():
            where = _join(path, key)
            if embedded and key in ("apiVersion", "kind"):
                if not isinstance(item, str) or not item:
                    out.append(Problem(where, "must be a non-empty string"))
                continue
            if embedded and key == "metadata":
                out.extend(object_meta_problems(item, where, root=resource_root))
                continue
            if key in props:
                self._check(item, props[key], where, out)
            elif isinstance(extra, dict):
                self._check(item, extra, where, out)
            elif not (preserve or extra is True):
                out.append(Problem(where, "unknown field (the API server would prune it)", "unknown"))
        if embedded and not resource_root:
            for key in ("apiVersion", "kind"):
                if key not in value:
                    out.append(Problem(_join(path, key), "required in an embedded resource"))

    def _check_list(self, value: list[Any], node: dict[str, Any], path: str, out: list[Problem]) -> None:
        items = node.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                self._check(item, items, _join(path, i), out)
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "map":
            keys = node.get("x-kubernetes-list-map-keys") or []
            seen: dict[tuple, int] = {}
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                key = tuple(repr(item.get(k)) for k in keys)
                if key in seen:
                    named = ", ".join(f"{k}={item.get(k)!r}" for k in keys)
                    out.append(Problem(_join(path, i), f"duplicate entry with {named} (also at index {seen[key]}; x-kubernetes-list-map-keys {keys})"))
                else:
                    seen[key] = i
        elif list_type == "set":
            seen_items: dict[str, int] = {}
            for i, item in enumerate(value):
                key = repr(item)
                if key in seen_items:
                    out.append(Problem(_join(path, i), f"duplicate value {item!r} in a set (also at index {seen_items[key]})"))
                else:
                    seen_items[key] = i

    # -- value validations (also the only checks inside anyOf / allOf / oneOf / not) ------------
    def _value_checks(self, value: Any, node: dict[str, Any], path: str, out: list[Problem]) -> None:
        fmt = node.get("format")
        if _TYPES["integer"](value) and fmt in ("int32", "int64"):
            low, high = INT32 if fmt == "int32" else INT64
            if not low <= value <= high:
                out.append(Problem(path, f"{value} is out of the {fmt} range"))
        if isinstance(value, str):
            if fmt == "date-time" and not _DATE_TIME.match(value):
                out.append(Problem(path, f"{value!r} is not an RFC 3339 date-time"))
            if fmt == "byte":
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    out.append(Problem(path, "is not base64"))
            if "pattern" in node and not re.search(node["pattern"], value):
                out.append(Problem(path, f"{value!r} does not match the pattern {node['pattern']!r}"))
            if "maxLength" in node and len(value) > node["maxLength"]:
                out.append(Problem(path, f"is longer than {node['maxLength']} characters"))
            if "minLength" in node and len(value) < node["minLength"]:
                out.append(Problem(path, f"is shorter than {node['minLength']} characters"))
        if _TYPES["number"](value):
            if "minimum" in node and (value < node["minimum"] or (node.get("exclusiveMinimum") is True and value == node["minimum"])):
                out.append(Problem(path, f"{value} is less than the minimum {node['minimum']}"))
            if "maximum" in node and (value > node["maximum"] or (node.get("exclusiveMaximum") is True and value == node["maximum"])):
                out.append(Problem(path, f"{value} is greater than the maximum {node['maximum']}"))
            if "multipleOf" in node and value % node["multipleOf"]:
                out.append(Problem(path, f"{value} is not a multiple of {node['multipleOf']}"))
        if isinstance(value, list):
            if "maxItems" in node and len(value) > node["maxItems"]:
                out.append(Problem(path, f"has {len(value)} items, at most {node['maxItems']} allowed"))
            if "minItems" in node and len(value) < node["minItems"]:
                out.append(Problem(path, f"has {len(value)} items, at least {node['minItems']} needed"))
        if isinstance(value, dict):
            if "maxProperties" in node and len(value) > node["maxProperties"]:
                out.append(Problem(path, f"has {len(value)} properties, at most {node['maxProperties']} allowed"))
            if "minProperties" in node and len(value) < node["minProperties"]:
                out.append(Problem(path, f"has {len(value)} properties, at least {node['minProperties']} needed"))
        if "enum" in node and value not in node["enum"]:
            out.append(Problem(path, f"{value!r} is not one of {node['enum']}"))
        for sub in node.get("allOf") or []:
            out.extend(self._value_problems(value, sub, path))
        if node.get("anyOf") and not any(not self._value_problems(value, sub, path) for sub in node["anyOf"]):
            out.append(Problem(path, f"{value!r} matches none of anyOf"[:300]))
        if node.get("oneOf") and sum(not self._value_problems(value, sub, path) for sub in node["oneOf"]) != 1:
            out.append(Problem(path, "must match exactly one of oneOf"))
        if "not" in node and not self._value_problems(value, node["not"], path):
            out.append(Problem(path, "must not match the 'not' schema"))

    def _value_problems(self, value: Any, node: dict[str, Any], path: str) -> list[Problem]:
        """Problems of ``value`` against a value-validation sub-schema (no unknown-field checks)."""
        out: list[Problem] = []
        if not self._type_ok(value, node, path, out):
            return out
        if isinstance(value, dict):
            for key in node.get("required") or []:
                if key not in value:
                    out.append(Problem(_join(path, key), "required field is missing"))
            for key, sub in (node.get("properties") or {}).items():
                if key in value:
                    out.extend(self._value_problems(value[key], sub, _join(path, key)))
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            for i, item in enumerate(value):
                out.extend(self._value_problems(item, node["items"], _join(path, i)))
        self._value_checks(value, node, path, out)
        return out
