"""Client: showing, changing, exporting and importing settings (secrets masked)."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w
from pydantic import ValidationError

from sitesync.errors import InvalidSettingError
from sitesync.facade.base import FacadeBase
from sitesync.facade.common import (
    LOCAL_TOP_KEYS,
    _unmask,
)
from sitesync.settings.layers import (
    SYSTEM_SCOPE,
    project_scope,
    validate_project,
    validate_system,
)
from sitesync.settings.machine import save_local_settings
from sitesync.settings.models import (
    DEFAULT_PROJECT,
    LOCAL,
    PROJECT_NAME_RE,
    STUDIO,
    LocalSettings,
)
from sitesync.settings.validation import describe_validation_error, parse_cli_value, set_dotted
from sitesync.sites import SECRET_MASK, MachineView, mask_secrets


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
