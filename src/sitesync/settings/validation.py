"""Helpers shared by every settings layer: deep merge of partial documents, dotted keys, value
parsing from the command line, and turning a pydantic error into one line that names the key."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sitesync.errors import InvalidSettingError

MAX_DEPTH = 24  # tables and lists inside each other: real settings nest 6 deep at most
SECRET_WORDS = ("secret", "password", "passphrase", "token", "key", "credential")


def looks_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def _friendly(err: Mapping[str, Any]) -> str:
    """A pydantic error as a short phrase a TD understands, with the value that was given (never the
    value of anything that may be a secret)."""
    kind = err.get("type", "")
    if any(looks_secret(str(part)) for part in err.get("loc", ())):
        err = {**err, "input": None}
    ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in (err.get("ctx") or {}).items()}
    given = err.get("input")
    got = f" (got {given!r})" if given is not None and not isinstance(given, dict | list) else ""
    phrases = {
        "greater_than_equal": f"must be at least {ctx.get('ge')}{got}",
        "greater_than": f"must be greater than {ctx.get('gt')}{got}",
        "less_than_equal": f"must be at most {ctx.get('le')}{got}",
        "less_than": f"must be less than {ctx.get('lt')}{got}",
        "int_parsing": f"must be a whole number{got}",
        "int_type": f"must be a whole number{got}",
        "int_from_float": f"must be a whole number{got}",
        "float_parsing": f"must be a number{got}",
        "float_type": f"must be a number{got}",
        "bool_parsing": f"must be true or false{got}",
        "bool_type": f"must be true or false{got}",
        "string_type": f"must be text{got}",
        "list_type": f"must be a list{got}",
        "dict_type": f"must be a table of keys and values{got}",
        "extra_forbidden": "unknown key; `sitesync settings show --effective` lists the keys",
        "missing": "is required",
    }
    if kind in phrases:
        return phrases[kind]
    msg = err.get("msg", "invalid value")
    return msg[len("Value error, ") :] if msg.startswith("Value error, ") else msg


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        key = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "value")
        parts.append(f"{key}: {_friendly(err)}")
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
        value = json.loads(stripped)
    except ValueError:
        return text
    except RecursionError:
        raise InvalidSettingError(f"the value nests lists or tables more than {MAX_DEPTH} levels deep") from None
    check_depth(value)
    return value


def check_depth(value: Any, what: str = "the value") -> None:
    """Refuse values nested deeper than any setting is (they would only exhaust the stack later),
    and ``null`` inside a table or list: TOML, the format of exports and local settings, has none."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidSettingError(f"{what} nests lists or tables more than {MAX_DEPTH} levels deep")
            children = list(node.values()) if isinstance(node, dict) else node
            if any(child is None for child in children):
                raise InvalidSettingError(
                    f"{what} holds null inside a table or list, which settings cannot store (TOML has no null); "
                    "leave the entry out instead"
                )
            stack.extend((child, depth + 1) for child in children)
