"""sitesync: keeps the published files of film, animation and game studios where people need them.

The public Python API is ``sitesync.Client``; errors are in ``sitesync.errors``.

``Client`` is imported on first use, not with the package: every ``sitesync.<module>`` import
passes through here, and the client pulls in the state store (SQLAlchemy) and the settings models
(pydantic), which commands such as ``sitesync --help`` never need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sitesync.errors import SitesyncError, UserError
from sitesync.settings.hooks import register_rule_check

if TYPE_CHECKING:
    from sitesync.client import Client


def _check_rule(text: str) -> object:
    # imported when a rule is first checked: the parser is not needed to start sitesync
    from sitesync.workflows.rules import check_rule

    return check_rule(text)


# the composition root of what the core calls back: settings validate a site's preferred-content
# rule through this hook (the settings import no workflow); the worker's per-loop steps are wired
# by the client (``facade/base.py``)
register_rule_check(_check_rule)

__version__ = "0.1.0"
__all__ = ["Client", "SitesyncError", "UserError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from sitesync.client import Client

        return Client
    raise AttributeError(f"module 'sitesync' has no attribute {name!r}")
