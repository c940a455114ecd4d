"""Site markers: a small file (``.sitesync_site``) at each root of a site's storage naming the
site and carrying an id generated when it was written. Like git-annex's repository UUID it lets
sitesync recognise storage by what it *is*, not by the path configured for it: an unmounted share
(no marker), another site's storage under a second name (that site's marker), or a root inside
another site's storage (a marker above it).

Markers are read and written through the provider (``Provider.read_small`` / ``write_small``), so
they work on every kind of storage; listings of a root skip them (``is_marker_name``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass

from sitesync.errors import StorageIdentityError
from sitesync.paths import join_root
from sitesync.providers.base import Provider

MARKER_NAME = ".sitesync_site"
MAX_MARKER_BYTES = 4096
FORMAT = 1


@dataclass(frozen=True)
class Marker:
    site: str
    id: str
    created_at: float
    created_by: str
    format: int = FORMAT

    @classmethod
    def new(cls, site: str, actor: str) -> Marker:
        return cls(site=site, id=str(uuid.uuid4()), created_at=time.time(), created_by=actor)

    def to_bytes(self) -> bytes:
        doc = {"sitesync_site_marker": FORMAT, **asdict(self)}
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Marker:
        try:
            doc = json.loads(data.decode("utf-8"))
            if not isinstance(doc, dict) or "sitesync_site_marker" not in doc:
                raise ValueError("not a sitesync site marker")
            return cls(
                site=str(doc["site"]),
                id=str(doc["id"]),
                created_at=float(doc.get("created_at") or 0.0),
                created_by=str(doc.get("created_by") or ""),
                format=int(doc.get("format") or FORMAT),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise StorageIdentityError(
                f"{where} is not a readable sitesync site marker ({exc}); move it away and run "
                "`sitesync site mark SITE --force` if this storage belongs to SITE"
            ) from None


def is_marker_name(name: str) -> bool:
    return name == MARKER_NAME


def marker_location(base: str) -> str:
    return join_root(base, MARKER_NAME)


def read_marker(provider: Provider, base: str) -> Marker | None:
    """The marker at the root ``base`` (None if there is none). Storage errors propagate."""
    where = marker_location(base)
    data = provider.read_small(where, MAX_MARKER_BYTES)
    return None if data is None else Marker.from_bytes(data, where)


def write_marker(provider: Provider, base: str, marker: Marker) -> None:
    provider.write_small(marker_location(base), marker.to_bytes())


def markers_above(provider: Provider, base: str) -> list[tuple[str, Marker]]:
    """Markers in the folders enclosing the root ``base``, nearest first: (folder, marker)."""
    out = []
    for folder in provider.folders_above(base):
        where = marker_location(folder)
        data = provider.read_small_above(where, MAX_MARKER_BYTES)
        if data is not None:
            out.append((folder, Marker.from_bytes(data, where)))
    return out


__all__ = ["MARKER_NAME", "Marker", "is_marker_name", "marker_location", "markers_above", "read_marker", "write_marker"]
