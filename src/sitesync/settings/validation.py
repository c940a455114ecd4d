"""Helpers shared by every settings layer: deep merge of partial documents, dotted keys, value
parsing from the command line, and turning a pydantic error into one line that names the key."""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        key = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "value")
        msg = err.get("msg", "invalid value")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{key}: {msg}")
    more = len(exc.errors()) - 3
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; tables merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def split_key(key: str) -> list[str]:
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ValueError(f"invalid settings key {key!r}: use dotted names such as retry_count or sites.s3.enabled")
    return parts


def set_dotted(doc: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``doc`` with ``key`` (dotted) set to ``value``; ``None`` removes the key."""
    out = copy.deepcopy(doc)
    parts = split_key(key)
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return out


def get_dotted(doc: dict[str, Any], key: str) -> Any:
    node: Any = doc
    for part in split_key(key):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def parse_cli_value(text: str) -> Any:
    """Parse a value typed on the command line: JSON when it parses (numbers, booleans, lists,
    tables, quoted strings), ``null``/``unset`` to remove the key, otherwise the raw text."""
    stripped = text.strip()
    if stripped in ("null", "unset"):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return text
