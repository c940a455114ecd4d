"""Checks the settings models run on behalf of other packages, which register them here: the
settings import no workflow. The preferred-content rule language lives in ``workflows/rules.py``;
``sitesync/__init__.py`` registers its check before anything under ``sitesync`` can read settings.
"""

from __future__ import annotations

from collections.abc import Callable

RuleCheck = Callable[[str], object]
_rule_check: RuleCheck | None = None


def register_rule_check(check: RuleCheck) -> None:
    """The check of a preferred-content rule (a site's ``wants``): raises ``ValueError`` naming
    the problem of a bad rule. Registering again replaces it."""
    global _rule_check
    _rule_check = check


def check_wants(value: str | None) -> str | None:
    """Field validator of ``wants``: the rule unchanged, or the registered check's ``ValueError``.
    Without a registered check nothing is accepted unchecked: it is a programming error."""
    if value is None:
        return None
    if _rule_check is None:
        raise RuntimeError("no preferred-content rule check is registered (see sitesync.settings.hooks)")
    _rule_check(value)
    return value


__all__ = ["RuleCheck", "check_wants", "register_rule_check"]
