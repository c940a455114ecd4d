"""Typed records the client returns (``Client.info``, ``Client.whereis``): attributes for Python
callers, and ``to_dict()`` for the faces, which print exactly the JSON the client's dicts gave
before (``tests/test_client_records.py`` pins that shape)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ProjectInfo(Record):
    """A project as this machine sees it; ``error`` instead of its sites when its settings do not
    resolve here."""

    name: str
    sync_enabled: bool | None = None
    active_site: str | None = None
    remote_site: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"name": self.name, "error": self.error}
        return {
            "name": self.name,
            "sync_enabled": self.sync_enabled,
            "active_site": self.active_site,
            "remote_site": self.remote_site,
        }


@dataclass(frozen=True)
class MachineInfo(Record):
    """``sitesync info``: this machine's site id, the database, config paths, and the projects."""

    site_id: str
    database: str
    config_dir: str
    local_settings_file: str
    data_dir: str
    local_root: str
    sync_enabled: bool
    providers: list[str]
    projects: list[ProjectInfo]

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["providers"] = list(self.providers)
        out["projects"] = [p.to_dict() for p in self.projects]
        return out


@dataclass(frozen=True)
class Copy(Record):
    """One file's copy on a site, and where it is on this machine (None: not reachable here)."""

    site: str
    status: str
    location: str | None


@dataclass(frozen=True)
class FileWhereabouts(Record):
    path: str  # the catalog path (``{root[work]}/...``)
    representation_id: int
    project: str
    copies: list[Copy]


@dataclass(frozen=True)
class FilesWhereabouts(Record):
    """``whereis`` of a catalog path or a path on disk: every published file it matches."""

    files: list[FileWhereabouts]


@dataclass(frozen=True)
class SiteWhereabouts(Record):
    """A representation on one site: its status, how many of its files are there, and where."""

    site: str
    status: str
    present: int
    files: int
    location: str | None


@dataclass(frozen=True)
class RepresentationWhereabouts(Record):
    """``whereis`` of a representation id."""

    representation: dict[str, Any]  # the representation as ``status`` shows it
    sites: list[SiteWhereabouts]


Whereabouts = RepresentationWhereabouts | FilesWhereabouts

__all__ = [
    "Copy",
    "FileWhereabouts",
    "FilesWhereabouts",
    "MachineInfo",
    "ProjectInfo",
    "Record",
    "RepresentationWhereabouts",
    "SiteWhereabouts",
    "Whereabouts",
]
