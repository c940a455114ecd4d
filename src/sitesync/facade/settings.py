"""Client: showing, changing, exporting and importing settings (secrets masked)."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w
from pydantic import ValidationError

from sitesync.errors import ForbiddenError, InvalidSettingError
from sitesync.facade.base import FacadeBase
from sitesync.facade.common import (
    LOCAL_TOP_KEYS,
    _unmask,
)
from sitesync.machine_view import SECRET_MASK, MachineView, mask_secrets
from sitesync.secretrefs import delete_from_keyring, store_in_keyring
from sitesync.settings.layers import (
    SYSTEM_SCOPE,
    check_absolute_roots,
    check_provider_options,
    on_disk,
    project_scope,
    validate_project,
    validate_system,
)
from sitesync.settings.machine import save_local_settings
from sitesync.settings.models import (
    ANY_PLATFORM,
    DEFAULT_PROJECT,
    LOCAL,
    PROJECT_NAME_RE,
    STUDIO,
    LocalSettings,
)
from sitesync.settings.scopes import (
    Found,
    added,
    destination_message,
    destination_problems,
    project_local_only,
    system_local_only,
)
from sitesync.settings.validation import (
    check_depth,
    deep_merge,
    describe_validation_error,
    get_dotted,
    looks_secret,
    parse_cli_value,
    set_dotted,
    split_key,
)


class SettingsFacade(FacadeBase):
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
            "local": self._mask_local(self.local_settings()),
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

    def _mask_local(self, settings: LocalSettings) -> dict[str, Any]:
        doc = settings.model_dump(mode="json", exclude_none=True)
        if doc.get("sites"):
            system = self.documents().system_settings()
            doc["sites"] = {
                name: {
                    **site,
                    "options": mask_secrets(
                        system.sites[name].provider if name in system.sites else "local_drive", site.get("options", {})
                    ),
                }
                for name, site in doc["sites"].items()
            }
        return doc

    def settings_set(
        self, key: str, value: Any, *, project: str | None = None, local: bool = False, via_api: bool = False
    ) -> dict[str, Any]:
        """Set one settings key (dotted). ``value`` is parsed like the command line does when it is
        a string. ``None`` removes the key (falls back to the layer below). The answer shows the
        value as stored, secrets masked.

        Options that name programs, credentials files or secrets of this machine are refused in the
        shared settings (``ForbiddenError``: only ``local`` takes them) and, with ``via_api`` (the
        REST API), everywhere."""
        if isinstance(value, str):
            value = parse_cli_value(value)
        check_depth(value)
        try:
            split_key(key)
        except ValueError as exc:
            raise InvalidSettingError(str(exc)) from None
        if local:
            return self._set_local(key, value, project, via_api=via_api)
        docs = self.documents()
        if key == "system" or key.startswith("system."):
            sub = key[len("system.") :]
            if not sub:
                raise InvalidSettingError("name a system key, for example system.enabled")
            system = set_dotted(docs.system, sub, value)
            _refuse_local_only(system_local_only(docs.system), system_local_only(system))
            validate_system(system, overlay=self._local_overlay())
            self.store.put_settings({SYSTEM_SCOPE: system}, self.actor)
            return {"scope": "system", "key": sub, "value": _shown(self._mask_system(system), sub, value)}
        name = project or DEFAULT_PROJECT
        if project is not None:
            self.store.project(project)
        current = docs.default_project if name == DEFAULT_PROJECT else docs.projects.get(name, {})
        doc = set_dotted(current, key, value)
        _refuse_local_only(project_local_only(current, docs.system), project_local_only(doc, docs.system))
        system_settings = docs.system_settings()
        overlay = self._local_overlay()
        validate_project(name, doc, docs.default_project, system_settings, overlay)
        if name == DEFAULT_PROJECT:
            # every project inherits the default: it must stay valid for all of them
            for pname, pdoc in docs.projects.items():
                try:
                    validate_project(pname, pdoc, doc, system_settings, overlay)
                except InvalidSettingError as exc:
                    raise InvalidSettingError(f"{exc} (in project {pname!r}, which inherits this default)") from None
        self.store.put_settings({project_scope(name): doc}, self.actor)
        return {
            "scope": "default project" if name == DEFAULT_PROJECT else f"project {name}",
            "key": key,
            "value": _shown(self._mask_project(doc, None), key, value),
        }

    def _local_overlay(self) -> dict[str, dict[str, Any]]:
        """This machine's own options of each site (they complete the shared definitions)."""
        return {name: site.options for name, site in self.local_settings().sites.items()}

    def _set_local(self, key: str, value: Any, project: str | None, *, via_api: bool = False) -> dict[str, Any]:
        settings_before = self.local_settings()
        current = settings_before.model_dump(mode="json", exclude_none=True)
        if key.split(".")[0] in LOCAL_TOP_KEYS:
            if project is not None:
                raise InvalidSettingError(f"{key} is a machine-wide local setting; drop --project")
            full = key
        else:
            full = f"projects.{project}.{key}" if project else f"default.{key}"
            if project is not None:
                self.store.project(project)
        doc = set_dotted(current, full, value)
        system_doc = self.documents().system
        if via_api:
            new = added(project_local_only(current, system_doc), project_local_only(doc, system_doc))
            if new:
                raise ForbiddenError(
                    f"{new[0].key_prefix}{new[0].option.option} {new[0].option.why}: it cannot be written through "
                    "the REST API; set it on the machine itself with "
                    f"`sitesync settings set --local sites.{new[0].site}.options.{new[0].option.option} VALUE`"
                )
        try:
            settings = LocalSettings.model_validate(doc)
        except ValidationError as exc:
            raise InvalidSettingError(f"local settings: {describe_validation_error(exc)}") from None
        self._check_local(settings)
        save_local_settings(self.paths, settings)
        return {
            "scope": f"local ({self.paths.local_settings_file})",
            "key": full,
            "value": _shown(self._mask_local(settings), full, value),
        }

    def _check_local(self, settings: LocalSettings) -> None:
        """What the local settings model cannot check alone: sites that exist, sane pairs, disk
        roots that are absolute, and site options that complete the shared definitions."""
        system = self.documents().system_settings()
        defined = {STUDIO, LOCAL, self.site_id, *system.sites}
        sections = [settings.default, *settings.projects.values()]
        for section in sections:
            if section.active_site and section.active_site == section.remote_site != STUDIO:
                raise InvalidSettingError(
                    f"local settings: active_site and remote_site are both {section.active_site!r}: nothing would "
                    "be synced; choose two different sites"
                )
        for field in ("active_site", "remote_site"):
            for section in sections:
                site = getattr(section, field)
                if site is not None and site not in defined:
                    raise InvalidSettingError(
                        f"{field}: unknown site {site!r}; use studio, local or a site from `sitesync site list`"
                    )
        for section in sections:
            for site, roots in section.roots.items():
                if site in system.sites and on_disk(system.sites[site].provider):
                    check_absolute_roots(f"roots.{site}", {r: {ANY_PLATFORM: p} for r, p in roots.items()})
        for name, site in settings.sites.items():
            definition = system.sites.get(name)
            if definition is None or not site.options:
                continue
            check_provider_options(
                f"sites.{name}.options", definition.provider, deep_merge(definition.options, site.options), name
            )
            problems = destination_problems(definition.provider, definition.options, site.options)
            if problems:
                raise InvalidSettingError(destination_message(name, problems))

    def store_secret(self, name: str, value: str) -> str:
        """Store a secret in this user's OS keyring; returns its reference (``keyring:NAME``)."""
        return store_in_keyring(name, value)

    def delete_secret(self, name: str) -> bool:
        """Remove a secret from this user's OS keyring; ``False`` if there was none."""
        return delete_from_keyring(name)

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
        """Import system, default-project and project settings from TOML text (all or nothing);
        masked secrets keep the stored values."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidSettingError(f"not valid TOML: {exc}; nothing was imported") from None
        except RecursionError:
            raise InvalidSettingError("the TOML nests tables or arrays too deeply; nothing was imported") from None
        check_depth(data, "the imported settings")
        unknown = set(data) - {"system", "default_project", "projects"}
        if unknown:
            raise InvalidSettingError(
                f"unknown top-level tables {sorted(unknown)}: use system, default_project, projects"
            )
        return self.settings_import_data(data)

    def settings_import_data(
        self, data: dict[str, Any], *, dry_run: bool = False, overlay: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Validate ``{system, default_project, projects}`` documents (each replaces the stored one;
        masked secrets keep the stored values) and write them all, or nothing; ``dry_run`` only
        validates. Projects not in the catalog yet are created. ``overlay``: local site options
        that come with the import (they complete the shared definitions when validating)."""
        for table in ("system", "default_project", "projects"):
            if not isinstance(data.get(table, {}), dict):
                raise InvalidSettingError(f"{table} must be a table; nothing was imported")
        docs = self.documents()
        overlay = {**self._local_overlay(), **(overlay or {})}
        system_doc = _unmask(data.get("system", docs.system), docs.system)
        default_doc = _unmask(data.get("default_project", docs.default_project), docs.default_project)
        projects = {
            str(name): _unmask(doc, docs.projects.get(name, {})) for name, doc in data.get("projects", {}).items()
        }
        before = system_local_only(docs.system) + project_local_only(docs.default_project, docs.system)
        after = system_local_only(system_doc) + project_local_only(default_doc, system_doc)
        for name, doc in projects.items():
            before += project_local_only(docs.projects.get(name, {}), docs.system, f"projects.{name}.sites.")
            after += project_local_only(doc, system_doc, f"projects.{name}.sites.")
        _refuse_local_only(before, after, "; nothing was imported")
        system = validate_system(system_doc, overlay=overlay)
        validate_project(DEFAULT_PROJECT, default_doc, {}, system, overlay)
        existing = {p.name for p in self.store.projects()}
        out_docs: dict[str, dict[str, Any]] = {
            SYSTEM_SCOPE: system_doc,
            project_scope(DEFAULT_PROJECT): default_doc,
        }
        to_create = []
        for name, doc in projects.items():
            if not PROJECT_NAME_RE.match(name):
                raise InvalidSettingError(f"projects.{name}: invalid project name; nothing was imported")
            try:
                validate_project(name, doc, default_doc, system, overlay)
            except InvalidSettingError as exc:
                raise InvalidSettingError(f"projects.{name}: {exc}; nothing was imported") from None
            if name in existing:
                out_docs[project_scope(name)] = doc
            else:
                to_create.append((name, doc))
        stored = {
            SYSTEM_SCOPE: docs.system,
            project_scope(DEFAULT_PROJECT): docs.default_project,
            **{project_scope(n): d for n, d in docs.projects.items()},
        }
        changed = {scope: doc for scope, doc in out_docs.items() if stored.get(scope) != doc}
        if not dry_run:
            if changed:  # an import of what is stored already changes nothing, not even the version
                self.store.put_settings(changed, self.actor)
            for name, doc in to_create:
                self.store.create_project(name, doc, self.actor)
        return {
            "projects_updated": len([s for s in changed if s not in (SYSTEM_SCOPE, project_scope(DEFAULT_PROJECT))]),
            "projects_created": [n for n, _ in to_create],
            "changed": sorted(changed) + [project_scope(n) for n, _ in to_create],
        }


def _refuse_local_only(before: list[Found], after: list[Found], suffix: str = "") -> None:
    """Refuse a shared-settings change that adds an option only local settings may hold."""
    new = added(before, after)
    if new:
        raise ForbiddenError(new[0].message() + suffix)


def _shown(masked_doc: dict[str, Any], key: str, value: Any) -> Any:
    """The value of ``key`` as the masked document shows it (a secret is never echoed)."""
    if value is None:
        return None
    try:
        return get_dotted(masked_doc, key)
    except KeyError:
        return SECRET_MASK if any(looks_secret(part) for part in key.split(".")) else value
