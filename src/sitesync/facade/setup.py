"""Client: this machine's info, projects and site definitions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sitesync.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    InvalidSettingError,
    NotFoundError,
    SitesyncError,
    StorageError,
)
from sitesync.facade.base import FacadeBase
from sitesync.facade.common import (
    parse_assignments,
    parse_roots,
)
from sitesync.facade.records import MachineInfo, ProjectInfo
from sitesync.identity.storage import check_site_storage
from sitesync.machine_view import MachineView, ProjectView, mask_secrets
from sitesync.providers.base import CAP_LOCAL_PATH
from sitesync.providers.registry import provider_class, provider_names
from sitesync.settings.layers import (
    SYSTEM_SCOPE,
    validate_project,
    validate_system,
)
from sitesync.settings.machine import save_local_settings
from sitesync.settings.models import (
    DEFAULT_PROJECT,
    LOCAL,
    PROJECT_NAME_RE,
    STUDIO,
    LocalSiteSettings,
    check_site_name,
)
from sitesync.settings.scopes import destination_message, destination_problems, local_only_options
from sitesync.state.store import ALL


class SetupFacade(FacadeBase):
    def info(self) -> MachineInfo:
        """This machine's site id, the database, config paths, and each project's active/remote site."""
        view = self.view()
        projects = []
        for p in self.store.projects():
            try:
                pv = view.project(p.name)
                projects.append(ProjectInfo(p.name, pv.sync_enabled, pv.active_site, pv.remote_site))
            except SitesyncError as exc:
                projects.append(ProjectInfo(p.name, error=str(exc)))
        return MachineInfo(
            site_id=self.site_id,
            database=self.store.display_url,
            config_dir=str(self.paths.config_dir),
            local_settings_file=str(self.paths.local_settings_file),
            data_dir=str(self.paths.data_dir),
            local_root=view.local.local_root or str(self.paths.default_local_root),
            sync_enabled=view.system.enabled,
            providers=list(provider_names()),
            projects=projects,
        )

    def create_project(self, name: str, roots: Sequence[str] | dict[str, Any]) -> dict[str, Any]:
        if not PROJECT_NAME_RE.match(name) or name == DEFAULT_PROJECT:
            raise InvalidInputError(
                f"invalid project name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        root_map = parse_roots(roots) if not isinstance(roots, dict) else roots
        if not root_map:
            raise InvalidInputError("a project needs at least one root: --root work=/path/to/projects")
        docs = self.documents()
        document = {"roots": root_map}
        validate_project(name, document, docs.default_project, docs.system_settings())
        row = self.store.create_project(name, document, self.actor)
        return {"id": row.id, "name": row.name, "roots": root_map}

    def projects(self) -> list[dict[str, Any]]:
        view = self.view()
        counts = self.store.project_status_counts()
        pauses = self.store.pauses()
        out = []
        for p in self.store.projects():
            entry: dict[str, Any] = {"id": p.id, "name": p.name, "counts": counts.get(p.id, {})}
            entry["paused"] = (p.name, ALL) in pauses or (ALL, ALL) in pauses
            try:
                pv = view.project(p.name)
                entry.update(
                    enabled=pv.settings.enabled,
                    sync_enabled=pv.sync_enabled,
                    active_site=pv.active_site,
                    remote_site=pv.remote_site,
                )
            except SitesyncError as exc:
                entry["error"] = str(exc)
            out.append(entry)
        return out

    def add_site(
        self,
        name: str,
        provider: str,
        roots: Sequence[str] = (),
        options: Sequence[str] | dict[str, Any] = (),
        alternative_sites: Sequence[str] = (),
        local_options: Sequence[str] | dict[str, Any] = (),
    ) -> dict[str, Any]:
        """Define a site in the shared settings. ``local_options`` go to this machine's local
        settings (``sites.NAME.options``): the options that name programs, credentials files or
        secrets of this machine, which the shared settings refuse."""
        try:
            check_site_name(name)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        if name in (STUDIO, LOCAL, self.site_id):
            raise ConflictError(f"site {name!r} always exists; change it with `sitesync settings set`")
        provider_cls = provider_class(provider)  # clear error for an unknown provider
        docs = self.documents()
        system = dict(docs.system)
        sites = dict(system.get("sites", {}))
        if name in sites:
            raise ConflictError(
                f"site {name!r} already exists; remove it first or use `sitesync settings set system.sites.{name}...`"
            )
        opts = parse_assignments(options) if not isinstance(options, dict) else dict(options)
        mine = parse_assignments(local_options) if not isinstance(local_options, dict) else dict(local_options)
        found = local_only_options(provider, opts)
        if found:
            first = found[0]
            raise ForbiddenError(
                f"option {first.option} {first.why}: it is taken only from this machine's local settings, never "
                f"from the shared settings or the REST API; give it with --local-set {first.option}=VALUE (or "
                f"`sitesync settings set --local sites.{name}.options.{first.option} VALUE` on each machine)"
            )
        sites[name] = {
            "provider": provider,
            "roots": parse_roots(roots, local_paths=CAP_LOCAL_PATH in provider_cls.supported_capabilities()),
            "options": opts,
            "alternative_sites": list(alternative_sites),
        }
        system["sites"] = sites
        local = self.local_settings()
        if mine:
            local = local.model_copy(deep=True)
            local.sites[name] = LocalSiteSettings(options=mine)
        validate_system(system, overlay={n: s.options for n, s in local.sites.items()})
        if mine:
            problems = destination_problems(provider, opts, mine)
            if problems:
                raise InvalidSettingError(destination_message(name, problems))
            save_local_settings(self.paths, local)
        self.store.put_settings({SYSTEM_SCOPE: system}, self.actor)
        return self.site(name)

    def _site_entry(self, view: MachineView, name: str, pv: ProjectView | None) -> dict[str, Any]:
        if name == STUDIO:
            spec = pv.sites[STUDIO] if pv else None
            entry = {"name": STUDIO, "provider": "local_drive", "builtin": True, "options": {}}
        elif name == self.site_id:
            spec = pv.sites[self.site_id] if pv else None
            entry = {
                "name": name,
                "provider": "local_drive",
                "builtin": True,
                "this_machine": True,
                "options": {},
            }
        else:
            site = view.system.sites[name]
            spec = pv.sites.get(name) if pv else None
            entry = {
                "name": name,
                "provider": site.provider,
                "builtin": False,
                "options": mask_secrets(site.provider, site.options),
                "local_options": mask_secrets(site.provider, view.local_site_options(name)),
                "roots": site.roots,
                "alternative_sites": sorted(set(site.alternative_sites)),
            }
        if spec is not None:
            entry["resolved_roots"] = spec.roots
            entry["enabled"] = spec.enabled
            if spec.refused:
                entry["refused"] = spec.refused
        pauses = self.store.pauses()
        entry["paused"] = (ALL, name) in pauses
        return entry

    def sites(self, project: str | None = None) -> list[dict[str, Any]]:
        pv = self.project_view(project) if project else None
        view = self.view()
        names = [STUDIO, self.site_id, *sorted(n for n in view.system.sites if n != STUDIO)]
        return [self._site_entry(view, n, pv) for n in names]

    def site(self, name: str, project: str | None = None, *, records: bool = True) -> dict[str, Any]:
        """One site; with ``records`` also how many copies and requests the catalog has there
        (a count over the site's replicas)."""
        view = self.view()
        name = view.normalize_site(name)
        if name not in (STUDIO, self.site_id) and name not in view.system.sites:
            raise NotFoundError(f"unknown site {name!r}; see `sitesync site list`")
        pv = self.project_view(project) if project else None
        entry = self._site_entry(view, name, pv)
        if records:
            entry["records"] = self.store.site_record_count(name)
        return entry

    def site_test(
        self,
        name: str,
        *,
        project: str | None = None,
        root: str | None = None,
        only: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Run the provider contract suite against a site as this machine sees it for ``project``
        (default: the first project, else the default project), in a scratch folder below ``root``
        (default: the site's first root) that is removed afterwards. See ``sitesync.site_contract``."""
        from sitesync.site_contract import run_site_test

        if project is None:
            names = [p.name for p in self.store.projects()]
            project = names[0] if names else DEFAULT_PROJECT
        else:
            self.store.project(project)
        view = self.view()
        return run_site_test(view.project(project), view.normalize_site(name), root=root, only=list(only or ()))

    def mark_site(
        self, name: str, project: str | None = None, *, force: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        """The storage identity of a site's roots (``identity/storage.py``), for ``project`` or
        every project: each root's marker and whether it is proven to be the site's own storage.
        Writes the marker where a root is used for the first time; ``force`` writes (or replaces)
        it where the check refuses (no marker where one was, another site's, another id): a person
        says this storage is the site's. ``dry_run`` only reports."""
        view = self.view()
        site = view.normalize_site(name)
        if site not in (STUDIO, self.site_id) and site not in view.system.sites:
            raise NotFoundError(f"unknown site {name!r}; see `sitesync site list`")
        rows = [self.store.project(project)] if project else self.store.projects()
        out: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        for row in rows:
            spec = view.project(row.name).sites.get(site)
            if spec is None or not spec.reachable or not spec.roots:
                skipped.append({"project": row.name, "reason": "not reachable from this machine, or no roots"})
                continue
            provider = self._pool.get(spec)
            try:
                provider.check()
                checks = check_site_storage(
                    self.store, spec, provider, self.actor, project_id=row.id, force=force, write=not dry_run
                )
            except StorageError as exc:
                skipped.append({"project": row.name, "reason": str(exc)})
                continue
            out.extend({"project": row.name, **check.as_dict()} for check in checks)
        if project and skipped:
            raise InvalidInputError(f"cannot check site {site!r} for project {project!r}: {skipped[0]['reason']}")
        return {"site": site, "roots": out, "skipped": skipped, "ok": all(r["state"] in ("ok", "marked") for r in out)}

    def remove_site(self, name: str, *, forget: bool = False) -> dict[str, Any]:
        view = self.view()
        if name in (STUDIO, LOCAL, self.site_id):
            raise ConflictError(f"site {name!r} is built in and cannot be removed")
        if name not in view.system.sites:
            raise NotFoundError(f"unknown site {name!r}; see `sitesync site list`")
        docs = view.docs
        users = []
        for pname in [DEFAULT_PROJECT, *docs.projects]:
            ps = docs.project_settings(pname)
            if name in (ps.active_site, ps.remote_site) or name in ps.always_accessible_on:
                users.append("default project" if pname == DEFAULT_PROJECT else f"project {pname}")
        for other, site in view.system.sites.items():
            if name in site.alternative_sites:
                users.append(f"site {other} (alternative_sites)")
        if users:
            raise ConflictError(f"site {name!r} is still used by {', '.join(users)}; change those settings first")
        records = self.store.site_record_count(name)
        if sum(records.values()) and not forget:
            raise ConflictError(
                f"the catalog still records {sum(records.values())} copies or requests on site {name!r}; "
                "remove them first, or pass --forget to drop the records (the stored files are left untouched)"
            )
        system = dict(docs.system)
        system["sites"] = {k: v for k, v in system.get("sites", {}).items() if k != name}
        self.store.put_settings({SYSTEM_SCOPE: system}, self.actor)
        forgotten = self.store.forget_site(name, self.actor) if records else 0
        return {"removed": name, "forgotten_records": forgotten}
