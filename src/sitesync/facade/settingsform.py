"""Client: the settings as forms. Each value of the settings models (their JSON schema: type,
bounds, choices, and the field docstrings that ``docs/reference.md`` shows too) with its effective
value on this machine, every layer that sets it (default, system, default project, project, this
machine), which one wins, and where a form may write it (the body of ``PUT /api/v1/settings``).

Secrets are write-only: a form learns whether a layer sets one, never its value. Writes go through
``settings_set``, which validates them; this module only describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from sitesync.facade.base import FacadeBase
from sitesync.providers.registry import provider_class
from sitesync.settings.models import (
    DEFAULT_PROJECT,
    LOCAL,
    STUDIO,
    LocalSettings,
    ProjectSettings,
    ProjectSiteSettings,
    SystemSettings,
)

DEFAULT = "default"
SYSTEM = "system"
DEFAULT_PROJECT_LAYER = "default project"
PROJECT = "project"
MACHINE = "this machine"
# the project keys this machine may override in its local settings
MACHINE_PROJECT_KEYS = ("active_site", "remote_site")
_MISSING = object()


def describe_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON-schema property as a form input: kind (boolean, integer, number, text, choice,
    list, object, secret), whether it may be empty, bounds and choices."""
    schema = dict(schema)
    nullable = False
    if "anyOf" in schema:
        variants = schema.pop("anyOf")
        options = [x for x in variants if x.get("type") != "null"]
        nullable = len(options) < len(variants)
        if len(options) == 1:
            schema.update(options[0])
    out: dict[str, Any] = {"nullable": nullable}
    kind = "json"
    if "x-sitesync-local-only" in schema:  # the provider's declaration (providers/base.py)
        out["local_only"] = schema["x-sitesync-local-only"]
    if schema.get("writeOnly") or schema.get("format") == "password":
        kind = "secret"
    elif "enum" in schema:
        kind, out["choices"] = "choice", list(schema["enum"])
    elif schema.get("type") == "boolean":
        kind = "boolean"
    elif schema.get("type") in ("integer", "number"):
        kind = schema["type"]
    elif schema.get("type") == "string":
        kind = "text"
    elif schema.get("type") == "array" and schema.get("items", {}).get("type") == "string":
        kind = "list"
    elif schema.get("type") == "object":
        kind = "object"
    out["kind"] = kind
    for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"):
        if bound in schema:
            out[bound] = schema[bound]
    return out


def _dig(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


class _Field:
    """Collects one value's layers, then renders the form field (secrets without values)."""

    def __init__(self, key: str, name: str, model: type[BaseModel], schema: Mapping[str, Any]) -> None:
        self.key, self.name = key, name
        self.info = describe_schema(schema)
        self.description = schema.get("description") or model.model_fields[name].description or ""
        default = model.model_fields[name].get_default(call_default_factory=True)
        self.layers: list[tuple[str, Any]] = [(DEFAULT, _jsonable(default))]
        self.writes: dict[str, dict[str, Any]] = {}

    def layer(self, name: str, value: Any) -> None:
        if value is not _MISSING and value is not None:
            self.layers.append((name, value))

    def render(self, choices: list[str] | None = None) -> dict[str, Any]:
        secret = self.info["kind"] == "secret"
        source, value = self.layers[-1]
        field = {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            **self.info,
            "value": None if secret else value,
            "source": source,
            "is_set": value not in (None, "") and source != DEFAULT,
            "layers": [{"layer": layer, "value": None if secret else v, "set": True} for layer, v in self.layers],
            "writes": self.writes,
        }
        if choices is not None:
            field["choices"] = choices
        return field


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _properties(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()["properties"]


class SettingsFormFacade(FacadeBase):
    def settings_form(self, project: str | None = None) -> dict[str, Any]:
        """The settings of ``project`` (default: the default project) as groups of form fields:
        the project's own values, this machine's, each site's switches and provider options, and
        the system switch. See the module docstring."""
        if project is not None and project != DEFAULT_PROJECT:
            self.store.project(project)
        else:
            project = None
        docs = self.documents()
        local = self.local_settings()
        system = docs.system_settings()
        site_names = [STUDIO, LOCAL, *sorted(n for n in system.sites if n != STUDIO)]
        project_doc = docs.projects.get(project, {}) if project else {}
        local_sections = [("default", local.default.model_dump(exclude_none=True))]
        if project and project in local.projects:
            local_sections.append((f"projects.{project}", local.projects[project].model_dump(exclude_none=True)))

        def project_layers(field: _Field, path: str) -> None:
            field.layer(DEFAULT_PROJECT_LAYER, _dig(docs.default_project, path))
            field.writes[DEFAULT_PROJECT_LAYER] = {"key": path}
            if project:
                field.layer(PROJECT, _dig(project_doc, path))
                field.writes[PROJECT] = {"key": path, "project": project}

        groups = []
        fields = []
        props = _properties(ProjectSettings)
        for name in ProjectSettings.model_fields:
            if name == "sites":
                continue
            field = _Field(name, name, ProjectSettings, props[name])
            project_layers(field, name)
            choices = None
            if name in MACHINE_PROJECT_KEYS:
                for _section, values in local_sections:
                    field.layer(MACHINE, values.get(name, _MISSING))
                field.writes[MACHINE] = {"key": name, "local": True, **({"project": project} if project else {})}
                choices = site_names
            elif name == "always_accessible_on":
                choices = site_names
            fields.append(field.render(choices))
        title = f"Project {project}" if project else "Default project"
        groups.append({"id": "project", "title": title, "fields": fields})

        machine = []
        lprops = _properties(LocalSettings)
        local_doc = local.model_dump(exclude_none=True)
        for name in ("local_root", "concurrency"):
            field = _Field(name, name, LocalSettings, lprops[name])
            field.layer(MACHINE, local_doc.get(name, _MISSING))
            field.writes[MACHINE] = {"key": name, "local": True}
            machine.append(field.render())
        groups.append({"id": "machine", "title": f"This machine ({self.site_id})", "fields": machine})

        for site in site_names:
            groups.append(self._site_group(site, system, local_sections, project, project_layers))

        sprops = _properties(SystemSettings)
        switch = _Field("system.enabled", "enabled", SystemSettings, sprops["enabled"])
        switch.layer(SYSTEM, docs.system.get("enabled", _MISSING))
        switch.writes[SYSTEM] = {"key": "system.enabled"}
        groups.append({"id": "system", "title": "System (every machine)", "fields": [switch.render()]})
        return {"project": project or DEFAULT_PROJECT, "site_id": self.site_id, "groups": groups}

    def _site_group(
        self,
        site: str,
        system: SystemSettings,
        local_sections: list[tuple[str, dict[str, Any]]],
        project: str | None,
        project_layers: Any,
    ) -> dict[str, Any]:
        fields = []
        sprops = _properties(ProjectSiteSettings)
        for name in ("enabled", "wants"):
            field = _Field(f"sites.{site}.{name}", name, ProjectSiteSettings, sprops[name])
            project_layers(field, f"sites.{site}.{name}")
            if site == LOCAL and name == "wants":
                for _section, values in local_sections:
                    field.layer(MACHINE, values.get("wants", _MISSING))
                field.writes[MACHINE] = {"key": "wants", "local": True, **({"project": project} if project else {})}
            fields.append(field.render())
        definition = system.sites.get(site)
        provider = definition.provider if definition else "local_drive"
        try:
            config = provider_class(provider).Config
        except Exception:  # a provider not installed here: its options cannot be described
            config = None
        if config is not None:
            oprops = _properties(config)
            mine = self.local_settings().sites.get(site)
            for name in config.model_fields:
                field = _Field(f"sites.{site}.options.{name}", name, config, oprops[name])
                if definition is not None:
                    field.layer(SYSTEM, definition.options.get(name, _MISSING))
                    field.writes[SYSTEM] = {"key": f"system.sites.{site}.options.{name}"}
                project_layers(field, f"sites.{site}.options.{name}")
                field.layer(MACHINE, mine.options.get(name, _MISSING) if mine else _MISSING)
                field.writes[MACHINE] = {"key": f"sites.{site}.options.{name}", "local": True}
                if "local_only" in field.info:
                    # the API refuses it in every layer (403 says so): it is set on each machine
                    field.description += (
                        f" Local only ({field.info['local_only']}): set it on each machine with "
                        f"``sitesync settings set --local sites.{site}.options.{name} VALUE``."
                    )
                fields.append(field.render())
        title = f"Site {self.site_id} (this machine)" if site == LOCAL else f"Site {site}"
        return {"id": f"site:{site}", "title": title, "provider": provider, "fields": fields}
