"""Which site options the shared settings may hold, and which only this machine's local settings.

The shared settings (the database documents, which anyone with database access or the API token can
write) must never make a service run a program, read a file of its machine, or hand that machine's
credentials to a place of the writer's choice. Providers declare the options concerned on their
options models (``LocalOnly``, ``Destination``, ``OptionsOf`` in ``providers/base.py``); every secret
given as a reference (``env:``, ``file:``, ``keyring:``) is local-only as well. This module reads
those declarations and answers two questions:

* ``local_only_options``: which options of a shared document are local-only (refused when written,
  and making the site unusable when found there anyway);
* ``destination_problems``: which destinations come from the shared settings while a credential
  they receive comes from this machine's local settings.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from sitesync.errors import SitesyncError
from sitesync.providers.base import Destination, LocalOnly, OptionsOf, ProviderConfig
from sitesync.providers.registry import provider_class

REFERENCE_PREFIXES = ("env:", "file:", "keyring:")
REFERENCE_WHY = "is a reference to a secret of this machine (env:, file: or keyring:)"


@dataclass(frozen=True)
class LocalOption:
    """One option found where only local settings may give it."""

    option: str  # dotted path inside the site's options, e.g. ``rclone`` or ``options.ssh``
    why: str
    value: Any


def is_reference(value: Any) -> bool:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return isinstance(raw, str) and raw.startswith(REFERENCE_PREFIXES)


def _is_secret(info: FieldInfo) -> bool:
    return "SecretStr" in str(info.annotation)


def _set(value: Any) -> bool:
    return value not in (None, "", [], {})


def _markers(info: FieldInfo, kind: type) -> list[Any]:
    return [m for m in info.metadata if isinstance(m, kind)]


def _config_of(provider: str) -> type[ProviderConfig] | None:
    try:
        return provider_class(provider).Config
    except SitesyncError:
        return None


def local_only_options(
    provider: str, options: Any, prefix: str = "", context: dict[str, Any] | None = None
) -> list[LocalOption]:
    """Every option in ``options`` (a site's options from the shared settings) that only this
    machine's local settings may give. ``context``: the options ``options`` override (a project's
    overrides of a system site), for the values they do not repeat. A provider that is not
    installed here is checked for secret references only (its declarations cannot be read)."""
    if not isinstance(options, dict):
        return []
    model = _config_of(provider)
    found: list[LocalOption] = []
    for name, value in options.items():
        info = model.model_fields.get(name) if model is not None else None
        if info is None or not _set(value):
            found += _references(f"{prefix}{name}", value)
            continue
        for marker in _markers(info, LocalOnly):
            if marker.keys is None:
                found.append(LocalOption(f"{prefix}{name}", marker.why, value))
            elif isinstance(value, dict):
                found += [
                    LocalOption(f"{prefix}{name}.{key}", marker.why, item)
                    for key, item in value.items()
                    if marker.local_only_key(str(key))
                ]
        for marker in _markers(info, OptionsOf):
            assert model is not None  # info came from its fields
            around = context if isinstance(context, dict) else {}
            inner = options.get(
                marker.provider_field,
                around.get(marker.provider_field, model.model_fields[marker.provider_field].default),
            )
            inner_context = around.get(name)
            found += local_only_options(
                str(inner), value, f"{prefix}{name}.", inner_context if isinstance(inner_context, dict) else None
            )
        if _is_secret(info):
            found += _references(f"{prefix}{name}", value)
    return list({(f.option, f.why): f for f in found}.values())


def _references(option: str, value: Any) -> list[LocalOption]:
    if is_reference(value):
        return [LocalOption(option, REFERENCE_WHY, value)]
    if isinstance(value, dict):
        return [f for key, item in value.items() for f in _references(f"{option}.{key}", item)]
    if isinstance(value, list):
        return [f for item in value for f in _references(option, item)]
    return []


def destination_problems(provider: str, shared: dict[str, Any], local: dict[str, Any]) -> list[str]:
    """For a site whose options come from ``shared`` and this machine's ``local`` overlay: each
    destination set in the shared settings while a credential it receives is set locally, as
    "DESTINATION (CREDENTIAL)"."""
    model = _config_of(provider)
    if model is None or not local:
        return []
    problems = []
    for name, info in model.model_fields.items():
        for marker in _markers(info, Destination):
            mine = [c for c in marker.credentials if _set(local.get(c))]
            if not mine:
                continue
            value = shared.get(name)
            if marker.keys is None:
                where = [name] if _set(value) and name not in local else []
            else:
                where = [
                    f"{name}.{key}"
                    for key in (value if isinstance(value, dict) else {})
                    if re.search(marker.keys, str(key)) and key not in (local.get(name) or {})
                ]
            problems += [f"{w} (receives {', '.join(mine)})" for w in where]
    return problems


def split_local_options(provider: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` of one site split into (shared, this machine's local): the local-only ones, and
    the destinations of credentials that end up local, go to the second (for scripts that define a
    site and its machine's part at once: ``client.add_site(..., shared, local_options=local)``)."""
    shared = copy.deepcopy(options)
    local_keys = {found.option.split(".")[0] for found in local_only_options(provider, shared)}
    local = {key: shared.pop(key) for key in list(shared) if key in local_keys}
    for problem in destination_problems(provider, shared, local):
        key, _, sub = problem.split(" ", 1)[0].partition(".")
        if sub:
            local.setdefault(key, {})[sub] = shared[key].pop(sub)
        else:
            local[key] = shared.pop(key)
    return shared, local


@dataclass(frozen=True)
class Found:
    """A local-only option in a settings document: where (``key_prefix`` + option) and which site."""

    key_prefix: str
    site: str
    option: LocalOption

    def identity(self) -> tuple[str, str, str]:
        return (self.key_prefix, self.option.option, repr(self.option.value))

    def message(self) -> str:
        return local_only_message(self.key_prefix, self.site, self.option)


def _provider_of(system_doc: Any, site: str) -> str:
    sites = system_doc.get("sites") if isinstance(system_doc, dict) else None
    entry = sites.get(site) if isinstance(sites, dict) else None
    provider = entry.get("provider") if isinstance(entry, dict) else None
    return provider if isinstance(provider, str) else "local_drive"


def system_local_only(system_doc: Any) -> list[Found]:
    """The local-only options in a system settings document (its site definitions)."""
    return _in_sites(system_doc, system_doc, "system.sites.")


def project_local_only(project_doc: Any, system_doc: Any, key_prefix: str = "sites.") -> list[Found]:
    """The local-only options in a project's (or the default project's) site overrides."""
    return _in_sites(project_doc, system_doc, key_prefix)


def _in_sites(doc: Any, system_doc: Any, key_prefix: str) -> list[Found]:
    sites = doc.get("sites") if isinstance(doc, dict) else None
    if not isinstance(sites, dict):
        return []
    out = []
    for name, site in sites.items():
        if isinstance(site, dict):
            provider = _provider_of(system_doc, str(name))
            context = None if doc is system_doc else _site_options(system_doc, str(name))
            out += [
                Found(f"{key_prefix}{name}.options.", str(name), f)
                for f in local_only_options(provider, site.get("options"), context=context)
            ]
    return out


def _site_options(system_doc: Any, site: str) -> dict[str, Any] | None:
    sites = system_doc.get("sites") if isinstance(system_doc, dict) else None
    entry = sites.get(site) if isinstance(sites, dict) else None
    options = entry.get("options") if isinstance(entry, dict) else None
    return options if isinstance(options, dict) else None


def added(before: list[Found], after: list[Found]) -> list[Found]:
    """The local-only options ``after`` has that ``before`` did not (same place, same value)."""
    known = {f.identity() for f in before}
    return [f for f in after if f.identity() not in known]


def local_only_message(key_prefix: str, site: str, found: LocalOption) -> str:
    """The one line a refused write shows (CLI, REST API, Python)."""
    return (
        f"{key_prefix}{found.option} {found.why}: it is taken only from this machine's local settings, never "
        "from the shared settings or the REST API; set it on each machine that needs it with "
        f"`sitesync settings set --local sites.{site}.options.{found.option} VALUE`"
    )


def destination_message(site: str, problems: list[str]) -> str:
    first = problems[0].split(" ", 1)[0]
    return (
        f"site {site}: {problems[0]} comes from the shared settings while its credentials come from this "
        "machine; where this machine's credentials are sent must be set here too: "
        f"`sitesync settings set --local sites.{site}.options.{first} VALUE`"
    )


__all__ = [
    "REFERENCE_PREFIXES",
    "Found",
    "LocalOption",
    "added",
    "destination_message",
    "destination_problems",
    "is_reference",
    "local_only_message",
    "local_only_options",
    "project_local_only",
    "split_local_options",
    "system_local_only",
]
