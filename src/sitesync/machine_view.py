"""What the settings mean on this machine: each project's effective settings with local overrides,
its active and remote site, and every site resolved to a provider, options and root locations.

``local`` in any setting is replaced by this machine's site id. Other machines' site ids appear in
the catalog (their copies) but are never reachable from here. ``ProviderPool`` keeps one provider
instance per distinct site configuration so connections are reused across transfers.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from sitesync.errors import NotFoundError, PathTemplateError, SiteUnavailableError
from sitesync.paths import RootedPath, join_root
from sitesync.providers.base import OptionsOf, Provider
from sitesync.providers.registry import provider_class
from sitesync.settings.layers import SettingsDocuments
from sitesync.settings.machine import MachinePaths
from sitesync.settings.models import (
    LOCAL,
    STUDIO,
    LocalProjectSettings,
    LocalSettings,
    ProjectSettings,
    SystemSettings,
    WorkfileSettings,
    current_platform,
    root_for_platform,
)
from sitesync.settings.scopes import destination_message, destination_problems, local_only_options
from sitesync.settings.validation import deep_merge, looks_secret

SECRET_MASK = "********"


@dataclass(frozen=True)
class SiteSpec:
    """One site as this machine sees it for one project."""

    name: str
    provider: str
    options: dict[str, Any]
    roots: dict[str, str]  # root name -> base location (provider namespace), this platform
    alternatives: tuple[str, ...] = ()
    enabled: bool = True
    reachable: bool = True
    reason: str | None = None  # why the site is not usable from here
    refused: str | None = None  # why its settings are refused (local-only options in shared settings)

    def resolve(self, template: str) -> str:
        """The provider-native location of a catalog path on this site (refuses escaping paths)."""
        rooted = RootedPath.parse(template)
        base = self.roots.get(rooted.root)
        if base is None:
            raise PathTemplateError(
                f"site {self.name!r} has no location for root {rooted.root!r}; "
                f"set one with `sitesync settings set` (roots) or `sitesync site add --root {rooted.root}=PATH`"
            )
        return join_root(base, rooted.rel)

    def cache_key(self) -> str:
        return json.dumps([self.name, self.provider, self.options, self.roots], sort_keys=True, default=str)


@dataclass(frozen=True)
class ProjectView:
    """A project's effective settings on this machine."""

    name: str
    settings: ProjectSettings
    sync_enabled: bool
    active_site: str
    remote_site: str
    always_accessible_on: tuple[str, ...]
    sites: dict[str, SiteSpec] = field(default_factory=dict)
    workfiles: WorkfileSettings = field(default_factory=WorkfileSettings)
    """The effective workfile settings (project, then this machine's overrides); ``sites`` resolved
    (``local`` is this machine; empty: the active and remote site)."""

    def site(self, name: str) -> SiteSpec:
        spec = self.sites.get(name)
        if spec is None:
            raise NotFoundError(
                f"unknown site {name!r} in project {self.name!r}; known: {', '.join(sorted(self.sites))}"
            )
        return spec

    @property
    def reachable_sites(self) -> list[str]:
        return [n for n, spec in self.sites.items() if spec.reachable and spec.enabled]


def alternative_closure(system: SystemSettings) -> dict[str, set[str]]:
    """Alternative sites are symmetric and transitive: group sites into connected components."""
    graph: dict[str, set[str]] = {}
    for name, site in system.sites.items():
        for alt in site.alternative_sites:
            graph.setdefault(name, set()).add(alt)
            graph.setdefault(alt, set()).add(name)
    out: dict[str, set[str]] = {}
    for start in graph:
        if start in out:
            continue
        component, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node in component:
                continue
            component.add(node)
            stack.extend(graph.get(node, ()))
        for node in component:
            out[node] = component - {node}
    return out


def mask_secrets(provider: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options with every secret field (``SecretStr`` in the provider's model) replaced by a mask."""
    try:
        model = provider_class(provider).Config
    except Exception:  # unknown provider: mask anything that looks secret
        model = None
    out = dict(options)
    for key in options:
        secret = False
        if model is not None and key in model.model_fields:
            info = model.model_fields[key]
            secret = info.annotation is SecretStr or "SecretStr" in str(info.annotation)
            inner = next((m for m in info.metadata if isinstance(m, OptionsOf)), None)
            if inner is not None and isinstance(options[key], dict):  # another provider's options
                name = options.get(inner.provider_field, model.model_fields[inner.provider_field].default)
                out[key] = mask_secrets(str(name), options[key])
        elif looks_secret(key):
            secret = True
        if secret and options[key] not in (None, ""):
            out[key] = SECRET_MASK
    return out


class MachineView:
    """Settings documents + local settings + this machine's identity, resolved per project."""

    def __init__(
        self,
        docs: SettingsDocuments,
        local: LocalSettings,
        site_id: str,
        paths: MachinePaths,
        platform: str | None = None,
    ) -> None:
        self.docs = docs
        self.local = local
        self.site_id = site_id
        self.paths = paths
        self.platform = platform or current_platform()
        self.system = docs.system_settings()
        self._alternatives = alternative_closure(self.system)

    @property
    def version(self) -> int:
        return self.docs.version

    def normalize_site(self, name: str) -> str:
        return self.site_id if name == LOCAL else name

    def local_overrides(self, project: str) -> LocalProjectSettings:
        base = self.local.default.model_dump(exclude_none=True)
        mine = self.local.projects.get(project)
        merged = deep_merge(base, mine.model_dump(exclude_none=True)) if mine else base
        return LocalProjectSettings.model_validate(merged)

    def project(self, name: str) -> ProjectView:
        settings = self.docs.project_settings(name)
        local = self.local_overrides(name)
        sync_enabled = self.system.enabled and settings.enabled
        active = local.active_site or settings.active_site
        remote = local.remote_site or settings.remote_site
        if not sync_enabled:
            active = remote = STUDIO
        sites = self._sites(name, settings, local)
        for key, value in (("active", active), ("remote", remote)):
            resolved = self.normalize_site(value)
            if resolved not in sites:
                raise NotFoundError(
                    f"the {key} site of project {name!r} is {value!r}, which is not defined; "
                    "fix it with `sitesync settings set` or `sitesync site add`"
                )
        always = tuple(self.normalize_site(x) for x in settings.always_accessible_on if self.normalize_site(x) in sites)
        return ProjectView(
            name=name,
            settings=settings,
            sync_enabled=sync_enabled,
            active_site=self.normalize_site(active),
            remote_site=self.normalize_site(remote),
            always_accessible_on=always if sync_enabled else (),
            sites=sites,
            workfiles=self._workfiles(settings, local, self.normalize_site(active), self.normalize_site(remote)),
        )

    def _workfiles(
        self, settings: ProjectSettings, local: LocalProjectSettings, active: str, remote: str
    ) -> WorkfileSettings:
        doc = settings.workfiles.model_dump()
        if local.workfiles is not None:
            doc.update(local.workfiles.model_dump(exclude_none=True))
        sites = [self.normalize_site(x) for x in doc["sites"]] or [active, remote]
        doc["sites"] = list(dict.fromkeys(sites))
        return WorkfileSettings.model_validate(doc)

    def local_site_options(self, name: str) -> dict[str, Any]:
        """This machine's own options of site ``name`` (``local`` is this machine's site)."""
        mine = self.local.sites.get(name) or (self.local.sites.get(LOCAL) if name == self.site_id else None)
        return mine.options if mine is not None else {}

    def _site_options(self, name: str, provider: str, shared: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """A site's effective options (shared, then this machine's over them) and, if its settings
        must not be used, why."""
        local = self.local_site_options(name)
        found = local_only_options(provider, shared)
        refused = None
        if found:
            first = found[0]
            refused = (
                f"site {name}: the shared settings give option {first.option}, which {first.why}: it is taken "
                "only from each machine's local settings; remove it from the shared settings and set it with "
                f"`sitesync settings set --local sites.{name}.options.{first.option} VALUE`"
            )
        else:
            problems = destination_problems(provider, shared, local)
            if problems:
                refused = destination_message(name, problems)
        return deep_merge(shared, local), refused

    def _sites(self, project: str, settings: ProjectSettings, local: LocalProjectSettings) -> dict[str, SiteSpec]:
        platform = self.platform
        studio_roots = {
            root: loc for root, locs in settings.roots.items() if (loc := root_for_platform(locs, platform)) is not None
        }
        studio_roots.update(local.roots.get(STUDIO, {}))
        out: dict[str, SiteSpec] = {}

        def project_site(name: str) -> tuple[bool, dict[str, str], dict[str, Any]]:
            ps = settings.sites.get(name)
            if ps is None:
                return True, {}, {}
            roots = {r: loc for r, locs in ps.roots.items() if (loc := root_for_platform(locs, platform))}
            return ps.enabled, roots, ps.options

        enabled, proots, popts = project_site(STUDIO)
        studio_def = self.system.sites.get(STUDIO)
        options, refused = self._site_options(
            STUDIO, "local_drive", {**(studio_def.options if studio_def else {}), **popts}
        )
        out[STUDIO] = SiteSpec(
            name=STUDIO,
            provider="local_drive",
            options=options,
            refused=refused,
            roots={**studio_roots, **proots},
            alternatives=tuple(sorted(self._alternatives.get(STUDIO, ()))),
            enabled=True,  # the studio site is always usable
        )
        local_base = self.local.local_root or str(self.paths.default_local_root)
        local_roots = {root: join_root(local_base, root) for root in studio_roots}
        local_roots.update(local.roots.get(LOCAL, {}))
        local_roots.update(local.roots.get(self.site_id, {}))
        enabled, proots, popts = project_site(LOCAL)
        options, refused = self._site_options(self.site_id, "local_drive", {"create_roots": True, **popts})
        out[self.site_id] = SiteSpec(
            name=self.site_id,
            provider="local_drive",
            options=options,
            refused=refused,
            roots=local_roots,
            enabled=enabled,
        )
        for name, site in self.system.sites.items():
            if name == STUDIO:
                continue
            enabled, proots, popts = project_site(name)
            roots = {r: loc for r, locs in site.roots.items() if (loc := root_for_platform(locs, platform))}
            roots.update(proots)
            roots.update(local.roots.get(name, {}))
            options, refused = self._site_options(name, site.provider, deep_merge(site.options, popts))
            out[name] = SiteSpec(
                name=name,
                provider=site.provider,
                options=options,
                refused=refused,
                roots=roots,
                alternatives=tuple(sorted(self._alternatives.get(name, ()))),
                enabled=enabled,
            )
        return out


def open_provider(spec: SiteSpec) -> Provider:
    """A provider instance for ``spec``: the only way settings become a provider, so a site whose
    settings are refused (``spec.refused``) never gets one: nothing it names is run or read."""
    if spec.refused is not None:
        raise SiteUnavailableError(spec.refused, site=spec.name)
    return provider_class(spec.provider).from_options(spec.name, spec.options, spec.roots)


class ProviderPool:
    """One provider instance per distinct site configuration, shared by threads, closed together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, Provider] = {}

    def get(self, spec: SiteSpec) -> Provider:
        key = spec.cache_key()
        with self._lock:
            inst = self._instances.get(key)
            if inst is None:
                inst = open_provider(spec)
                self._instances[key] = inst
            return inst

    def close(self) -> None:
        with self._lock:
            instances, self._instances = list(self._instances.values()), {}
        for inst in instances:
            with contextlib.suppress(Exception):  # closing is best effort
                inst.close()
