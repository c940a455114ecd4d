"""``sitesync.Client``: the one Python facade. The CLI, the REST API and the dashboard call only this.

A client is bound to one installation (``home`` / ``SITESYNC_HOME``), one state database
(``db`` / ``SITESYNC_DB``, SQLite in the data dir by default) and this machine's site id. Methods
raise ``UserError`` subclasses for anything the caller can fix, with a message that says how.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import tomli_w
from pydantic import ValidationError

from sitesync import syncqueue
from sitesync.engine.planner import WORKER_PAUSE
from sitesync.engine.wake import WakeListener, notify_workers
from sitesync.engine.worker import Worker, WorkerOptions, new_worker_id
from sitesync.errors import (
    ConflictError,
    InvalidInputError,
    InvalidSettingError,
    NotFoundError,
    SitesyncError,
    StorageError,
    UserError,
)
from sitesync.paths import RootedPath, check_root_name, relative_to_base
from sitesync.providers.base import CAP_LOCAL_PATH
from sitesync.providers.registry import provider_class, provider_names
from sitesync.publishing import check_key, copy_into_site, hash_in_place, place_files
from sitesync.settings.layers import (
    SYSTEM_SCOPE,
    SettingsDocuments,
    project_scope,
    validate_project,
    validate_system,
)
from sitesync.settings.machine import (
    MachinePaths,
    load_local_settings,
    machine_paths,
    save_local_settings,
    site_id,
)
from sitesync.settings.models import (
    ANY_PLATFORM,
    DEFAULT_PROJECT,
    LOCAL,
    PLATFORMS,
    PROJECT_NAME_RE,
    STUDIO,
    LocalSettings,
    check_site_name,
)
from sitesync.settings.validation import describe_validation_error, parse_cli_value, set_dotted
from sitesync.sites import SECRET_MASK, MachineView, ProjectView, ProviderPool, alternative_closure, mask_secrets
from sitesync.state.database import mask_url
from sitesync.state.queries import RepresentationSummary
from sitesync.state.records import FileFacts, PublishResult, RepresentationRow
from sitesync.state.store import ALL, StateStore
from sitesync.status import summarize_site_state
from sitesync.workflows import clear as clear_flow
from sitesync.workflows import preferred as preferred_flow
from sitesync.workflows import wait as wait_flow
from sitesync.workflows.fsck import fsck_site
from sitesync.workflows.sitecheck import ProgressFn
from sitesync.workflows.validate import validate_site

PRIORITY_MIN, PRIORITY_MAX = 1, 1000
LOCAL_TOP_KEYS = {"local_root", "concurrency"}


def parse_roots(items: Sequence[str], *, local_paths: bool = True) -> dict[str, dict[str, str]]:
    """``NAME=PATH`` (every platform) or ``NAME@PLATFORM=PATH`` -> {root: {platform: path}}.

    ``local_paths``: the paths are OS paths (made absolute); off for remote storage, where
    ``bucket/prefix`` is a location inside the remote, not relative to the current folder."""
    roots: dict[str, dict[str, str]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InvalidInputError(f"invalid --root {item!r}: use NAME=PATH or NAME@PLATFORM=PATH")
        root, _, platform = name.partition("@")
        platform = platform or ANY_PLATFORM
        if platform not in (*PLATFORMS, ANY_PLATFORM):
            raise InvalidInputError(f"invalid --root {item!r}: platform must be windows, linux or darwin")
        try:
            check_root_name(root)
        except UserError as exc:
            raise InvalidInputError(f"invalid --root {item!r}: {exc}") from None
        if local_paths and not (path.startswith(("/", "\\\\")) or path[1:3] in (":/", ":\\") or "://" in path):
            path = os.path.abspath(os.path.expanduser(path))
        roots.setdefault(root, {})[platform] = path
    return roots


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"invalid --set {item!r}: use KEY=VALUE")
        out[key] = parse_cli_value(value)
    return out


@dataclass(frozen=True)
class RemoveResult:
    site: str
    deleted: int
    dropped_requests: int


class Client:
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

    # ------------------------------------------------------------------ plumbing

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

    def __enter__(self) -> Client:
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
        """Wake the workers on this machine so they see new work at once."""
        try:
            return notify_workers(self.paths.wake_dir)
        except OSError:
            return 0

    # ------------------------------------------------------------------ info

    def info(self) -> dict[str, Any]:
        view = self.view()
        projects = []
        for p in self.store.projects():
            try:
                pv = view.project(p.name)
                projects.append(
                    {
                        "name": p.name,
                        "sync_enabled": pv.sync_enabled,
                        "active_site": pv.active_site,
                        "remote_site": pv.remote_site,
                    }
                )
            except SitesyncError as exc:
                projects.append({"name": p.name, "error": str(exc)})
        return {
            "site_id": self.site_id,
            "database": self.store.display_url,
            "config_dir": str(self.paths.config_dir),
            "local_settings_file": str(self.paths.local_settings_file),
            "data_dir": str(self.paths.data_dir),
            "local_root": view.local.local_root or str(self.paths.default_local_root),
            "sync_enabled": view.system.enabled,
            "providers": provider_names(),
            "projects": projects,
        }

    # ------------------------------------------------------------------ projects

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

    # ------------------------------------------------------------------ sites

    def add_site(
        self,
        name: str,
        provider: str,
        roots: Sequence[str] = (),
        options: Sequence[str] | dict[str, Any] = (),
        alternative_sites: Sequence[str] = (),
    ) -> dict[str, Any]:
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
        sites[name] = {
            "provider": provider,
            "roots": parse_roots(roots, local_paths=CAP_LOCAL_PATH in provider_cls.capabilities),
            "options": opts,
            "alternative_sites": list(alternative_sites),
        }
        system["sites"] = sites
        validate_system(system)
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
                "roots": site.roots,
                "alternative_sites": sorted(set(site.alternative_sites)),
            }
        if spec is not None:
            entry["resolved_roots"] = spec.roots
            entry["enabled"] = spec.enabled
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
        (default: the site's first root) that is removed afterwards. See ``sitesync.site_checks``."""
        from sitesync.site_checks import run_site_test

        if project is None:
            names = [p.name for p in self.store.projects()]
            project = names[0] if names else DEFAULT_PROJECT
        else:
            self.store.project(project)
        view = self.view()
        return run_site_test(view.project(project), view.normalize_site(name), root=root, only=list(only or ()))

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

    # ------------------------------------------------------------------ settings

    def settings_show(self, project: str | None = None, effective: bool = False) -> dict[str, Any]:
        docs = self.documents()
        if project is not None and project != DEFAULT_PROJECT:
            self.store.project(project)
        if effective:
            view = self.view()
            name = project or DEFAULT_PROJECT
            if project is None:
                settings = docs.project_settings(None)
                return {
                    "project": name,
                    "settings": self._mask_project(settings.model_dump(mode="json"), view),
                }
            pv = view.project(name)
            return {
                "project": name,
                "settings": self._mask_project(pv.settings.model_dump(mode="json"), view),
                "sync_enabled": pv.sync_enabled,
                "active_site": pv.active_site,
                "remote_site": pv.remote_site,
                "always_accessible_on": list(pv.always_accessible_on),
                "sites": {
                    n: {
                        "provider": s.provider,
                        "roots": s.roots,
                        "enabled": s.enabled,
                        "options": mask_secrets(s.provider, s.options),
                    }
                    for n, s in pv.sites.items()
                },
            }
        system = docs.system_settings()
        if project is not None:
            return {"project": project, "stored": self._mask_project(docs.projects.get(project, {}), None)}
        return {
            "system": self._mask_system(system.model_dump(mode="json")),
            "default_project": self._mask_project(docs.default_project, None),
            "local": self.local_settings().model_dump(mode="json", exclude_none=True),
        }

    def _mask_system(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        out["sites"] = {
            name: {**site, "options": mask_secrets(site.get("provider", ""), site.get("options", {}))}
            for name, site in doc.get("sites", {}).items()
        }
        return out

    def _mask_project(self, doc: dict[str, Any], view: MachineView | None) -> dict[str, Any]:
        if not doc.get("sites"):
            return doc
        system = view.system if view else self.documents().system_settings()
        out = dict(doc)
        out["sites"] = {}
        for name, site in doc["sites"].items():
            provider = system.sites[name].provider if name in system.sites else "local_drive"
            out["sites"][name] = (
                {**site, "options": mask_secrets(provider, site.get("options", {}))} if "options" in site else site
            )
        return out

    def settings_set(self, key: str, value: Any, *, project: str | None = None, local: bool = False) -> dict[str, Any]:
        """Set one settings key (dotted). ``value`` is parsed like the command line does when it is
        a string. ``None`` removes the key (falls back to the layer below)."""
        if isinstance(value, str):
            value = parse_cli_value(value)
        if local:
            return self._set_local(key, value, project)
        docs = self.documents()
        if key == "system" or key.startswith("system."):
            sub = key[len("system.") :]
            if not sub:
                raise InvalidSettingError("name a system key, for example system.enabled")
            try:
                system = set_dotted(docs.system, sub, value)
            except ValueError as exc:
                raise InvalidSettingError(str(exc)) from None
            validate_system(system)
            self.store.put_settings({SYSTEM_SCOPE: system}, self.actor)
            return {"scope": "system", "key": sub, "value": value}
        name = project or DEFAULT_PROJECT
        if project is not None:
            self.store.project(project)
        current = docs.default_project if name == DEFAULT_PROJECT else docs.projects.get(name, {})
        try:
            doc = set_dotted(current, key, value)
        except ValueError as exc:
            raise InvalidSettingError(str(exc)) from None
        system = docs.system_settings()
        validate_project(name, doc, docs.default_project, system)
        if name == DEFAULT_PROJECT:
            # every project inherits the default: it must stay valid for all of them
            for pname, pdoc in docs.projects.items():
                try:
                    validate_project(pname, pdoc, doc, system)
                except InvalidSettingError as exc:
                    raise InvalidSettingError(f"{exc} (in project {pname!r}, which inherits this default)") from None
        self.store.put_settings({project_scope(name): doc}, self.actor)
        return {
            "scope": "default project" if name == DEFAULT_PROJECT else f"project {name}",
            "key": key,
            "value": value,
        }

    def _set_local(self, key: str, value: Any, project: str | None) -> dict[str, Any]:
        current = self.local_settings().model_dump(mode="json", exclude_none=True)
        if key in LOCAL_TOP_KEYS:
            if project is not None:
                raise InvalidSettingError(f"{key} is a machine-wide local setting; drop --project")
            full = key
        else:
            full = f"projects.{project}.{key}" if project else f"default.{key}"
            if project is not None:
                self.store.project(project)
        try:
            doc = set_dotted(current, full, value)
            settings = LocalSettings.model_validate(doc)
        except ValueError as exc:
            message = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise InvalidSettingError(f"local settings: {message}") from None
        defined = {STUDIO, LOCAL, self.site_id, *self.documents().system_settings().sites}
        for section in [settings.default, *settings.projects.values()]:
            if section.active_site and section.active_site == section.remote_site != STUDIO:
                raise InvalidSettingError(
                    f"local settings: active_site and remote_site are both {section.active_site!r}: nothing would "
                    "be synced; choose two different sites"
                )
        for field in ("active_site", "remote_site"):
            for section in [settings.default, *settings.projects.values()]:
                site = getattr(section, field)
                if site is not None and site not in defined:
                    raise InvalidSettingError(
                        f"{field}: unknown site {site!r}; use studio, local or a site from `sitesync site list`"
                    )
        save_local_settings(self.paths, settings)
        return {"scope": f"local ({self.paths.local_settings_file})", "key": full, "value": value}

    def settings_export(self, *, include_secrets: bool = False) -> str:
        docs = self.documents()
        system = docs.system if include_secrets else self._mask_system(docs.system)
        data: dict[str, Any] = {
            "system": system,
            "default_project": self._mask_project(docs.default_project, None),
        }
        data["projects"] = {
            name: (doc if include_secrets else self._mask_project(doc, None))
            for name, doc in sorted(docs.projects.items())
        }
        header = "# sitesync settings export\n"
        if not include_secrets:
            header += f"# secrets are masked as {SECRET_MASK!r}; importing keeps the stored values\n"
        return header + tomli_w.dumps(data)

    def settings_import(self, text: str) -> dict[str, Any]:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidSettingError(f"not valid TOML: {exc}; nothing was imported") from None
        unknown = set(data) - {"system", "default_project", "projects"}
        if unknown:
            raise InvalidSettingError(
                f"unknown top-level tables {sorted(unknown)}: use system, default_project, projects"
            )
        docs = self.documents()
        system_doc = _unmask(data.get("system", docs.system), docs.system)
        system = validate_system(system_doc)
        default_doc = _unmask(data.get("default_project", docs.default_project), docs.default_project)
        validate_project(DEFAULT_PROJECT, default_doc, {}, system)
        projects = data.get("projects", {})
        if not isinstance(projects, dict):
            raise InvalidSettingError("projects must be a table of project name = settings")
        existing = {p.name for p in self.store.projects()}
        out_docs: dict[str, dict[str, Any]] = {
            SYSTEM_SCOPE: system_doc,
            project_scope(DEFAULT_PROJECT): default_doc,
        }
        to_create = []
        for name, doc in projects.items():
            if not PROJECT_NAME_RE.match(name):
                raise InvalidSettingError(f"projects.{name}: invalid project name")
            doc = _unmask(doc, docs.projects.get(name, {}))
            try:
                validate_project(name, doc, default_doc, system)
            except InvalidSettingError as exc:
                raise InvalidSettingError(f"projects.{name}: {exc}; nothing was imported") from None
            if name in existing:
                out_docs[project_scope(name)] = doc
            else:
                to_create.append((name, doc))
        self.store.put_settings(out_docs, self.actor)
        for name, doc in to_create:
            self.store.create_project(name, doc, self.actor)
        return {"projects_updated": len(out_docs) - 2, "projects_created": [n for n, _ in to_create]}

    # ------------------------------------------------------------------ publish

    def publish(
        self,
        project: str,
        *,
        folder: str,
        product: str,
        version: str | int,
        name: str,
        files: Sequence[str],
        site: str | None = None,
        priority: int | None = None,
        links: Sequence[int] | None = None,
    ) -> PublishResult:
        """Register a representation. ``links``: the representations it references (a workfile's
        caches, textures...); given, they replace the stored links, omitted, they are kept."""
        prow = self.store.project(project)
        view = self.project_view(project)
        key = check_key(folder, product, version, name)
        if priority is not None:
            _check_priority(priority)
        link_ids = self._check_links(prow.id, key, links)
        site_name = view.active_site if site is None else self.view().normalize_site(site)
        spec = view.site(site_name)
        if not spec.reachable:
            raise InvalidInputError(f"site {site_name!r} is not reachable from this machine; publish where it is")
        placed = place_files(files, project, key, spec, view.settings.publish_template)
        facts: dict[str, FileFacts] = hash_in_place(placed)
        to_copy = [p for p in placed if not p.in_place]
        if to_copy:
            provider = self._pool.get(spec)
            try:
                provider.check()
            except StorageError as exc:
                raise InvalidInputError(f"cannot publish to site {site_name!r}: {exc}") from None
            for p in to_copy:
                try:
                    facts[p.template] = copy_into_site(p, spec, provider)
                except StorageError as exc:
                    raise InvalidInputError(f"could not copy {p.source} into site {site_name!r}: {exc}") from None
            try:
                provider.flush()
            except StorageError as exc:
                raise InvalidInputError(f"could not store the copies on site {site_name!r}: {exc}") from None
        ordered = [facts[p.template] for p in placed]
        from sitesync.engine.planner import publish_targets

        result = self.store.publish(
            prow.id,
            key,
            ordered,
            site_name,
            publish_targets(view, site_name),
            self.actor,
            priority,
            also_present=spec.alternatives,
        )
        if link_ids is not None:
            self.store.set_links(result.representation_id, link_ids, self.actor)
        if result.queued_sites or result.requeued_sites:
            self.wake()
        return result

    # ------------------------------------------------------------------ status and lookup

    def representation(self, rep_id: int) -> RepresentationRow:
        return self.store.representation(_rep_id(rep_id))

    def status(
        self,
        project: str | None = None,
        *,
        representation: int | None = None,
        site: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> dict[str, Any]:
        if representation is not None:
            return self.representation_detail(representation)
        if project is None:
            return {"projects": self.projects()}
        prow = self.store.project(project)
        view = self.project_view(project)
        if site is not None:
            site = self.view().normalize_site(site)
            view.site(site)
        shown = [site] if site else list(dict.fromkeys([view.active_site, view.remote_site]))
        total, reps = self.store.representation_page(prow.id, limit=limit, offset=offset)
        summaries = self.store.summarize(reps, shown)
        return {
            "project": project,
            "active_site": view.active_site,
            "remote_site": view.remote_site,
            "sites_shown": shown,
            "sites": [asdict(x) for x in self.store.project_site_summaries(prow.id)],
            "total": total,
            "representations": [_summary_dict(x, shown) for x in summaries],
        }

    def representation_detail(self, rep_id: int) -> dict[str, Any]:
        rep = self.representation(rep_id)
        detail = self.store.representation_detail(rep.id)
        rep_sites = self.store.representation_sites(rep.id)
        return {
            "representation": _rep_dict(rep),
            **self.links(rep.id),
            "sites": {
                site: {
                    "priority": v["priority"],
                    "paused": bool(v["paused"]),
                    "requested_by": v["requested_by"],
                }
                for site, v in rep_sites.items()
            },
            "files": [
                {
                    "id": f.id,
                    "path": f.path,
                    "size": f.size,
                    "hash": f"{f.hash_algo}:{f.hash}",
                    "replicas": [
                        {
                            "site": r.site,
                            "status": r.status,
                            "progress": 1.0 if r.status == "present" else (r.bytes_done / f.size if f.size else 0.0),
                            "attempts": r.attempts,
                            "last_error": r.last_error,
                            "paused": r.paused,
                            "priority": r.priority,
                            "updated_at": r.updated_at,
                            "source_site": r.source_site,
                        }
                        for r in replicas
                    ],
                }
                for f, replicas in detail
            ],
        }

    def resolve_path(self, template: str, project: str, site: str | None = None) -> str:
        """Where a catalog path lives on a site (default: this machine's active site)."""
        view = self.project_view(project)
        site_name = view.active_site if site is None else self.view().normalize_site(site)
        return view.site(site_name).resolve(template)

    def dirmap(self, project: str, source: str = STUDIO, target: str | None = None) -> dict[str, str]:
        """Root locations of ``source`` (default: studio) -> the same roots on ``target`` (default:
        this machine's active site), for roots both define: what a DCC's directory mapping needs to
        open studio paths from the local copies."""
        view = self.project_view(project)
        src = view.site(self.view().normalize_site(source))
        dst = view.site(view.active_site if target is None else self.view().normalize_site(target))
        return {base: dst.roots[root] for root, base in sorted(src.roots.items()) if root in dst.roots}

    def whereis(self, target: str) -> dict[str, Any]:
        """Where a representation (by id) or a file (by catalog path or OS path) has verified copies."""
        text = str(target).strip()
        if text.isdigit():
            return self._whereis_representation(int(text))
        if text.startswith("{root["):
            RootedPath.parse(text)
            files = self.store.files_by_path(text)
        else:
            files = []
            abspath = os.path.abspath(os.path.expanduser(text))
            view = self.view()
            for p in self.store.projects():
                try:
                    pv = view.project(p.name)
                except SitesyncError:
                    continue
                for spec in pv.sites.values():
                    if spec.provider != "local_drive":
                        continue
                    for root, base in spec.roots.items():
                        rel = relative_to_base(abspath, base)
                        if rel is not None:
                            files.extend(self.store.files_by_path(f"{{root[{root}]}}/{rel}"))
            seen = set()
            files = [f for f in files if not (f.id in seen or seen.add(f.id))]
        if not files:
            raise NotFoundError(
                f"no published file matches {text!r}; give a representation id, a catalog path or a path under a site root"
            )
        replicas = self.store.replicas_for_files([f.id for f in files])
        reps = self.store.representations_by_ids(sorted({f.representation_id for f in files}))
        out = []
        view = self.view()
        for f in files:
            rep = reps[f.representation_id]
            try:
                pv = view.project(rep.project)
            except SitesyncError:
                pv = None
            out.append(
                {
                    "path": f.path,
                    "representation_id": rep.id,
                    "project": rep.project,
                    "copies": [
                        {"site": r.site, "status": r.status, "location": _location(pv, r.site, f.path)}
                        for r in sorted(replicas.get(f.id, []), key=lambda x: x.site)
                    ],
                }
            )
        return {"files": out}

    def _whereis_representation(self, rep_id: int) -> dict[str, Any]:
        rep = self.representation(rep_id)
        pv = self.project_view(rep.project)
        summary = self.store.summarize([rep])[0]
        files = self.store.files_of(rep.id)
        first = files[0].path if files else None
        sites = []
        for name, state in sorted(summary.sites.items()):
            location = _location(pv, name, first) if first else None
            if location and len(files) > 1:
                location = os.path.dirname(location) if "/" in location or os.sep in location else location
            sites.append(
                {
                    "site": name,
                    "status": summarize_site_state(state, rep.file_count),
                    "present": state.counts.get("present", 0),
                    "files": rep.file_count,
                    "location": location,
                }
            )
        return {"representation": _rep_dict(rep), "sites": sites}

    # ------------------------------------------------------------------ requests and control

    def _rep_view(self, rep_id: int) -> tuple[RepresentationRow, ProjectView]:
        rep = self.representation(rep_id)
        return rep, self.project_view(rep.project)

    def _target(self, view: ProjectView, site: str | None, default: str) -> str:
        name = default if site is None else self.view().normalize_site(site)
        view.site(name)
        return name

    def download(
        self, rep_id: int, site: str | None = None, *, priority: int | None = None, with_links: bool = False
    ) -> dict[str, Any]:
        """Want the representation on the active site (or ``site``); ``with_links``: and every
        representation it references, transitively (reported under ``links``)."""
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.active_site)
        if not with_links:
            return self._want(rep, view, target, priority)
        first, *rest = [self._want(r, v, target, priority) for r, v in self._closure(rep, view, target)]
        first["links"] = rest
        return first

    def _closure(
        self, rep: RepresentationRow, view: ProjectView, target: str, *, require_sync: bool = True
    ) -> list[tuple[Any, ProjectView]]:
        """The representation and everything it references, each with its project's view, checked
        up front so that a problem with any of them refuses the whole request."""
        out = []
        for i in self.store.link_closure(rep.id):
            r, v = (rep, view) if i == rep.id else self._rep_view(i)
            self._target(v, target, target)
            if require_sync and not v.sync_enabled:
                raise InvalidInputError(
                    f"site sync is off for project {v.name!r} (representation {i} is linked); nothing was requested"
                )
            out.append((r, v))
        return out

    def upload(self, rep_id: int, site: str | None = None, *, priority: int | None = None) -> dict[str, Any]:
        """Want the representation on the remote site (or ``site``)."""
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.remote_site)
        return self._want(rep, view, target, priority)

    def _want(self, rep: RepresentationRow, view: ProjectView, target: str, priority: int | None) -> dict[str, Any]:
        if not view.sync_enabled:
            raise InvalidInputError(
                f"site sync is off for project {view.name!r}; turn it on with `sitesync settings set enabled true`"
                + ("" if view.settings.enabled else f" --project {view.name}")
            )
        if priority is not None:
            _check_priority(priority)
        counts = self.store.want(
            rep.id, target, self.actor, priority=priority, alternatives=view.site(target).alternatives
        )
        self.wake()
        return {"representation_id": rep.id, "site": target, **counts}

    def remove(self, rep_id: int, site: str | None = None) -> RemoveResult:
        """Delete the site's copy of the representation, guarded by ``min_copies``."""
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.active_site)
        spec = view.site(target)
        if not spec.reachable:
            raise InvalidInputError(f"site {target!r} is not reachable from this machine; run the removal there")
        provider = self._pool.get(spec)
        try:
            provider.check()
        except StorageError as exc:
            raise InvalidInputError(f"cannot remove from site {target!r}: {exc}") from None
        owner = new_worker_id(self.site_id)
        ticket = self.store.begin_remove(
            rep.id,
            target,
            view.settings.min_copies,
            owner,
            self.actor,
            same_storage=alternative_closure(self.view().system),
        )
        deleted, kept, first_error = [], [], None
        for rid, _fid, path in ticket.replicas:
            location = spec.resolve(path)
            try:
                provider.delete(location)
                deleted.append(rid)
            except Exception as exc:
                first_error = first_error or str(exc)
                try:
                    still_there = provider.stat(location) is not None
                except Exception:
                    still_there = True
                (kept if still_there else deleted).append(rid)
        if deleted:
            self.store.finish_remove(deleted, rep.id, target, self.actor, alternatives=spec.alternatives)
        if kept:
            self.store.abort_remove(kept)
            raise StorageError(
                f"could not delete {len(kept)} of {len(ticket.replicas)} files from site {target!r} "
                f"({first_error}); those copies stay registered, the rest were removed"
            )
        return RemoveResult(target, len(deleted), ticket.dropped_wanted)

    def reset(self, rep_id: int, site: str | None = None, *, file_id: int | None = None) -> dict[str, Any]:
        """Re-sync: clear attempts and errors and queue again. Without ``site``: every site where
        the representation is not yet present; with ``site``: that site, verified copies included."""
        rep, view = self._rep_view(rep_id)
        if site is None:
            sites = list(self.store.representation_sites(rep.id)) or [view.active_site, view.remote_site]
            result = self.store.reset(rep.id, sites, self.actor, file_id=file_id)
        else:
            target = self._target(view, site, view.active_site)
            sites = [target]
            result = self.store.reset(rep.id, sites, self.actor, include_present=True, file_id=file_id)
        self.wake()
        return {"representation_id": rep.id, "sites": sites, **result}

    def set_priority(self, rep_id: int, priority: int, site: str | None = None) -> dict[str, Any]:
        _check_priority(priority)
        rep, view = self._rep_view(rep_id)
        target = None if site is None else self._target(view, site, view.active_site)
        n = self.store.set_priority(rep.id, priority, self.actor, target)
        self.wake()
        return {"representation_id": rep.id, "priority": priority, "sites": n}

    def pause(
        self,
        *,
        project: str | None = None,
        site: str | None = None,
        representation: int | None = None,
        worker: bool = False,
    ) -> dict[str, Any]:
        """Pause a representation (x site), a project, a site, this machine's workers
        (``worker=True``) or, with nothing given, all syncing everywhere. Persistent."""
        return self._pause(True, project, site, representation, worker)

    def resume(
        self,
        *,
        project: str | None = None,
        site: str | None = None,
        representation: int | None = None,
        worker: bool = False,
    ) -> dict[str, Any]:
        result = self._pause(False, project, site, representation, worker)
        self.wake()
        return result

    def _pause(
        self, paused: bool, project: str | None, site: str | None, representation: int | None, worker: bool = False
    ) -> dict[str, Any]:
        if worker:
            if project is not None or site is not None or representation is not None:
                raise InvalidInputError("--worker pauses this machine's workers as a whole; give it alone")
            changed = self.store.set_pause(WORKER_PAUSE, self.site_id, paused, self.actor)
            return {"scope": "worker", "site_id": self.site_id, "paused": paused, "changed": changed}
        view = self.view()
        site_name = view.normalize_site(site) if site else None
        if site_name is not None and site_name not in (STUDIO, self.site_id) and site_name not in view.system.sites:
            raise NotFoundError(f"unknown site {site!r}; see `sitesync site list`")
        if representation is not None:
            if project is not None:
                raise InvalidInputError("give --representation or --project, not both")
            rep, _pv = self._rep_view(representation)
            n = self.store.set_representation_paused(rep.id, paused, self.actor, site_name)
            if n == 0:
                where = f"on site {site_name!r}" if site_name else "on any site"
                raise NotFoundError(f"representation {rep.id} is not wanted {where}; nothing to pause")
            return {
                "scope": "representation",
                "representation_id": rep.id,
                "site": site_name,
                "paused": paused,
                "sites": n,
            }
        if project is not None:
            self.store.project(project)
        changed = self.store.set_pause(project or ALL, site_name or ALL, paused, self.actor)
        scope = (
            "everything"
            if not project and not site_name
            else "project"
            if not site_name
            else "site"
            if not project
            else "project site"
        )
        return {"scope": scope, "project": project, "site": site_name, "paused": paused, "changed": changed}

    # ------------------------------------------------------------------ studio workflows (see workflows/)

    def _check_links(self, project_id: int, key: Any, links: Sequence[int] | None) -> list[int] | None:
        if links is None:
            return None
        ids = list(dict.fromkeys(_rep_id(x) for x in links))
        found = self.store.representations_by_ids(ids)
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise NotFoundError(f"unknown representation {unknown[0]} in --link; nothing was published")
        me = self.store.find_representation(project_id, key)
        if me is not None and me.id in ids:
            raise InvalidInputError(f"representation {me.id} cannot link to itself; nothing was published")
        return ids

    def links(self, rep_id: int) -> dict[str, Any]:
        """What a representation references (``links``) and what references it (``linked_by``)."""
        rep = self.representation(rep_id)
        outgoing, incoming = self.store.links_of(rep.id)
        reps = self.store.representations_by_ids([*outgoing, *incoming])
        return {
            "links": [_rep_dict(reps[i]) for i in outgoing if i in reps],
            "linked_by": [_rep_dict(reps[i]) for i in incoming if i in reps],
        }

    def validate(self, site: str, project: str | None = None, *, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Register files a site already holds (size + hash checked) and detect the copies it lost."""
        result = validate_site(self.store, self.view(), self._pool, self.actor, site, project, progress=progress)
        if result["requeued"]:
            self.wake()
        return result

    def fsck(self, site: str, project: str | None = None, *, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Re-hash the verified copies on a site; a bad copy is re-fetched from a good one."""
        result = fsck_site(self.store, self.view(), self._pool, self.actor, site, project, progress=progress)
        if result["requeued"]:
            self.wake()
        return result

    def preferred_content(self, project: str, site: str | None = None, *, apply: bool = False) -> dict[str, Any]:
        """What a site's preferred-content rule matches in a project now; ``apply`` requests what
        is not wanted there yet (the worker does the same on its own, in the background)."""
        prow = self.store.project(project)
        machine = self.view()
        pv = machine.project(project)
        name = self._target(pv, site, pv.active_site)
        rule = preferred_flow.site_rule(machine, pv, name)
        if rule is None:
            key = "sites.local.wants" if name == self.site_id else f"sites.{name}.wants"
            raise NotFoundError(
                f"site {name!r} has no preferred-content rule in project {project!r}; "
                f"set one with `sitesync settings set --project {project} {key} RULE`"
            )
        if apply and not pv.sync_enabled:
            raise InvalidInputError(f"site sync is off for project {project!r}; nothing was requested")
        found = preferred_flow.preview(
            self.store, prow.id, rule, name, self.actor, pv.site(name).alternatives, apply=apply
        )
        if found["requested"]:
            self.wake()
        reps = self.store.representations_by_ids(found["not_wanted_yet"][:200])
        return {
            "project": project,
            "site": name,
            "rule": rule,
            "matched": len(found["matched"]),
            "not_wanted_yet": len(found["not_wanted_yet"]),
            "requested": len(found["requested"]),
            "representations": [_rep_dict(reps[i]) for i in found["not_wanted_yet"][:200] if i in reps],
        }

    def wait(
        self,
        rep_id: int,
        site: str | None = None,
        *,
        timeout: float | None = None,
        with_links: bool = False,
        poll_interval: float = 1.0,
        progress: wait_flow.WaitProgressFn | None = None,
    ) -> dict[str, Any]:
        """Block until every file of the representation (``with_links``: and of what it
        references) is verified on the site (default: the active site). Asks for what is missing
        at a raised priority first. Returns ``status`` present / failed / timeout and ``exit_code``."""
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise InvalidInputError(f"invalid timeout {timeout!r}: use a number of seconds, 0 or more")
        if not isinstance(poll_interval, int | float) or poll_interval <= 0:
            raise InvalidInputError(f"invalid poll interval {poll_interval!r}: use a positive number of seconds")
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.active_site)
        members = self._closure(rep, view, target, require_sync=False) if with_links else [(rep, view)]
        ids = [r.id for r, _ in members]
        states = self.store.site_progress(ids, target)
        missing = [(r, v) for r, v in members if not wait_flow.complete(states[r.id])]
        for r, v in missing:
            if not v.sync_enabled:
                self._want(r, v, target, None)  # raises the one-line "sync is off" error, nothing asked yet
        for r, v in missing:
            current = self.store.representation_sites(r.id).get(target, {}).get("priority") or 0
            self._want(r, v, target, max(current, wait_flow.WAIT_PRIORITY))
        return wait_flow.wait_until(
            self.store, ids, target, timeout=timeout, poll_interval=poll_interval, progress=progress
        )

    def clear(self, project: str, site: str | None = None, *, progress: Any | None = None) -> dict[str, Any]:
        """Remove a project's copies from a site (default: this machine's own site) through the
        guarded removal; what ``min_copies`` or a running transfer keeps is reported with why."""
        prow = self.store.project(project)
        view = self.project_view(project)
        target = self._target(view, site, self.site_id)
        spec = view.site(target)
        if not spec.reachable:
            raise InvalidInputError(f"site {target!r} is not reachable from this machine; run clear there")
        try:
            self._pool.get(spec).check()
        except StorageError as exc:
            raise InvalidInputError(f"cannot clear site {target!r}: {exc}; nothing was removed") from None
        return clear_flow.clear_site(self.store, prow.id, project, target, self.remove, progress)

    # ------------------------------------------------------------------ the Sync Queue (see syncqueue.py)

    def sync_queue(self, project: str, **options: Any) -> dict[str, Any]:
        """One page of a project's representations with their state on the active and remote
        site (or ``active_site``/``remote_site``): filters, sort, paging; see ``syncqueue.queue_page``."""
        return syncqueue.queue_page(self, project, **options)

    def sync_queue_detail(self, rep_id: int, *, snapshot: Any = None) -> dict[str, Any]:
        """A representation on every site, and each of its files on every site."""
        return syncqueue.queue_detail(self, rep_id, snapshot)

    def project_states(self, health: Any = None) -> list[dict[str, Any]]:
        """Projects with their state for a dashboard: syncing, paused, disabled, failed counts."""
        return syncqueue.project_states(self, health)

    def history(self, **filters: Any) -> dict[str, Any]:
        """The event history, newest first, filtered by project, representation, kinds, site, text."""
        return syncqueue.history(self, **filters)

    def resync(
        self, rep_id: int, scope: str = "all", *, file_id: int | None = None, site: str | None = None
    ) -> dict[str, Any]:
        """Re-sync on the ``active`` site, the ``remote`` site, ``all`` sites it is wanted on, or
        one ``site``; the whole representation or one file."""
        return syncqueue.resync(self, rep_id, scope, file_id, site)

    def check_site(self, name: str, project: str | None = None) -> dict[str, Any]:
        """Ask the site's provider whether this machine reaches it right now."""
        return syncqueue.check_site(self, name, project)

    def provider_check(self, spec: Any) -> None:
        self._pool.get(spec).check()

    def pause_list(self) -> list[dict[str, Any]]:
        """Every pause above representation level, with who paused it and when."""
        return syncqueue.pause_list(self)

    def live_progress(self, snapshot: Any = None) -> dict[str, Any]:
        """A running worker's progress snapshot in API form, with a marker that changes on news."""
        return syncqueue.live_progress(self, snapshot)

    # ------------------------------------------------------------------ the engine

    def worker(
        self,
        *,
        once: bool = False,
        projects: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        concurrency: int | None = None,
        lease_seconds: float = 60.0,
        batch_size: int = 256,
        listen: bool = True,
    ) -> Worker:
        """A worker bound to this client's database and machine; call ``run()`` on it."""
        for p in projects or ():
            self.store.project(p)
        view = self.view()
        options = WorkerOptions(
            concurrency=concurrency or view.local.concurrency,
            once=once,
            projects=list(projects) if projects else None,
            targets=[view.normalize_site(t) for t in targets] if targets else None,
            lease_seconds=lease_seconds,
            batch_size=max(1, batch_size),
        )
        wake = WakeListener(self.paths.wake_dir) if listen else None
        return Worker(self.store, self.view, options, wake=wake)

    def sync_once(self, project: str | None = None, **kwargs: Any) -> Any:
        """Run the engine until no due work is left (what ``sitesync sync --once`` does)."""
        worker = self.worker(once=True, projects=[project] if project else None, listen=False, **kwargs)
        return worker.run()


# ---------------------------------------------------------------------- helpers


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _rep_id(value: Any) -> int:
    try:
        rep_id = int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"invalid representation id {value!r}: use the number `sitesync publish` printed"
        ) from None
    if rep_id <= 0:
        raise InvalidInputError(f"invalid representation id {value!r}: ids are positive numbers")
    return rep_id


def _check_priority(priority: int) -> None:
    if not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidInputError(
            f"invalid priority {priority!r}: use a whole number from {PRIORITY_MIN} to {PRIORITY_MAX} (higher goes first)"
        )


def _unmask(new: Any, old: Any) -> Any:
    """Imported settings: a masked secret keeps the stored value."""
    if new == SECRET_MASK:
        return old
    if isinstance(new, dict):
        old = old if isinstance(old, dict) else {}
        return {k: _unmask(v, old.get(k)) for k, v in new.items()}
    return new


def _location(view: ProjectView | None, site: str, path: str) -> str | None:
    if view is None or site not in view.sites:
        return None
    try:
        return view.sites[site].resolve(path)
    except SitesyncError:
        return None


def _rep_dict(rep: RepresentationRow) -> dict[str, Any]:
    return {
        "id": rep.id,
        "project": rep.project,
        "folder": rep.folder,
        "product": rep.product,
        "version": rep.version_label,
        "name": rep.name,
        "files": rep.file_count,
        "size": rep.total_size,
        "created_at": rep.created_at,
        "updated_at": rep.updated_at,
        "published_by": rep.published_by,
    }


def _summary_dict(summary: RepresentationSummary, sites: Sequence[str]) -> dict[str, Any]:
    rep = summary.representation
    out = _rep_dict(rep)
    out["sites"] = {}
    for site in sites:
        state = summary.sites.get(site)
        if state is None:
            out["sites"][site] = {"status": "none", "progress": 0.0, "present": 0}
            continue
        total = rep.total_size or 0
        progress = (
            (state.bytes_present + state.bytes_in_flight) / total
            if total
            else (1.0 if state.counts.get("present", 0) == rep.file_count else 0.0)
        )
        out["sites"][site] = {
            "status": summarize_site_state(state, rep.file_count),
            "progress": round(min(1.0, progress), 4),
            "present": state.counts.get("present", 0),
            "counts": state.counts,
            "priority": state.priority,
            "paused": state.paused,
            "updated_at": state.updated_at,
            "last_error": state.last_error,
        }
    return out


__all__ = ["Client", "RemoveResult", "parse_roots"]
