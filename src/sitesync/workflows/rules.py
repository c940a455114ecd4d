"""The preferred-content rule language: what a site wants automatically.

A rule is a small boolean expression over a representation's catalog facts::

    rule     := or_expr
    or_expr  := and_expr ( "or" and_expr )*
    and_expr := not_expr ( "and" not_expr )*
    not_expr := "not" not_expr | term
    term     := "(" or_expr ")"
              | "everything" | "nothing" | "latest" | "hero"
              | ( "folder" | "product" | "name" ) ":" PATTERN
              | "age" ( "<" | ">" ) DURATION

* ``everything`` / ``nothing``: every representation / none.
* ``latest``: the highest numbered version of its product (folder + product); hero is not a number.
* ``hero``: hero versions.
* ``folder:PATTERN``: the folder path or one of its parents matches; ``product:``, ``name:`` match
  the product / representation name. Patterns are globs: ``*`` and ``?`` stay within one folder
  level, ``**`` crosses levels, ``[abc]`` is a set. Quote a pattern with spaces: ``folder:"my shot"``.
* ``age<7d`` / ``age>2w``: first published less / more than the duration ago (``m``, ``h``, ``d``, ``w``).
* Keywords are case-insensitive; patterns are not.

``parse_rule`` turns text into a tree of frozen nodes or raises ``RuleError`` with one line that
names the problem and its column. The parser is a plain recursive descent over the grammar above;
parentheses and ``not`` nest at most ``MAX_NESTING`` deep, so no rule can exhaust the stack.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Protocol

KEYWORDS = ("everything", "nothing", "latest", "hero")
FIELDS = ("folder", "product", "name")
_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_HINT = (
    "use everything, nothing, latest, hero, folder:PATTERN, product:PATTERN, name:PATTERN, age<7d, and, or, not, ( )"
)
MAX_RULE_LENGTH = 2000
MAX_NESTING = 32  # parentheses and 'not' inside each other; far beyond any real rule, far below recursion limits


class RuleError(ValueError):
    """A rule that does not parse. The message is one line naming the problem and where it is."""


class Facts(Protocol):
    """What a rule looks at: one representation and whether it is its product's latest version."""

    @property
    def folder(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def is_hero(self) -> bool: ...
    @property
    def is_latest(self) -> bool: ...
    @property
    def age(self) -> float:
        """Seconds since first published."""
        ...


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Const:
    value: bool

    def matches(self, facts: Facts) -> bool:
        return self.value


@dataclass(frozen=True)
class Latest:
    def matches(self, facts: Facts) -> bool:
        return facts.is_latest


@dataclass(frozen=True)
class Hero:
    def matches(self, facts: Facts) -> bool:
        return facts.is_hero


@dataclass(frozen=True)
class Match:
    field: str
    pattern: str

    @functools.cached_property
    def _regex(self) -> re.Pattern[str]:
        return glob_regex(self.pattern)

    def matches(self, facts: Facts) -> bool:
        value = getattr(facts, self.field)
        if self.field != "folder":
            return bool(self._regex.fullmatch(value))
        parts = value.split("/")
        return any(self._regex.fullmatch("/".join(parts[: i + 1])) for i in range(len(parts)))


@dataclass(frozen=True)
class Age:
    less: bool
    seconds: float

    def matches(self, facts: Facts) -> bool:
        return facts.age < self.seconds if self.less else facts.age > self.seconds


@dataclass(frozen=True)
class Not:
    inner: Node

    def matches(self, facts: Facts) -> bool:
        return not self.inner.matches(facts)


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]

    def matches(self, facts: Facts) -> bool:
        return all(p.matches(facts) for p in self.parts)


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]

    def matches(self, facts: Facts) -> bool:
        return any(p.matches(facts) for p in self.parts)


Node = Const | Latest | Hero | Match | Age | Not | And | Or


def uses_latest(node: Node) -> bool:
    """Whether evaluating the rule needs to know each product's latest version (one more query)."""
    if isinstance(node, Latest):
        return True
    if isinstance(node, Not):
        return uses_latest(node.inner)
    if isinstance(node, And | Or):
        return any(uses_latest(p) for p in node.parts)
    return False


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex: ``**`` any characters, ``*`` / ``?`` within one folder level, ``[..]`` a set."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<field>[A-Za-z]+):(?P<value>"[^"]*"?|[^\s()"]*)
  | (?P<age>age)\s*(?P<op>[<>])\s*(?P<duration>[^\s()]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "(" ")" "word" "field" "age" "end"
    text: str
    column: int  # 1-based
    value: str = ""
    op: str = ""


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            bad = text[pos:].split(None, 1)[0]
            raise RuleError(f"unexpected {bad!r} at column {pos + 1}; {_HINT}")
        column = pos + 1
        pos = m.end()
        if m.group("space"):
            continue
        if m.group("lparen"):
            out.append(_Token("(", "(", column))
        elif m.group("rparen"):
            out.append(_Token(")", ")", column))
        elif m.group("field"):
            field = m.group("field").lower()
            value = m.group("value")
            if field not in FIELDS:
                raise RuleError(
                    f"unknown field {m.group('field')!r} at column {column}; use folder:, product: or name:"
                )
            if value.startswith('"'):
                if len(value) < 2 or not value.endswith('"'):
                    raise RuleError(f"missing closing '\"' for the pattern at column {column}")
                value = value[1:-1]
            if not value:
                raise RuleError(f"{field}: needs a pattern at column {column}, for example {field}:sh010")
            out.append(_Token("field", m.group(0), column, value=value, op=field))
        elif m.group("age"):
            out.append(_Token("age", m.group(0), column, value=m.group("duration"), op=m.group("op")))
        else:
            out.append(_Token("word", m.group("word").lower(), column))
    out.append(_Token("end", "end of rule", len(text) + 1))
    return out


def _duration(token: _Token) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([mhdw])", token.value.lower())
    if m is None:
        raise RuleError(
            f"invalid duration {token.value!r} at column {token.column}; use a number with m, h, d or w, e.g. age<7d"
        )
    return float(m.group(1)) * _UNITS[m.group(2)]


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def _enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise RuleError(
                f"the rule nests parentheses or 'not' more than {MAX_NESTING} deep at column {tok.column}; "
                "write it flatter"
            )

    @property
    def current(self) -> _Token:
        return self.tokens[self.i]

    def _is_word(self, word: str) -> bool:
        return self.current.kind == "word" and self.current.text == word

    def parse(self) -> Node:
        node = self.or_expr()
        if self.current.kind != "end":
            tok = self.current
            if tok.kind == ")":
                raise RuleError(f"unmatched ')' at column {tok.column}")
            if tok.kind == "word" and tok.text not in (*KEYWORDS, "and", "or", "not"):
                raise RuleError(f"unknown word {tok.text!r} at column {tok.column}; {_HINT}")
            raise RuleError(f"expected 'and', 'or' or the end of the rule at column {tok.column}, got {tok.text!r}")
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self._is_word("or"):
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self._is_word("and"):
            self.i += 1
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_expr(self) -> Node:
        if self._is_word("not"):
            self._enter(self.current)
            self.i += 1
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.term()

    def term(self) -> Node:
        tok = self.current
        if tok.kind == "(":
            self._enter(tok)
            self.i += 1
            node = self.or_expr()
            if self.current.kind != ")":
                raise RuleError(
                    f"missing ')' for the '(' at column {tok.column}; got {self.current.text!r} "
                    f"at column {self.current.column}"
                )
            self.i += 1
            self.depth -= 1
            return node
        if tok.kind == "field":
            self.i += 1
            return Match(tok.op, tok.value)
        if tok.kind == "age":
            self.i += 1
            return Age(tok.op == "<", _duration(tok))
        if tok.kind == "word" and tok.text in KEYWORDS:
            self.i += 1
            keywords: dict[str, Node] = {
                "everything": Const(True),
                "nothing": Const(False),
                "latest": Latest(),
                "hero": Hero(),
            }
            return keywords[tok.text]
        if tok.kind == "end":
            raise RuleError(f"the rule ends too early at column {tok.column}: expected a term; {_HINT}")
        if tok.kind == "word" and tok.text in ("and", "or"):
            raise RuleError(f"expected a term before {tok.text!r} at column {tok.column}")
        if tok.kind == ")":
            raise RuleError(f"expected a term at column {tok.column}, got ')'")
        raise RuleError(f"unknown word {tok.text!r} at column {tok.column}; {_HINT}")


@functools.lru_cache(maxsize=256)
def parse_rule(text: str) -> Node:
    """Parse a rule; raise ``RuleError`` (one line, with the column) if it does not parse."""
    if not isinstance(text, str):
        raise RuleError("a rule must be text, for example 'latest and folder:*/sh010'")
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"the rule is longer than {MAX_RULE_LENGTH} characters")
    if not text.strip():
        raise RuleError("the rule is empty; write for example 'everything' or 'latest and folder:*/sh010'")
    return _Parser(_tokens(text)).parse()


def check_rule(text: str | None) -> str | None:
    """Validator for settings: the rule unchanged, or ``ValueError`` naming the problem."""
    if text is None:
        return None
    parse_rule(text)
    return text


__all__ = ["Facts", "RuleError", "check_rule", "glob_regex", "parse_rule", "uses_latest"]
