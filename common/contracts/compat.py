"""Is a new JSON Schema of a released contract version still compatible with the old one?

Compatible means: every message valid under the old schema is still valid under the new one, so a
message already published (or parked, or replayed) can always be read. What breaks that, by field:
a field removed or renamed, a field newly required, a type narrowed, a constraint tightened.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
CONSTRAINTS_UP = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
CONSTRAINTS_DOWN = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Each way `new` refuses data that `old` accepted, naming the field."""
    problems: list[str] = []
    _compare(old, new, old, new, "", problems)
    return problems


def _resolve(node: Schema, root: Schema) -> Schema:
    seen = 0
    while "$ref" in node and seen < 20:
        path = node["$ref"].removeprefix("#/").split("/")
        target: Any = root
        for part in path:
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node


def _types(node: Schema, root: Schema) -> set[str]:
    node = _resolve(node, root)
    if "anyOf" in node or "oneOf" in node:
        out: set[str] = set()
        for option in node.get("anyOf") or node.get("oneOf") or []:
            out |= _types(option, root)
        return out
    declared = node.get("type")
    if declared is None:
        return {"object"} if "properties" in node else {"any"}
    return set(declared) if isinstance(declared, list) else {declared}


def _variant(node: Schema, root: Schema, json_type: str) -> Schema | None:
    """The part of an anyOf (or the node itself) that accepts `json_type`."""
    node = _resolve(node, root)
    for option in node.get("anyOf") or node.get("oneOf") or []:
        if json_type in _types(option, root):
            return _resolve(option, root)
    return node if json_type in _types(node, root) else None


def _compare(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, where: str, problems: list[str]
) -> None:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    name = where or "(the event)"
    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if "any" not in new_types:
        lost = old_types - new_types - ({"integer"} if "number" in new_types else set())
        if "any" in old_types:
            problems.append(f"field {name!r}: narrowed from any type to {sorted(new_types)}")
        elif lost:
            problems.append(f"field {name!r}: no longer accepts {', '.join(sorted(lost))}")
    for json_type in sorted(old_types & new_types):
        old_v, new_v = _variant(old, old_root, json_type), _variant(new, new_root, json_type)
        if old_v is None or new_v is None:
            continue
        _compare_constraints(old_v, new_v, name, problems)
        if json_type == "object":
            _compare_objects(old_v, new_v, old_root, new_root, where, problems)
        if json_type == "array" and "items" in old_v and "items" in new_v:
            _compare(old_v["items"], new_v["items"], old_root, new_root, f"{where}[]", problems)


def _compare_constraints(old: Schema, new: Schema, name: str, problems: list[str]) -> None:
    for key in CONSTRAINTS_UP:
        if key in new and (key not in old or new[key] > old[key]):
            problems.append(f"field {name!r}: {key} tightened to {new[key]} (was {old.get(key, 'none')})")
    for key in CONSTRAINTS_DOWN:
        if key in new and (key not in old or new[key] < old[key]):
            problems.append(f"field {name!r}: {key} tightened to {new[key]} (was {old.get(key, 'none')})")
    for key in ("pattern", "format", "const", "multipleOf"):
        if key in new and new.get(key) != old.get(key):
            problems.append(f"field {name!r}: {key} changed to {new[key]!r} (was {old.get(key, 'none')!r})")
    if "enum" in new:
        removed = [v for v in old.get("enum", []) if v not in new["enum"]] if "enum" in old else ["(any)"]
        if removed:
            problems.append(f"field {name!r}: enum no longer allows {removed}")


def _compare_objects(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, where: str, problems: list[str]
) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for field in old_props:
        path = f"{where}.{field}" if where else field
        if field not in new_props:
            problems.append(f"field {path!r} removed or renamed")
        else:
            _compare(old_props[field], new_props[field], old_root, new_root, path, problems)
    for field in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        path = f"{where}.{field}" if where else field
        what = "new required field" if field not in old_props else "field is now required"
        problems.append(f"field {path!r}: {what} (give it a default, or make a new version)")
    if old.get("additionalProperties", True) is not False and new.get("additionalProperties") is False:
        problems.append(f"field {where or '(the event)'!r}: no longer accepts extra fields")
