"""OpenPype's Site Sync settings mapped to sitesync settings, key by key.

The export is one JSON object holding any of:

* ``system_settings`` (or the system settings document itself, with ``modules``):
  ``modules.sync_server`` with ``enabled`` and ``sites.NAME`` (``provider``, ``alternative_sites``,
  and any provider options set at system level);
* ``project_settings``: project name (``__default_project__`` for the default) -> that project's
  settings, of which ``global.sync_server`` (``enabled``, ``config.retry_cnt``, ``loop_delay``,
  ``active_site``, ``remote_site``, ``always_accessible_on``, ``sites.NAME`` with ``enabled``,
  ``root`` and the provider's options) and the anatomy's ``roots`` are read; a bare project
  export (top-level ``global``) is the project named on the command line, else the default;
* ``project_anatomy``: project name -> anatomy (its ``roots``), when exported apart;
* ``local_settings``: ``projects.NAME`` (``__default_project__``) with ``active_site``,
  ``remote_site`` and root overrides per site (``local: {work: PATH}``, ``studio: {...}``), and
  ``local_root``.

Site options set for the default project become the site's own options (every project inherits
them); a project's differing options become that project's overrides. Each key mapped and each
key not mapped (with the reason) is reported; secrets are masked in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sitesync.machine_view import SECRET_MASK
from sitesync.settings.models import DEFAULT_PROJECT, LOCAL, PLATFORMS, STUDIO
from sitesync.settings.validation import deep_merge, looks_secret

DEFAULT_KEYS = ("__default_project__", "__default__", "default")
PROVIDERS = {"local_drive", "gdrive", "dropbox", "sftp", "rclone"}
BUILTIN_LOCAL_DRIVE = {STUDIO, LOCAL}


@dataclass
class SettingsMapping:
    system: dict[str, Any] = field(default_factory=dict)
    default_project: dict[str, Any] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)
    mapped: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def map(self, source: str, target: str, value: Any) -> None:
        shown = SECRET_MASK if looks_secret(target.rsplit(".", 1)[-1]) and value not in (None, "") else value
        self.mapped.append({"from": source, "to": target, "value": shown})

    def skip(self, source: str, reason: str) -> None:
        self.unmapped.append({"key": source, "reason": reason})


def _platform_paths(value: Any) -> dict[str, str]:
    """A multiplatform path (``{windows, linux, darwin}``) without its empty entries; a plain
    string is every platform's."""
    if isinstance(value, str):
        return {"any": value} if value.strip() else {}
    if isinstance(value, dict):
        return {p: str(v) for p, v in value.items() if p in PLATFORMS and isinstance(v, str) and v.strip()}
    return {}


def _single_path(value: dict[str, str], current: str = "linux") -> tuple[str | None, bool]:
    """One path for an option that takes one: the only value, else this platform's (and whether
    other platforms had different values)."""
    values = set(value.values())
    if len(values) == 1:
        return values.pop(), False
    return value.get(current) or value.get("any") or next(iter(value.values()), None), bool(values)


class _SiteMapper:
    """Maps one site's settings (at system or project level) to options, roots and enabled."""

    def __init__(self, out: SettingsMapping, site: str, provider: str, where: str, target: str) -> None:
        self.out, self.site, self.provider, self.where, self.target = out, site, provider, where, target
        self.options: dict[str, Any] = {}
        self.roots: dict[str, Any] = {}
        self.enabled: bool | None = None

    def option(self, key: str, name: str, value: Any) -> None:
        self.options[name] = value
        self.out.map(f"{self.where}.{key}", f"{self.target}.options.{name}", value)

    def read(self, values: dict[str, Any]) -> None:
        handler = getattr(self, f"_{self.provider}", None)
        for key, value in values.items():
            if key in ("provider", "alternative_sites"):
                continue
            if key == "enabled":
                self._enabled(value)
            elif key == "root":
                self._root(value)
            elif handler is None or not handler(key, value):
                self.out.skip(f"{self.where}.{key}", f"no equivalent for the {self.provider} provider")

    def _enabled(self, value: Any) -> None:
        if self.site in BUILTIN_LOCAL_DRIVE:
            self.out.skip(f"{self.where}.enabled", f"the {self.site} site is always usable (OpenPype ignored this too)")
            return
        self.enabled = bool(value)
        self.out.map(f"{self.where}.enabled", f"{self.target}.enabled", self.enabled)
        if self.provider == "local_drive":
            self.out.notes.append(
                f"{self.where}.enabled: OpenPype's local_drive provider ignored this switch; sitesync honours it"
            )

    def _root(self, value: Any) -> None:
        if self.site in BUILTIN_LOCAL_DRIVE:
            self.out.skip(
                f"{self.where}.root",
                "unused by OpenPype: the studio site uses the project's anatomy roots, this machine's site its local settings",
            )
            return
        if not isinstance(value, dict):
            self.out.skip(f"{self.where}.root", "not a table of root name -> location")
            return
        if self.provider == "gdrive":
            self._gdrive_roots(value)
            return
        for root, location in value.items():
            paths = _platform_paths(location)
            if not paths:
                self.out.skip(f"{self.where}.root.{root}", "empty")
                continue
            self.roots[root] = paths
            self.out.map(f"{self.where}.root.{root}", f"{self.target}.roots.{root}", paths)

    def _gdrive_roots(self, value: dict[str, Any]) -> None:
        # OpenPype: {"work": "/My Drive/sync/test"} from the top of a drive; sitesync: one
        # destination folder per site (`folder`) and root locations below it
        tops = {}
        for root, location in value.items():
            path = location if isinstance(location, str) else ""
            parts = [p for p in path.split("/") if p]
            if not parts:
                self.out.skip(f"{self.where}.root.{root}", "empty")
                continue
            tops[root] = (parts[0], "/" + "/".join(parts[1:]))
        if len({top for top, _ in tops.values()}) > 1:
            self.out.skip(
                f"{self.where}.root",
                "roots on several drives; a gdrive site has one destination folder: define one site per drive",
            )
            return
        for root, (top, rest) in tops.items():
            if "folder" not in self.options:
                self.option("root", "folder", top)
            self.roots[root] = rest
            self.out.map(f"{self.where}.root.{root}", f"{self.target}.roots.{root}", rest)

    def _gdrive(self, key: str, value: Any) -> bool:
        if key == "credentials_url":
            paths = _platform_paths(value)
            if not paths:
                self.out.skip(f"{self.where}.{key}", "empty: set credentials (the service account key file)")
            else:
                self.option(key, "credentials", paths)
            return True
        return False

    def _dropbox(self, key: str, value: Any) -> bool:
        if key == "token":
            self.option(key, "token", value)
            self.out.notes.append(
                f"{self.where}.token: the token is now stored in the settings database; "
                "consider `env:NAME` or `file:PATH` instead (docs/providers/dropbox.md)"
            )
        elif key == "team_folder_name":
            self.option(key, "team_folder", value)
        elif key == "acting_as_member":
            if isinstance(value, str) and ("@" in value or value.startswith("dbmid:")):
                self.option(key, "member", value)
            else:
                self.out.skip(
                    f"{self.where}.{key}",
                    "OpenPype took a display name; sitesync needs the member's email or dbmid: id (set options.member)",
                )
        else:
            return False
        return True

    def _sftp(self, key: str, value: Any) -> bool:
        names = {"sftp_host": "host", "sftp_user": "user", "sftp_pass": "password", "sftp_key_pass": "key_passphrase"}
        if key in names:
            if value not in (None, ""):
                self.option(key, names[key], value)
        elif key == "sftp_port":
            self.option(key, "port", int(value))
        elif key == "sftp_key":
            paths = _platform_paths(value)
            path, differs = _single_path(paths)
            if path:
                self.option(key, "key_file", path)
            if differs:
                self.out.skip(
                    f"{self.where}.sftp_key",
                    "a key file per platform; sitesync takes one path (the Linux one was kept)",
                )
        else:
            return False
        note = (
            f"site {self.site}: OpenPype did not verify the SFTP server's host key; sitesync does: put the key in "
            "known_hosts (`ssh-keyscan HOST >> ~/.ssh/known_hosts`) or set options.host_key_fingerprint"
        )
        if key == "sftp_host" and note not in self.out.notes:
            self.out.notes.append(note)
        return True

    def _rclone(self, key: str, value: Any) -> bool:  # AYON's rclone provider settings
        if key == "rclone_executable_path":
            paths = _platform_paths(value)
            if paths:
                self.option(key, "rclone", paths)
        elif key == "additional_args":
            self.option(key, "extra_args", [str(v) for v in value or []])
        elif key == "config_type" and isinstance(value, dict):
            for inner, inner_value in value.items():
                self._rclone_config(f"config_type.{inner}", inner, inner_value)
        elif key in ("remote_name", "rclone_config_path", "type", "config_params"):
            self._rclone_config(key, key, value)
        else:
            return False
        return True

    def _rclone_config(self, source: str, key: str, value: Any) -> None:
        from sitesync.providers.rclone.config import SECRET_OPTIONS

        if key == "remote_name" and value:
            self.option(source, "remote", value)
        elif key == "rclone_config_path":
            paths = _platform_paths(value)
            if paths:
                self.option(source, "config_file", paths)
        elif key == "type" and value:
            self.option(source, "type", value)
        elif key == "config_params":
            for item in value or []:
                name, val = str(item.get("key", "")), item.get("value")
                bucket = "secrets" if name in SECRET_OPTIONS else "options"
                self.options.setdefault(bucket, {})[name] = val
                self.out.map(f"{self.where}.{source}.{name}", f"{self.target}.options.{bucket}.{name}", val)
        elif value not in (None, "", [], {}):
            self.out.skip(f"{self.where}.{source}", "no equivalent for the rclone provider")


def _sync_server(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _projects(doc: dict[str, Any], project: str | None) -> dict[str, dict[str, Any]]:
    """Project name (DEFAULT_PROJECT for the default) -> that project's settings document."""
    out: dict[str, dict[str, Any]] = {}
    for name, settings in (doc.get("project_settings") or {}).items():
        out[DEFAULT_PROJECT if name in DEFAULT_KEYS else name] = settings or {}
    if "global" in doc:
        out[project or DEFAULT_PROJECT] = {k: v for k, v in doc.items() if k in ("global", "anatomy")}
    return out


def map_settings(doc: dict[str, Any], *, project: str | None = None) -> SettingsMapping:
    out = SettingsMapping()
    system_doc = doc.get("system_settings") or ({"modules": doc["modules"]} if "modules" in doc else {})
    sync = _sync_server(system_doc, "modules", "sync_server") or _sync_server(system_doc, "sync_server") or {}
    providers: dict[str, str] = {}
    if "enabled" in sync:
        out.system["enabled"] = bool(sync["enabled"])
        out.map("modules.sync_server.enabled", "system.enabled", bool(sync["enabled"]))
    system_sites: dict[str, dict[str, Any]] = {}
    for name, site in (sync.get("sites") or {}).items():
        where = f"modules.sync_server.sites.{name}"
        provider = (site or {}).get("provider")
        if name == LOCAL:
            out.skip(where, "'local' is this machine's own site in sitesync; it needs no definition")
            continue
        if provider not in PROVIDERS:
            out.skip(where, f"unknown provider {provider!r}")
            continue
        providers[name] = provider
        entry: dict[str, Any] = {"provider": provider}
        out.map(f"{where}.provider", f"system.sites.{name}.provider", provider)
        alternatives = [a for a in site.get("alternative_sites") or [] if a]
        if alternatives:
            entry["alternative_sites"] = alternatives
            out.map(f"{where}.alternative_sites", f"system.sites.{name}.alternative_sites", alternatives)
        mapper = _SiteMapper(out, name, provider, where, f"system.sites.{name}")
        mapper.read(site)
        if mapper.options:
            entry["options"] = mapper.options
        if mapper.roots:
            entry["roots"] = mapper.roots
        system_sites[name] = entry
    for key in set(sync) - {"enabled", "sites"}:
        out.skip(f"modules.sync_server.{key}", "no equivalent")

    _outside_site_sync(out, doc, system_doc)
    projects = _projects(doc, project)
    anatomy = doc.get("project_anatomy") or {}
    per_project: dict[str, dict[str, _SiteMapper]] = {}
    ordered = sorted(projects, key=lambda n: (n != DEFAULT_PROJECT, n))
    for name in ordered:
        target = out.default_project if name == DEFAULT_PROJECT else out.projects.setdefault(name, {})
        label = "__default_project__" if name == DEFAULT_PROJECT else name
        settings = projects[name]
        roots = _sync_server(settings, "anatomy", "roots") or _sync_server(anatomy.get(name), "roots")
        if roots and name != DEFAULT_PROJECT:
            target["roots"] = {r: _platform_paths(loc) for r, loc in roots.items() if _platform_paths(loc)}
            out.map(f"project_anatomy.{label}.roots", f"projects.{name}.roots", target["roots"])
        per_project[name] = _map_project(
            out, target, label, _sync_server(settings, "global", "sync_server") or {}, providers
        )
    _place_site_settings(out, system_sites, per_project)
    if system_sites:
        out.system["sites"] = system_sites
    _map_local(out, doc.get("local_settings") or {})
    _move_local_only(out)
    return out


def _move_local_only(out: SettingsMapping) -> None:
    """Options that name files or programs of a machine, or its secrets (key files, the rclone
    executable, ``env:`` references...) are never shared settings in sitesync: they move to the
    local settings of each machine (``settings/scopes.py``), and the report says so."""
    from sitesync.settings.scopes import split_local_options

    sites: dict[str, dict[str, Any]] = {}
    for name, site in (out.system.get("sites") or {}).items():
        shared, mine = split_local_options(site["provider"], site.get("options", {}))
        overrides = [out.default_project, *out.projects.values()]
        for doc in overrides:  # a project's own value of such an option is this machine's too
            options = doc.get("sites", {}).get(name, {}).get("options")
            if options:
                kept, moved = split_local_options(site["provider"], options)
                doc["sites"][name]["options"] = kept
                mine = {**mine, **moved}
        if mine:
            site["options"] = shared
            sites[name] = {"options": mine}
            for entry in out.mapped:
                for key in mine:
                    for prefix in (f"system.sites.{name}.options.", f"sites.{name}.options."):
                        if entry["to"].split(prefix)[-1].split(".")[0] == key and prefix in entry["to"]:
                            entry["to"] = f"local.sites.{name}.options." + entry["to"].split(prefix)[-1]
            out.notes.append(
                f"site {name}: {', '.join(sorted(mine))} name files, programs or secrets of a machine: they go to "
                "each machine's local settings (`sitesync settings set --local sites."
                f"{name}.options.KEY VALUE`), never to the shared ones"
            )
    if sites:
        out.local["sites"] = sites


def _outside_site_sync(out: SettingsMapping, doc: dict[str, Any], system_doc: dict[str, Any]) -> None:
    """Name (once, by section) what the export holds besides Site Sync, so nothing goes unmentioned."""
    reason = "not part of Site Sync"
    for key in set(system_doc) - {"modules"}:
        out.skip(f"system_settings.{key}", reason)
    for key in set(system_doc.get("modules") or {}) - {"sync_server"}:
        out.skip(f"system_settings.modules.{key}", reason)
    for name, settings in (doc.get("project_settings") or {}).items():
        for key in set(settings or {}) - {"global", "anatomy"}:
            out.skip(f"project_settings.{name}.{key}", reason)
        for key in set((settings or {}).get("global") or {}) - {"sync_server"}:
            out.skip(f"project_settings.{name}.global.{key}", reason)
    for key in set(doc) - {
        "system_settings",
        "modules",
        "project_settings",
        "project_anatomy",
        "local_settings",
        "global",
        "anatomy",
    }:
        out.skip(key, reason)


def _map_project(
    out: SettingsMapping, target: dict[str, Any], label: str, sync: dict[str, Any], providers: dict[str, str]
) -> dict[str, _SiteMapper]:
    where = f"project_settings.{label}.global.sync_server"
    scope = "default_project" if label == "__default_project__" else f"projects.{label}"
    if "enabled" in sync:
        target["enabled"] = bool(sync["enabled"])
        out.map(f"{where}.enabled", f"{scope}.enabled", target["enabled"])
    config = sync.get("config") or {}
    for key, value in config.items():
        source = f"{where}.config.{key}"
        if key in ("retry_cnt", "loop_delay"):
            name = "retry_count" if key == "retry_cnt" else "loop_delay"
            try:
                number = int(str(value).strip()) if key == "retry_cnt" else float(str(value).strip())
            except ValueError:
                out.skip(source, f"{value!r} is not a number")
                continue
            target[name] = number
            out.map(source, f"{scope}.{name}", number)
        elif key in ("active_site", "remote_site"):
            if value:
                target[key] = str(value)
                out.map(source, f"{scope}.{key}", str(value))
        elif key == "always_accessible_on":
            sites = [str(v).strip() for v in value or [] if str(v).strip()]
            target[key] = sites
            out.map(source, f"{scope}.{key}", sites)
        else:
            out.skip(source, "no equivalent")
    mappers = {}
    for site, values in (sync.get("sites") or {}).items():
        provider = providers.get(site, "local_drive" if site in BUILTIN_LOCAL_DRIVE else None)
        if provider is None:
            out.skip(f"{where}.sites.{site}", "the site is not defined in the system settings")
            continue
        mapper = _SiteMapper(out, site, provider, f"{where}.sites.{site}", f"{scope}.sites.{site}")
        mapper.read(values or {})
        mappers[site] = mapper
        if mapper.enabled is not None:
            target.setdefault("sites", {}).setdefault(site, {})["enabled"] = mapper.enabled
    for key in set(sync) - {"enabled", "config", "sites"}:
        out.skip(f"{where}.{key}", "no equivalent")
    return mappers


def _place_site_settings(
    out: SettingsMapping, system_sites: dict[str, dict[str, Any]], per_project: dict[str, dict[str, _SiteMapper]]
) -> None:
    """Options and roots every project shares go to the site's own definition (from the default
    project, else the first project that sets them); a project's differences to its overrides."""
    names = sorted({site for mappers in per_project.values() for site in mappers})
    for site in names:
        if site not in system_sites:
            continue  # studio / local: their roots are not mapped, their options are the defaults
        order = sorted(per_project, key=lambda n: (n != DEFAULT_PROJECT, n))
        source = next((n for n in order if site in per_project[n] and per_project[n][site].options), None)
        base_options = per_project[source][site].options if source else {}
        base_roots = next(
            (per_project[n][site].roots for n in order if site in per_project[n] and per_project[n][site].roots), {}
        )
        if source and source != DEFAULT_PROJECT:
            out.notes.append(
                f"site {site}: the options of project {source} became the site's own (every project inherits them)"
            )
        system_sites[site]["options"] = deep_merge(system_sites[site].get("options", {}), base_options)
        if base_roots:
            system_sites[site]["roots"] = {**system_sites[site].get("roots", {}), **base_roots}
        for name, mappers in per_project.items():
            mapper = mappers.get(site)
            if mapper is None:
                continue
            target = out.default_project if name == DEFAULT_PROJECT else out.projects[name]
            own = {k: v for k, v in mapper.options.items() if base_options.get(k) != v}
            roots = {k: v for k, v in mapper.roots.items() if base_roots.get(k) != v}
            if own:
                target.setdefault("sites", {}).setdefault(site, {})["options"] = own
            if roots:
                target.setdefault("sites", {}).setdefault(site, {})["roots"] = roots
            # the report names where each value went: the site's own definition when shared
            shared = {f"options.{k}" for k in set(mapper.options) - set(own)}
            shared |= {f"roots.{k}" for k in set(mapper.roots) - set(roots)}
            prefix = f"{mapper.target}."
            for entry in out.mapped:
                if entry["to"].startswith(prefix) and entry["to"][len(prefix) :] in shared:
                    entry["to"] = f"system.sites.{site}.{entry['to'][len(prefix) :]}"


def _map_local(out: SettingsMapping, local: dict[str, Any]) -> None:
    if local.get("local_root"):
        out.local["local_root"] = str(local["local_root"])
        out.map("local_settings.local_root", "local.local_root", out.local["local_root"])
    for key in ("local_id", "site_id"):
        if local.get(key):
            out.notes.append(
                f"local_settings.{key}: this machine was site {local[key]!r} in OpenPype; set "
                f"SITESYNC_SITE_ID={local[key]} for its worker to keep that name"
            )
    for name, values in (local.get("projects") or {}).items():
        scope = "default" if name in DEFAULT_KEYS else f"projects.{name}"
        section = (
            out.local.setdefault("default", {})
            if scope == "default"
            else out.local.setdefault("projects", {}).setdefault(name, {})
        )
        for key, value in (values or {}).items():
            source = f"local_settings.projects.{name}.{key}"
            if key in ("active_site", "remote_site"):
                if value:
                    section[key] = str(value)
                    out.map(source, f"local.{scope}.{key}", str(value))
            elif isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                roots = {root: path for root, path in value.items() if path.strip()}
                if roots:  # root overrides of one site on this machine (local, studio, another local_drive)
                    section.setdefault("roots", {})[key] = roots
                    out.map(source, f"local.{scope}.roots.{key}", roots)
            else:
                out.skip(source, "no equivalent in sitesync's local settings")
    for key in set(local) - {"projects", "local_root", "local_id", "site_id"}:
        out.skip(f"local_settings.{key}", "not part of Site Sync")


__all__ = ["SettingsMapping", "map_settings"]
