"""The client facade's foundation: what every part of ``sitesync.Client`` stands on (the
installation's paths, the state store, settings as this machine sees them, waking workers)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Self

from sitesync import redaction
from sitesync.engine.steps import StepOwner, StepRegistry, WorkerStep
from sitesync.engine.wake import notify_workers
from sitesync.errors import SitesyncError
from sitesync.facade.common import _rep_id, _user
from sitesync.machine_view import MachineView, ProjectView, ProviderPool, alternative_closure
from sitesync.private import FILE_MODE, FOLDER_MODE, tighten
from sitesync.settings.layers import SettingsDocuments
from sitesync.settings.machine import (
    MachinePaths,
    load_local_settings,
    machine_paths,
    site_id,
)
from sitesync.settings.models import LocalSettings
from sitesync.state.database import mask_url, sqlite_file, sqlite_paths
from sitesync.state.records import RepresentationRow
from sitesync.state.store import StateStore

if TYPE_CHECKING:
    from sitesync.engine.removal import Removal

# The engine (worker, guarded removal) and the worker steps are imported where they are used, not
# here: a read-only command (``sitesync status``) never loads them (tests/test_cli_startup.py).

log = logging.getLogger("sitesync")


def _preferred_content_step(owner: StepOwner) -> WorkerStep:
    from sitesync.workflows.preferred import PreferredContent

    return PreferredContent.for_worker(owner)


def _workfiles_step(owner: StepOwner) -> WorkerStep:
    from sitesync.workfiles.loop import WorkfileLoop

    return WorkfileLoop.for_worker(owner)


def default_worker_steps() -> StepRegistry:
    """The steps each worker of a client runs every loop turn (``engine/steps.py``); a client's
    ``worker_steps`` starts as these, and more can be registered on it. Each step's module is
    imported when a worker first builds it."""
    steps = StepRegistry()
    steps.register("preferred_content", _preferred_content_step)
    steps.register("workfiles", _workfiles_step)
    return steps


class FacadeBase:
    def __init__(
        self,
        db: str | None = None,
        home: str | os.PathLike[str] | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        redaction.install()
        self.paths: MachinePaths = machine_paths(home)
        self.db_url = db or os.environ.get("SITESYNC_DB") or f"sqlite:///{self.paths.default_db_file}"
        self.site_id = site_id(self.paths)
        self.actor = actor or f"{_user()}@{self.site_id}"
        self._store: StateStore | None = None
        self._pool = ProviderPool()
        self.worker_steps: StepRegistry = default_worker_steps()

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
        """Create or upgrade the state database, and make this machine's private files (SQLite
        database, config and data folders) readable by their owner only, saying what was tightened."""
        store = StateStore(self.db_url, check=False)
        try:
            before, after = store.migrate()
        finally:
            store.close()
        return {
            "database": mask_url(self.db_url),
            "from": before,
            "to": after,
            "created": before is None,
            "tightened": self._tighten_private_files(),
        }

    def _tighten_private_files(self) -> list[str]:
        done = []
        folders = [self.paths.config_dir]
        files = [self.paths.local_settings_file, self.paths.api_token_file]
        db_file = sqlite_file(self.db_url)
        if db_file is not None:
            files += sqlite_paths(db_file)
            if db_file.parent == self.paths.data_dir:  # another folder may be shared: leave it
                folders.append(db_file.parent)
        for folder in dict.fromkeys(folders):
            done.append(tighten(folder, FOLDER_MODE))
        for path in files:
            done.append(tighten(path, FILE_MODE))
        return [x for x in done if x]

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
        except SitesyncError as exc:
            log.warning("could not notify the workers of other machines: %s", exc)
        return told

    # ------------------------------------------------------------------ shared by the parts

    def representation(self, rep_id: int) -> RepresentationRow:
        return self.store.representation(_rep_id(rep_id))

    def _rep_view(self, rep_id: int) -> tuple[RepresentationRow, ProjectView]:
        rep = self.representation(rep_id)
        return rep, self.project_view(rep.project)

    def removal(self, view: ProjectView, project_id: int) -> Removal:
        """The guarded removal (``engine/removal.py``) as this client runs it for a project."""
        from sitesync.engine.removal import Removal
        from sitesync.engine.worker import new_worker_id

        return Removal(
            self.store,
            view,
            self._pool,
            self.actor,
            new_worker_id(self.site_id),
            alternative_closure(self.view().system),
            project_id,
        )

    def _target(self, view: ProjectView, site: str | None, default: str) -> str:
        name = default if site is None else self.view().normalize_site(site)
        view.site(name)
        return name
