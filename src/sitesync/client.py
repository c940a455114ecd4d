"""``sitesync.Client``: the one Python facade. The CLI, the REST API and the dashboard call only this.

A client is bound to one installation (``home`` / ``SITESYNC_HOME``), one state database
(``db`` / ``SITESYNC_DB``, SQLite in the data dir by default) and this machine's site id. Methods
raise ``UserError`` subclasses for anything the caller can fix, with a message that says how.

The methods live in ``sitesync.facade``, one module per concern (setup, settings, catalog,
requests, workflows, workfiles, dashboard, operations, migration, overview, settingsform) over ``facade.base``;
this class assembles them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sitesync.facade.base import FacadeBase
from sitesync.facade.catalog import CatalogFacade
from sitesync.facade.common import parse_assignments, parse_roots
from sitesync.facade.dashboard import DashboardFacade
from sitesync.facade.migration import MigrationFacade
from sitesync.facade.operations import OperationsFacade
from sitesync.facade.overview import OverviewFacade
from sitesync.facade.requests import RequestsFacade
from sitesync.facade.settings import SettingsFacade
from sitesync.facade.settingsform import SettingsFormFacade
from sitesync.facade.setup import SetupFacade
from sitesync.facade.workfiles import WorkfilesFacade
from sitesync.facade.workflows import WorkflowsFacade

if TYPE_CHECKING:
    from sitesync.engine.removal import RemoveResult


class Client(
    # a part that calls another part's methods derives from it (overview -> dashboard -> catalog ->
    # workflows -> requests), so each part type-checks on its own; subclasses come before the parts
    # they build on
    OverviewFacade,
    DashboardFacade,
    CatalogFacade,
    OperationsFacade,
    WorkflowsFacade,
    RequestsFacade,
    SetupFacade,
    MigrationFacade,
    SettingsFacade,
    SettingsFormFacade,
    WorkfilesFacade,
    FacadeBase,
):
    """See the module docstring; every public method is documented where it is defined."""


__all__ = ["Client", "RemoveResult", "parse_assignments", "parse_roots"]


def __getattr__(name: str) -> Any:
    # ``RemoveResult`` lives with the engine, which read-only commands never import
    if name == "RemoveResult":
        from sitesync.engine.removal import RemoveResult

        return RemoveResult
    raise AttributeError(f"module 'sitesync.client' has no attribute {name!r}")
