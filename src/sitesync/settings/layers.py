"""Layering and validation of the stored settings documents.

The database holds partial documents: ``system``, ``project:__default__`` and ``project:<name>``.
``SettingsDocuments`` merges them (defaults <- default project <- project) and validates the result
against the models, including what one document cannot check alone: that sites named in a project
exist and that each site's options satisfy its provider's own options model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from sitesync.errors import InvalidSettingError, PathTemplateError, SitesyncError
from sitesync.paths import check_absolute_location
from sitesync.providers.base import CAP_LOCAL_PATH, LocalOnly
from sitesync.providers.registry import provider_class
from sitesync.settings.models import (
    ANY_PLATFORM,
    DEFAULT_PROJECT,
    LOCAL,
    STUDIO,
    ProjectSettings,
    RootLocations,
    SystemSettings,
)
from sitesync.settings.validation import deep_merge, describe_validation_error

SYSTEM_SCOPE = "system"


def project_scope(name: str) -> str:
    return f"project:{name}"


@dataclass
class SettingsDocuments:
    """Every stored settings document at one version."""

    version: int = 0
    system: dict[str, Any] = field(default_factory=dict)
    default_project: dict[str, Any] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_scopes(cls, version: int, docs: dict[str, dict[str, Any]]) -> SettingsDocuments:
        out = cls(version=version, system=docs.get(SYSTEM_SCOPE, {}))
        for scope, doc in docs.items():
            if scope == project_scope(DEFAULT_PROJECT):
                out.default_project = doc
            elif scope.startswith("project:"):
                out.projects[scope[len("project:") :]] = doc
        return out

    def system_settings(self) -> SystemSettings:
        # Reading what is stored must not depend on every provider being installed here: a site
        # whose provider is missing or whose options no longer fit fails when it is used (the
        # worker leaves it alone), and never stops the other sites. Writes are checked fully.
        return validate_system(self.system, check_providers=False)

    def project_document(self, project: str) -> dict[str, Any]:
        """The merged (default project <- project) document, before model defaults."""
        return deep_merge(self.default_project, self.projects.get(project, {}))

    def project_settings(self, project: str | None) -> ProjectSettings:
        doc = self.default_project if project in (None, DEFAULT_PROJECT) else self.project_document(project)
        try:
            return ProjectSettings.model_validate(doc)
        except ValidationError as exc:
            where = "default project" if project in (None, DEFAULT_PROJECT) else f"project {project!r}"
            raise InvalidSettingError(
                f"stored settings of the {where} are invalid: {describe_validation_error(exc)}"
            ) from None


def validate_system(
    doc: dict[str, Any], *, check_providers: bool = True, overlay: dict[str, dict[str, Any]] | None = None
) -> SystemSettings:
    """Validate the system document. ``overlay``: this machine's local options per site, which
    complete the shared ones (options such as credential files are only ever given there)."""
    overlay = overlay or {}
    try:
        system = SystemSettings.model_validate(doc)
    except ValidationError as exc:
        raise InvalidSettingError(describe_validation_error(exc, "system.")) from None
    names = set(system.sites) | {STUDIO}
    for name, site in system.sites.items():
        if name == STUDIO and site.provider != "local_drive":
            raise InvalidSettingError("system.sites.studio.provider: the studio site is always local_drive")
        if check_providers:
            check_shared_and_local_options(
                f"system.sites.{name}.options", site.provider, site.options, overlay.get(name, {}), name
            )
            if on_disk(site.provider):
                check_absolute_roots(f"system.sites.{name}.roots", site.roots)
        for alt in site.alternative_sites:
            if alt not in names:
                raise InvalidSettingError(
                    f"system.sites.{name}.alternative_sites: unknown site {alt!r}; add it first with `sitesync site add`"
                )
            if alt == name:
                raise InvalidSettingError(f"system.sites.{name}.alternative_sites: a site is not its own alternative")
    return system


def on_disk(provider: str) -> bool:
    """Whether a provider's root locations are OS paths on this machine."""
    try:
        return CAP_LOCAL_PATH in provider_class(provider).supported_capabilities()
    except SitesyncError:
        return False


def check_absolute_roots(key: str, roots: dict[str, RootLocations]) -> None:
    """Disk roots must be absolute paths (a relative one depends on each command's working folder)."""
    for root, locations in roots.items():
        for platform, location in locations.items():
            where = f"{key}.{root}" + ("" if platform == ANY_PLATFORM else f".{platform}")
            try:
                check_absolute_location(location, platform, context=where)
            except PathTemplateError as exc:
                raise InvalidSettingError(str(exc)) from None


def check_shared_and_local_options(
    key: str, provider: str, shared: dict[str, Any], local: dict[str, Any], site: str = "NAME"
) -> None:
    """Check a site's options as this machine uses them (``shared`` completed and overridden by its
    ``local`` options), and, where this machine overrides a shared value, that shared value too:
    every other machine reads it, so an invalid one must not hide behind a local override. Local
    values still fill what the shared document leaves to each machine (credential files...)."""
    check_provider_options(key, provider, deep_merge(shared, local), site)
    if local:
        check_provider_options(key, provider, deep_merge(local, shared), site)


def check_provider_options(key: str, provider: str, options: dict[str, Any], site: str = "NAME") -> None:
    try:
        cls = provider_class(provider)
    except SitesyncError as exc:
        raise InvalidSettingError(f"{key.rsplit('.', 1)[0]}.provider: {exc}") from None
    try:
        cls.Config.model_validate(options)
    except ValidationError as exc:
        message = describe_validation_error(exc, f"{key}.")
        local_only = [
            n for n, info in cls.Config.model_fields.items() if any(isinstance(m, LocalOnly) for m in info.metadata)
        ]
        named = [n for n in local_only if n in message and n not in options]
        if named:
            message += f" ({named[0]} is set on each machine: `sitesync settings set --local sites.{site}.options.{named[0]} VALUE`)"
        raise InvalidSettingError(message) from None
    except (TypeError, AttributeError, KeyError, RecursionError) as exc:
        # a third-party provider's validator that did not expect this shape: still one line
        raise InvalidSettingError(f"{key}: invalid options for provider {provider} ({type(exc).__name__})") from None


def validate_project(
    project: str,
    doc: dict[str, Any],
    default_doc: dict[str, Any],
    system: SystemSettings,
    overlay: dict[str, dict[str, Any]] | None = None,
) -> ProjectSettings:
    """Validate a project (or the default project) document merged over the default project
    (``overlay``: this machine's local options per site, as for ``validate_system``)."""
    overlay = overlay or {}
    if not isinstance(doc, dict):
        raise InvalidSettingError("a project's settings must be a table of key = value")
    merged = doc if project == DEFAULT_PROJECT else deep_merge(default_doc, doc)
    try:
        settings = ProjectSettings.model_validate(merged)
    except ValidationError as exc:
        raise InvalidSettingError(describe_validation_error(exc)) from None
    check_absolute_roots("roots", settings.roots)
    known = set(system.sites) | {STUDIO, LOCAL}
    for key in ("active_site", "remote_site"):
        value = getattr(settings, key)
        if value not in known:
            raise InvalidSettingError(
                f"{key}: unknown site {value!r}; use studio, local or a site defined with `sitesync site add`"
                + (f" ({', '.join(sorted(system.sites))})" if system.sites else " (none defined yet)")
            )
    if settings.active_site == settings.remote_site != STUDIO:
        raise InvalidSettingError(
            f"active_site and remote_site are both {settings.active_site!r}: nothing would be synced; "
            "choose two different sites (both 'studio' means site sync is not used)"
        )
    for value in settings.always_accessible_on:
        if value not in known:
            raise InvalidSettingError(
                f"always_accessible_on: unknown site {value!r}; define it with `sitesync site add`"
            )
    for name, site in settings.sites.items():
        if name not in known:
            raise InvalidSettingError(f"sites.{name}: unknown site {name!r}; define it with `sitesync site add`")
        provider = system.sites[name].provider if name in system.sites else "local_drive"
        if on_disk(provider):
            check_absolute_roots(f"sites.{name}.roots", site.roots)
        if site.options:
            base = system.sites[name].options if name in system.sites else {}
            check_shared_and_local_options(
                f"sites.{name}.options", provider, deep_merge(base, site.options), overlay.get(name, {}), name
            )
    template_root = settings.publish_template[len("{root[") :].split("]", 1)[0]
    if settings.roots and template_root not in settings.roots:
        raise InvalidSettingError(
            f"publish_template: root {template_root!r} is not one of the project's roots ({', '.join(settings.roots)})"
        )
    return settings
