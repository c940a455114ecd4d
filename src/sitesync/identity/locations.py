"""One physical location, one catalog file: what a publish checks before it registers files or
copies them into a site.

The ``min_copies`` guard counts copies per catalog file. Two catalog files that are one physical
file would be counted twice, and removing one would delete the other's only copy. So sitesync
decides (DESIGN §7a) that a location belongs to **one** catalog file, never shared:

* a catalog path (``{root[work]}/...``) belongs to one representation across the whole catalog
  (a root name maps to the same folder on every machine's own site, whatever the project); a
  publish that would give a second representation a path another one has is refused, naming the
  owner (a hero version reusing v001's files in place, a mistaken second publish);
* a file published in place is also looked up under every other project's and root's mapping of
  the publishing site: one file reachable under two catalog paths is refused too;
* copying into the publish location never replaces a file sitesync did not put there: the same
  content is adopted, this representation's own earlier copy there, as sitesync last saw it, is
  replaced (a hero re-publish), anything else is refused, naming the path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from sitesync.errors import ConflictError, InvalidInputError, SitesyncError
from sitesync.hashing import hash_file
from sitesync.identity.content import Seen, hash_stored
from sitesync.machine_view import MachineView, SiteSpec
from sitesync.providers.base import Provider
from sitesync.state.physical import TakenPath
from sitesync.state.records import FileFacts, RepresentationKey
from sitesync.state.store import StateStore

ONE_FILE_ONE_REPRESENTATION = (
    "a published file belongs to one representation: publish the new one from copies (files outside the project "
    "roots are copied into its own location), or reference the existing one with --link"
)


@dataclass(frozen=True)
class PublishTarget:
    """A file to publish: its catalog path, and its real OS path when registered in place."""

    template: str
    real_path: str | None


def refuse_taken_paths(
    store: StateStore,
    machine: MachineView,
    project_id: int,
    key: RepresentationKey,
    site: str,
    files: Sequence[PublishTarget],
) -> None:
    """Refuse (``ConflictError``, nothing changed) if any file's location already belongs to
    another representation's file: by catalog path, or (in place) by the same real file under
    another project's or root's mapping of the site."""
    me = store.find_representation(project_id, key)
    mine = me.id if me is not None else None
    taken = [t for t in store.locations_taken([f.template for f in files]) if t.representation_id != mine]
    if taken:
        raise _refusal(store, taken[0], taken[0].path, len(taken))
    aliases: dict[tuple[int, str], str] = {}  # (project id, other template) -> our template
    in_place = [f for f in files if f.real_path is not None]
    mappings = _site_mappings(store, machine, site) if in_place else []
    for f in in_place:
        assert f.real_path is not None
        for pid, root, real_base in mappings:
            if f.real_path.startswith(real_base + os.sep):
                template = f"{{root[{root}]}}/" + f.real_path[len(real_base) + 1 :].replace(os.sep, "/")
                if template != f.template:
                    aliases[(pid, template)] = f.template
    if not aliases:
        return
    for t in store.locations_taken(sorted({tpl for _pid, tpl in aliases})):
        if (t.project_id, t.path) in aliases and t.representation_id != mine:
            raise _refusal(store, t, aliases[(t.project_id, t.path)], 1, alias=True)


def _site_mappings(store: StateStore, machine: MachineView, site: str) -> list[tuple[int, str, str]]:
    """Every (project id, root name, real base folder) mapping of a file-system ``site`` on this
    machine: a real path below a base is that root's catalog path in that project."""
    out: list[tuple[int, str, str]] = []
    for project in store.projects():
        try:
            spec = machine.project(project.name).sites.get(site)
        except SitesyncError:
            continue
        if spec is None or spec.provider != "local_drive":
            continue
        out.extend((project.id, root, os.path.realpath(base).rstrip(os.sep)) for root, base in spec.roots.items())
    return out


def _refusal(store: StateStore, owner: TakenPath, path: str, count: int, *, alias: bool = False) -> ConflictError:
    project = store.project_by_id(owner.project_id).name
    more = f" (and {count - 1} more files)" if count > 1 else ""
    how = f" (the same file as {owner.path})" if alias else ""
    return ConflictError(
        f"refused: {path}{how} already belongs to representation {owner.representation_id} "
        f"({project} {owner.label}){more}; {ONE_FILE_ONE_REPRESENTATION}; nothing was published"
    )


def copy_target(
    store: StateStore,
    project_id: int,
    key: RepresentationKey,
    site: SiteSpec,
    provider: Provider,
    template: str,
    source: str,
    algorithm: str,
) -> FileFacts | None:
    """Before a file published from outside the roots is copied to ``template`` on the site: None
    (nothing there, or this representation's own earlier copy: copy over it), the facts of the
    file already there when it is the same content (adopted, nothing copied), or a refusal
    (``InvalidInputError``) when someone else's file is in the way."""
    location = site.resolve(template)
    existing = provider.stat(location)
    if existing is None:
        return None
    seen: Seen | None = None
    me = store.find_representation(project_id, key)
    if me is not None:
        mine = next((f for f in store.files_of(me.id) if f.path == template), None)
        holder = store.replica_seen(mine.id, site.name) if mine is not None else None
        if holder is not None:
            seen = Seen(holder.seen_size, holder.seen_hash, holder.seen_mtime, holder.provider_ref)
            if seen.same_copy(existing):
                return None  # this representation's copy there, as sitesync last saw it: a re-publish replaces it
    size = os.path.getsize(source)
    if existing.size in (size, seen.size if seen else None):
        source_size, source_digest = hash_file(source, algorithm)
        stored_size, stored_digest = hash_stored(provider, location, algorithm)
        if (stored_size, stored_digest) == (source_size, source_digest):
            return FileFacts(template, source_size, algorithm, source_digest, existing.mtime, existing.ref)
        if seen is not None and seen.hash == f"{algorithm}:{stored_digest}" and seen.size == stored_size:
            return None  # the content this representation verified there: a re-publish replaces it
    raise InvalidInputError(
        f"refused: a different file is already at {location} on site {site.name} (sitesync did not publish it "
        f"there); move it away, or publish {os.path.basename(source)} under another name; nothing was published"
    )


__all__ = ["PublishTarget", "copy_target", "refuse_taken_paths"]
