"""The fake Drive's request language: Google-style errors, the ``q`` query language of files.list
(string literals with backslash escapes, ``and``/``or``/``not``, parentheses) and partial responses
(``fields``). Anything outside the subset sitesync uses is refused with 400, as Drive would."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse

FILE_FIELDS = {
    "kind",
    "id",
    "name",
    "mimeType",
    "parents",
    "size",
    "md5Checksum",
    "modifiedTime",
    "createdTime",
    "trashed",
    "driveId",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        domain = "usageLimits" if self.reason.endswith("RateLimitExceeded") else "global"
        body = {
            "error": {
                "code": self.status,
                "message": str(self),
                "errors": [{"domain": domain, "reason": self.reason, "message": str(self)}],
            }
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def bad(message: str, location: str | None = None) -> ApiError:
    return ApiError(400, message + (f" (parameter {location})" if location else ""), "invalid")


# ---------------------------------------------------------------------- the q language

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|=|\(|\))|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))",
)


def _tokens(q: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        m = _TOKEN.match(q, pos)
        if not m:
            raise bad("Invalid Value", "q")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            if re.search(r"\\[^'\\]", raw):
                raise bad("Invalid Value", "q")
            out.append(("str", re.sub(r"\\(['\\])", r"\1", raw)))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
    return out


class Query:
    """A parsed ``q``: ``matches(item)``."""

    def __init__(self, q: str) -> None:
        self.toks = _tokens(q)
        self.i = 0
        self.tree = self._or()
        if self.i != len(self.toks):
            raise bad("Invalid Value", "q")

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self, kind: str, value: str | None = None) -> str:
        tok = self._peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise bad("Invalid Value", "q")
        self.i += 1
        return tok[1]

    def _or(self) -> Any:
        node = self._and()
        while self._peek() == ("word", "or"):
            self.i += 1
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._unary()
        while self._peek() == ("word", "and"):
            self.i += 1
            node = ("and", node, self._unary())
        return node

    def _unary(self) -> Any:
        tok = self._peek()
        if tok == ("word", "not"):
            self.i += 1
            return ("not", self._unary())
        if tok == ("op", "("):
            self.i += 1
            node = self._or()
            self._take("op", ")")
            return node
        return self._term()

    def _term(self) -> Any:
        tok = self._peek()
        if tok is None:
            raise bad("Invalid Value", "q")
        if tok[0] == "str":
            value = self._take("str")
            self._take("word", "in")
            self._take("word", "parents")
            return ("parent", value)
        key = self._take("word")
        if key not in ("name", "mimeType", "trashed"):
            raise bad("Invalid Value", "q")
        op_tok = self._peek()
        if op_tok in (("op", "="), ("op", "!=")) or (key != "trashed" and op_tok == ("word", "contains")):
            self.i += 1
            op = op_tok[1]  # type: ignore[index]
        else:
            raise bad("Invalid Value", "q")
        if key == "trashed":
            value = self._take("word")
            if value not in ("true", "false"):
                raise bad("Invalid Value", "q")
            return ("trashed", op, value == "true")
        return (key, op, self._take("str"))

    def matches(self, item: Any, node: Any = None) -> bool:
        node = self.tree if node is None else node
        kind = node[0]
        if kind == "or":
            return self.matches(item, node[1]) or self.matches(item, node[2])
        if kind == "and":
            return self.matches(item, node[1]) and self.matches(item, node[2])
        if kind == "not":
            return not self.matches(item, node[1])
        if kind == "parent":
            return node[1] in item.parents
        if kind == "trashed":
            return (item.trashed == node[2]) == (node[1] == "=")
        _, op, value = node
        actual = item.name if kind == "name" else item.mime
        if op == "contains":
            return value in actual
        return (actual == value) == (op == "=")


# ---------------------------------------------------------------------- partial responses


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad("Invalid field selection", "fields")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise bad("Invalid field selection", "fields")
    parts.append(cur.strip())
    if any(not p for p in parts):
        raise bad("Invalid field selection", "fields")
    return parts


def select_file(resource: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if fields is None:
        wanted = ["kind", "id", "name", "mimeType"]
    else:
        wanted = _split_top(fields)
        for name in wanted:
            if name not in FILE_FIELDS and name != "*":
                raise bad(f"Invalid field selection {name}", "fields")
        if "*" in wanted:
            return resource
    return {k: resource[k] for k in wanted if k in resource}


def select_list(files: list[dict[str, Any]], token: str | None, fields: str | None, key: str) -> dict[str, Any]:
    if fields is None:
        out: dict[str, Any] = {"kind": f"drive#{key[:-1]}List", key: [select_file(f, None) for f in files]}
        if token:
            out["nextPageToken"] = token
        return out
    out = {}
    for part in _split_top(fields):
        m = re.fullmatch(rf"{key}\((.*)\)", part, re.DOTALL)
        if m:
            inner = m.group(1)
            if key == "drives":
                names = _split_top(inner)
                if any(n not in ("id", "name", "kind") for n in names):
                    raise bad("Invalid field selection", "fields")
                out[key] = [{k: d[k] for k in names if k in d} for d in files]
            else:
                select_file({}, inner)  # validates the selection even when no file matched
                out[key] = [select_file(f, inner) for f in files]
        elif part == "nextPageToken":
            if token:
                out["nextPageToken"] = token
        elif part in ("kind", "incompleteSearch"):
            out[part] = f"drive#{key[:-1]}List" if part == "kind" else False
        else:
            raise bad(f"Invalid field selection {part}", "fields")
    return out
