"""Pydantic models of every settings layer.

Layers, later wins: system (global switch, site definitions) -> default project -> project ->
local (this machine). System and project documents live in the state database as *partial*
documents (only the keys someone set); the models below give the defaults and validate the merge.
Local settings live in a TOML file (see ``settings.local``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sitesync.errors import PathTemplateError
from sitesync.paths import ROOT_NAME_RE, RootedPath
from sitesync.workflows.rules import check_rule

PLATFORMS = ("windows", "linux", "darwin")
ANY_PLATFORM = "any"
SITE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PROJECT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STUDIO = "studio"
LOCAL = "local"  # in settings: "this machine's site id"
DEFAULT_PROJECT = "__default__"
TEMPLATE_FIELDS = frozenset({"project", "folder", "product", "version", "name", "filename"})
DEFAULT_PUBLISH_TEMPLATE = "{root[work]}/{project}/{folder}/publish/{product}/{version}/{name}/{filename}"


def current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


def check_site_name(name: str) -> str:
    if not isinstance(name, str) or not SITE_NAME_RE.match(name):
        raise ValueError(
            f"invalid site name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


RootLocations = dict[str, str]
"""Where one root lives on one site: platform ('windows'|'linux'|'darwin'|'any') -> location."""


def _check_roots(value: dict[str, Any]) -> dict[str, RootLocations]:
    """Accept ``{root: "path"}`` (all platforms) or ``{root: {platform: "path"}}``."""
    out: dict[str, RootLocations] = {}
    for root, loc in (value or {}).items():
        if not ROOT_NAME_RE.match(str(root)):
            raise ValueError(f"invalid root name {root!r}: use letters, digits, '_' or '-'")
        if isinstance(loc, str):
            loc = {ANY_PLATFORM: loc}
        if not isinstance(loc, dict) or not loc:
            raise ValueError(f"root {root!r} must be a path or a table of platform = path")
        for platform, path in loc.items():
            if platform not in (*PLATFORMS, ANY_PLATFORM):
                raise ValueError(f"root {root!r}: unknown platform {platform!r}; use windows, linux, darwin or any")
            if not isinstance(path, str) or not path.strip() or "\x00" in path:
                raise ValueError(f"root {root!r} on {platform}: the location must be a non-empty path")
        out[str(root)] = {str(k): str(v) for k, v in loc.items()}
    return out


def root_for_platform(locations: RootLocations, platform: str | None = None) -> str | None:
    platform = platform or current_platform()
    return locations.get(platform) or locations.get(ANY_PLATFORM)


class SiteDefinition(_Strict):
    """A site defined at system level: which provider, its options and where each root lives."""

    provider: str
    roots: dict[str, RootLocations] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    alternative_sites: list[str] = Field(default_factory=list)

    _roots = field_validator("roots", mode="before")(_check_roots)

    @field_validator("alternative_sites")
    @classmethod
    def _alts(cls, value: list[str]) -> list[str]:
        return [check_site_name(v) for v in value]


class SystemSettings(_Strict):
    enabled: bool = True
    """The global switch: when off, only the ``studio`` site is used and nothing is synced."""
    sites: dict[str, SiteDefinition] = Field(default_factory=dict)

    @field_validator("sites")
    @classmethod
    def _site_names(cls, value: dict[str, SiteDefinition]) -> dict[str, SiteDefinition]:
        for name in value:
            check_site_name(name)
            if name == LOCAL:
                raise ValueError("'local' is reserved: it means this machine's own site")
        return value


class ProjectSiteSettings(_Strict):
    """Per-project switches and overrides of one site."""

    enabled: bool = True
    roots: dict[str, RootLocations] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    wants: str | None = None
    """Preferred content: a rule (see ``workflows/rules.py``) naming what the site fetches on its own."""

    _roots = field_validator("roots", mode="before")(_check_roots)
    _wants = field_validator("wants")(check_rule)


class ProjectSettings(_Strict):
    enabled: bool = True
    roots: dict[str, RootLocations] = Field(default_factory=dict)
    """The project's roots on the studio storage (``{root[work]}`` -> location per platform)."""
    retry_count: int = Field(3, ge=1, le=1000)
    retry_backoff: float = Field(30.0, ge=0, le=86400)
    """Seconds before the first retry; doubles with each attempt, capped at one hour."""
    loop_delay: float = Field(60.0, gt=0, le=86400)
    active_site: str = STUDIO
    remote_site: str = STUDIO
    always_accessible_on: list[str] = Field(default_factory=list)
    min_copies: int = Field(1, ge=1, le=100)
    publish_template: str = DEFAULT_PUBLISH_TEMPLATE
    sites: dict[str, ProjectSiteSettings] = Field(default_factory=dict)

    _roots = field_validator("roots", mode="before")(_check_roots)

    @field_validator("active_site", "remote_site")
    @classmethod
    def _site(cls, value: str) -> str:
        return check_site_name(value)

    @field_validator("always_accessible_on", mode="before")
    @classmethod
    def _sites(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("always_accessible_on")
    @classmethod
    def _check_sites(cls, value: list[str]) -> list[str]:
        return [check_site_name(v) for v in value]

    @field_validator("publish_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not value.startswith("{root[") or "{filename}" not in value:
            raise ValueError("must start with '{root[NAME]}/' and contain '{filename}'")
        head, _, rest = value.partition("]}")
        unknown = set(re.findall(r"\{([^}]*)\}", rest)) - TEMPLATE_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; use {', '.join(sorted(TEMPLATE_FIELDS))}")
        sample = head + "]}" + re.sub(r"\{[a-z_]+\}", "x", rest)
        try:
            RootedPath.parse(sample)
        except PathTemplateError as exc:
            raise ValueError(f"would give paths outside the root ({exc})") from None
        return value


class LocalProjectSettings(_Strict):
    """This machine's overrides for one project (or for every project, as the default)."""

    active_site: str | None = None
    remote_site: str | None = None
    roots: dict[str, dict[str, str]] = Field(default_factory=dict)
    """site name ('local', 'studio', any local_drive site) -> root name -> location on this machine."""
    wants: str | None = None
    """Preferred content of this machine's own site; overrides the project's ``sites.local.wants``."""

    _wants = field_validator("wants")(check_rule)

    @field_validator("active_site", "remote_site")
    @classmethod
    def _site(cls, value: str | None) -> str | None:
        return None if value is None else check_site_name(value)

    @field_validator("roots")
    @classmethod
    def _roots(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for site, roots in value.items():
            check_site_name(site)
            for root, path in roots.items():
                if not ROOT_NAME_RE.match(root):
                    raise ValueError(f"invalid root name {root!r}")
                if not path or "\x00" in path:
                    raise ValueError(f"roots.{site}.{root}: the location must be a non-empty path")
        return value


class LocalSettings(_Strict):
    local_root: str | None = None
    """Base folder of this machine's site; each root R lives at ``<local_root>/R`` unless overridden."""
    concurrency: int = Field(4, ge=1, le=256)
    """How many files this machine's worker transfers at once."""
    default: LocalProjectSettings = Field(default_factory=LocalProjectSettings)
    projects: dict[str, LocalProjectSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> LocalSettings:
        for name in self.projects:
            if not PROJECT_NAME_RE.match(name):
                raise ValueError(f"invalid project name {name!r}")
        return self
