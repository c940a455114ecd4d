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
from sitesync.paths import ROOT_NAME_RE, RootedPath, check_absolute_location
from sitesync.settings.hooks import check_wants
from sitesync.settings.timetable import check_bandwidth

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
    # each field's docstring is its description (the generated docs/reference.md shows it)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


RootLocations = dict[str, str]
"""Where one root lives on one site: platform ('windows'|'linux'|'darwin'|'any') -> location."""


def _check_roots(value: dict[str, Any]) -> dict[str, RootLocations]:
    """Accept ``{root: "path"}`` (all platforms) or ``{root: {platform: "path"}}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a table of root name = path (or = table of platform = path)")
    out: dict[str, RootLocations] = {}
    for root, loc in value.items():
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
    """The provider that reaches the site's storage (see Providers)."""
    roots: dict[str, RootLocations] = Field(default_factory=dict)
    """Root name -> where that root lives on the site (per platform: windows, linux, darwin, any)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The provider's options (see its table under Providers); secrets are masked when shown."""
    alternative_sites: list[str] = Field(default_factory=list)
    """Sites that are the same storage reached another way: presence is shared, nothing is copied."""
    bandwidth: str | None = None
    """Limit for transfers to (up) and from (down) this site, per machine: a rate (``10M``), ``UP:DOWN``
    (``10M:2M``) or an rclone-style timetable (``"08:00,2M 19:00,off"``); see docs/operations.md."""

    _roots = field_validator("roots", mode="before")(_check_roots)
    _bandwidth = field_validator("bandwidth")(check_bandwidth)

    @field_validator("alternative_sites")
    @classmethod
    def _alts(cls, value: list[str]) -> list[str]:
        return [check_site_name(v) for v in value]


class SystemSettings(_Strict):
    enabled: bool = True
    """The global switch: when off, only the ``studio`` site is used and nothing is synced."""
    sites: dict[str, SiteDefinition] = Field(default_factory=dict)
    """The defined sites by name (``studio`` and this machine's site exist without a definition)."""

    @model_validator(mode="before")
    @classmethod
    def _studio_provider(cls, value: Any) -> Any:
        # ``system.sites.studio.bandwidth`` (or options) may be set without naming the provider:
        # the studio site is always local_drive
        sites = value.get("sites") if isinstance(value, dict) else None
        studio = sites.get(STUDIO) if isinstance(sites, dict) else None
        if isinstance(sites, dict) and isinstance(studio, dict) and "provider" not in studio:
            value = {**value, "sites": {**sites, STUDIO: {"provider": "local_drive", **studio}}}
        return value

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
    """Off: the project never syncs to or from this site (skipped, no errors)."""
    roots: dict[str, RootLocations] = Field(default_factory=dict)
    """The project's roots on this site, overriding the site's own."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Provider options overriding the site's for this project."""
    wants: str | None = None
    """Preferred content: a rule naming what the site fetches on its own (``latest and folder:*/sh010``;
    the rule language is in docs/pipeline-integration.md)."""

    _roots = field_validator("roots", mode="before")(_check_roots)
    _wants = field_validator("wants")(check_wants)


DEFAULT_WORKFILE_PATHS = ["**/work/**"]
DEFAULT_WORKFILE_IGNORE = [
    "*.swp",
    "*~",
    "*.autosave",
    "*.tmp",
    "*.bak",
    "*.lock",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    ".mayaSwatches/",
    "incrementalSave/",
    "backup/",
    ".nuke_autosave/",
    "*.ma.swatches",
    "*.hip_bak*",
]
"""The DCC noise never synced as workfiles: editor swap and backup files, autosaves, temporary and
lock files, Maya swatches and incremental saves, backup folders, OS thumbnails. A pattern without a
``/`` matches a file name anywhere; one ending in ``/`` a folder name anywhere; any other is a glob
relative to the project folder (``**`` spans folders)."""


def _check_globs(value: list[str]) -> list[str]:
    for pattern in value:
        if not isinstance(pattern, str) or not pattern.strip() or "\x00" in pattern:
            raise ValueError("each pattern must be a non-empty glob relative to the project folder")
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise ValueError(f"pattern {pattern!r} must stay inside the project folder (no leading '/', no '..')")
    return value


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    return value


class WorkfileSettings(_Strict):
    """Workfile sync of one project: artists' working files between sites, conflicts kept."""

    enabled: bool = False
    """On: this project's work areas are scanned and their files synced as workfiles (versions,
    conflicts kept, locks); published files are not affected."""
    roots: list[str] = Field(default_factory=lambda: ["work"])
    """The project roots holding work areas (the project's folder on each: ``<root>/<project>/``)."""
    paths: list[str] = Field(default_factory=lambda: list(DEFAULT_WORKFILE_PATHS))
    """Globs, relative to the project folder, of the files that are workfiles (``**`` spans folders)."""
    ignore: list[str] = Field(default_factory=lambda: list(DEFAULT_WORKFILE_IGNORE))
    """Globs never synced (DCC autosaves, backups, swatches, lock and temporary files); setting it
    replaces the defaults: ``*.swp``, ``*~``, ``*.autosave``, ``*.tmp``, ``*.bak``, ``*.lock``,
    ``.DS_Store``, ``Thumbs.db``, ``desktop.ini``, ``.mayaSwatches/``, ``incrementalSave/``,
    ``backup/``, ``.nuke_autosave/``, ``*.ma.swatches``, ``*.hip_bak*``. A pattern without ``/``
    matches a file name, one ending in ``/`` a folder name, anywhere."""
    sites: list[str] = Field(default_factory=list)
    """Sites carrying this project's work areas (empty: the project's active and remote site; ``local``
    is this machine). Versions travel through the remote site."""
    keep_versions_days: float = Field(default=30.0, ge=0, le=36500)
    """Days every replaced or deleted workfile version stays recoverable in the versions area on the
    remote site (``<project>/.sitesync-versions/``)."""
    lock_hours: float = Field(default=24.0, gt=0, le=8760)
    """Hours after which a workfile lock expires unless taken again."""

    _paths = field_validator("paths", "ignore", mode="before")(_split_list)
    _globs = field_validator("paths", "ignore")(_check_globs)
    _sites_list = field_validator("sites", "roots", mode="before")(_split_list)

    @field_validator("sites")
    @classmethod
    def _check_sites(cls, value: list[str]) -> list[str]:
        return [check_site_name(v) for v in value]

    @field_validator("roots")
    @classmethod
    def _check_roots(cls, value: list[str]) -> list[str]:
        for root in value:
            if not ROOT_NAME_RE.match(root):
                raise ValueError(f"invalid root name {root!r}: use letters, digits, '_' or '-'")
        return value


class LocalWorkfileSettings(_Strict):
    """This machine's overrides of a project's workfile settings (unset keys: the project's)."""

    enabled: bool | None = None
    """Turn workfile sync on or off for this project on this machine only."""
    paths: list[str] | None = None
    """This machine's workfile globs, over the project's."""
    ignore: list[str] | None = None
    """This machine's ignore globs, over the project's (replaces them)."""
    sites: list[str] | None = None
    """This machine's workfile sites, over the project's."""

    _paths = field_validator("paths", "ignore", "sites", mode="before")(_split_list)

    @field_validator("paths", "ignore")
    @classmethod
    def _globs(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_globs(value)

    @field_validator("sites")
    @classmethod
    def _check_sites(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_site_name(v) for v in value]


class ProjectSettings(_Strict):
    enabled: bool = True
    """Off: the project is skipped by every worker (nothing is synced, nothing fails)."""
    roots: dict[str, RootLocations] = Field(default_factory=dict)
    """The project's roots on the studio storage (``{root[work]}`` -> location per platform)."""
    retry_count: int = Field(3, ge=1, le=1000)
    """Attempts per file and site before it is marked failed (``reset`` queues it again)."""
    retry_backoff: float = Field(30.0, ge=0, le=86400)
    """Seconds before the first retry; doubles with each attempt, capped at one hour."""
    loop_delay: float = Field(60.0, gt=0, le=86400)
    """Seconds between a worker's looks for work when nothing wakes it (it wakes sooner for a retry
    falling due, a site re-check or new work)."""
    site_retry_backoff: float = Field(15.0, gt=0, le=3600)
    """Seconds a worker leaves a site alone after it could not be reached (one step per outage, not
    per file); doubles with each failed re-check up to ``site_retry_max``; reset when it answers."""
    site_retry_max: float = Field(600.0, gt=0, le=86400)
    """The longest a worker leaves an unreachable site alone before checking it again (seconds)."""
    active_site: str = STUDIO
    """Where artists work: publishes land here and ``download`` fetches to it (``local``: this machine)."""
    remote_site: str = STUDIO
    """Where new publishes are uploaded and ``upload`` sends to."""
    always_accessible_on: list[str] = Field(default_factory=list)
    """Sites that receive every publish as well (a backup bucket, a vendor)."""
    min_copies: int = Field(1, ge=1, le=100)
    """Verified copies that must remain on other sites for ``remove`` and ``clear`` to delete one."""
    publish_template: str = DEFAULT_PUBLISH_TEMPLATE
    """Where publish copies files that are not under a root of the active site already."""
    sites: dict[str, ProjectSiteSettings] = Field(default_factory=dict)
    """Per-site switches and overrides for this project (``sites.NAME.KEY``)."""
    workfiles: WorkfileSettings = Field(default_factory=WorkfileSettings)
    """Workfile sync (``workfiles.KEY``; see the table below)."""

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
    """This machine's choice of active site, over the project's."""
    remote_site: str | None = None
    """This machine's choice of remote site, over the project's."""
    roots: dict[str, dict[str, str]] = Field(default_factory=dict)
    """site name ('local', 'studio', any local_drive site) -> root name -> location on this machine."""
    wants: str | None = None
    """Preferred content of this machine's own site; overrides the project's ``sites.local.wants``."""
    workfiles: LocalWorkfileSettings | None = None
    """This machine's overrides of the project's workfile settings (``workfiles.KEY``)."""

    _wants = field_validator("wants")(check_wants)

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
                if site in (LOCAL, STUDIO):
                    _absolute(path, f"root {root!r} of site {site!r}: ")
        return value


class LocalSiteSettings(_Strict):
    """This machine's part of a site's definition."""

    options: dict[str, Any] = Field(default_factory=dict)
    """Provider options given on this machine only, over the shared ones: the options that name
    programs, credentials files or secrets of this machine (``env:``, ``file:``, ``keyring:``) can
    only be set here (see each provider's table)."""


def _absolute(path: str, prefix: str = "") -> str:
    """``path`` if it is absolute, else ``ValueError`` (pydantic names the key)."""
    try:
        return check_absolute_location(path, ANY_PLATFORM, context="-")
    except PathTemplateError as exc:
        raise ValueError(prefix + str(exc).removeprefix("-: ")) from None


class LocalSettings(_Strict):
    local_root: str | None = None
    """Base folder of this machine's site (an absolute path); each root R lives at ``<local_root>/R``
    unless overridden."""
    concurrency: int = Field(4, ge=1, le=256)
    """How many files this machine's worker transfers at once."""
    bandwidth: str | None = None
    """Limit for every transfer of this machine, shared by all its workers: a rate (``10M``), ``UP:DOWN``
    (``10M:2M``) or an rclone-style timetable (``"08:00,2M 19:00,off"``); changes apply within seconds."""

    _bandwidth = field_validator("bandwidth")(check_bandwidth)
    default: LocalProjectSettings = Field(default_factory=LocalProjectSettings)
    """Overrides for every project on this machine."""
    projects: dict[str, LocalProjectSettings] = Field(default_factory=dict)
    """Overrides for one project on this machine (``projects.NAME.KEY``), over ``default``."""
    sites: dict[str, LocalSiteSettings] = Field(default_factory=dict)
    """This machine's options of a site (``sites.NAME.options.KEY``), over the shared definition."""

    @field_validator("local_root")
    @classmethod
    def _local_root(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip() or "\x00" in value:
                raise ValueError("the location must be a non-empty path")
            _absolute(value)
        return value

    @model_validator(mode="after")
    def _names(self) -> LocalSettings:
        for name in self.projects:
            if not PROJECT_NAME_RE.match(name):
                raise ValueError(f"invalid project name {name!r}")
        for name in self.sites:
            check_site_name(name)
        return self
