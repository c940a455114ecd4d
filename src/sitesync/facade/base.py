"""The client facade's foundation: what every part of ``sitesync.Client`` stands on (the
installation's paths, the state store, settings as this machine sees them, waking workers)."""

from __future__ import annotations

import logging
import os
from typing import Any, Self

from sqlalchemy.exc import SQLAlchemyError

from sitesync.engine.wake import notify_workers
from sitesync.errors import SitesyncError
from sitesync.facade.common import _user
from sitesync.settings.layers import SettingsDocuments
from sitesync.settings.machine import (
    MachinePaths,
    load_local_settings,
    machine_paths,
    site_id,
)
from sitesync.settings.models import LocalSettings
from sitesync.sites import MachineView, ProjectView, ProviderPool
from sitesync.state.database import mask_url
from sitesync.state.records import RepresentationRow
from sitesync.state.store import StateStore

log = logging.getLogger("sitesync")


class FacadeBase:
    def __init__(
        self,
        db: str | None = None,
        home: str | os.PathLike[str] | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        self.paths: MachinePaths = machine_paths(home)
        self.db_url = db or os.environ.get("SITESYNC_DB") or f"sqlite:///{self.paths.default_db_file}"
        self.site_id = site_id(self.paths)
        self.actor = actor or f"{_user()}@{self.site_id}"
        self._store: StateStore | None = None
        self._pool = ProviderPool()

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.db_url)
        return self._store

    def close(self) -> None:
        self._pool.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def init(self) -> dict[str, Any]:
        """Create or upgrade the state database."""
        store = StateStore(self.db_url, check=False)
        try:
            before, after = store.migrate()
        finally:
            store.close()
        return {"database": mask_url(self.db_url), "from": before, "to": after, "created": before is None}

    def documents(self) -> SettingsDocuments:
        version, docs = self.store.settings_documents()
        return SettingsDocuments.from_scopes(version, docs)

    def local_settings(self) -> LocalSettings:
        return load_local_settings(self.paths)

    def view(self) -> MachineView:
        return MachineView(self.documents(), self.local_settings(), self.site_id, self.paths)

    def project_view(self, project: str) -> ProjectView:
        self.store.project(project)  # clear error for an unknown project
        return self.view().project(project)

    def wake(self) -> int:
        """Wake the workers so they see new work at once: this machine's over loopback, and on
        PostgreSQL every other machine's through a notification. Returns how many local workers
        were told. Waking is a courtesy (workers also poll), so it never fails the action."""
        try:
            told = notify_workers(self.paths.wake_dir)
        except OSError:
            told = 0
        try:
            self.store.notify_workers()
        except (SitesyncError, SQLAlchemyError) as exc:
            log.warning("could not notify the workers of other machines: %s", exc)
        return told

    # ------------------------------------------------------------------ shared by the parts

    def _rep_view(self, rep_id: int) -> tuple[RepresentationRow, ProjectView]:
        rep = self.representation(rep_id)
        return rep, self.project_view(rep.project)

    def _target(self, view: ProjectView, site: str | None, default: str) -> str:
        name = default if site is None else self.view().normalize_site(site)
        view.site(name)
        return name
