"""Client: publishing, status, and where representations and files are."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sitesync.errors import (
    InvalidInputError,
    NotFoundError,
    SitesyncError,
    StorageError,
)
from sitesync.facade.common import (
    _check_priority,
    _location,
    _rep_dict,
    _summary_dict,
    check_count,
)
from sitesync.facade.records import (
    Copy,
    FilesWhereabouts,
    FileWhereabouts,
    RepresentationWhereabouts,
    SiteWhereabouts,
    Whereabouts,
)
from sitesync.facade.setup import SetupFacade
from sitesync.facade.workflows import WorkflowsFacade
from sitesync.hashing import DEFAULT_ALGORITHM
from sitesync.identity.locations import PublishTarget, copy_target, refuse_taken_paths
from sitesync.identity.storage import usable_site
from sitesync.machine_view import ProjectView, SiteSpec
from sitesync.paths import RootedPath, relative_to_base
from sitesync.providers.base import Provider
from sitesync.publishing import PlacedFile, check_key, copy_into_site, hash_in_place, place_files
from sitesync.settings.models import STUDIO
from sitesync.state.records import FileFacts, PublishResult
from sitesync.status_rollup import summarize_site_state


class CatalogFacade(WorkflowsFacade, SetupFacade):
    def publish(
        self,
        project: str,
        *,
        folder: str,
        product: str,
        version: str | int,
        name: str,
        files: Sequence[str],
        site: str | None = None,
        priority: int | None = None,
        links: Sequence[int] | None = None,
    ) -> PublishResult:
        """Register a representation. ``links``: the representations it references (a workfile's
        caches, textures...); given, they replace the stored links, omitted, they are kept."""
        prow = self.store.project(project)
        machine = self.view()
        view = machine.project(project)
        key = check_key(folder, product, version, name)
        if priority is not None:
            _check_priority(priority)
        link_ids = self._check_links(prow.id, key, links)
        site_name = view.active_site if site is None else machine.normalize_site(site)
        spec = view.site(site_name)
        if not spec.reachable:
            raise InvalidInputError(f"site {site_name!r} is not reachable from this machine; publish where it is")
        placed = place_files(files, project, key, spec, view.settings.publish_template)
        provider = self._pool.get(spec)
        try:  # reachable, and proven to be the site's own storage (its marker; first use marks it)
            usable_site(self.store, spec, provider, self.actor, prow.id)
        except StorageError as exc:
            raise InvalidInputError(f"cannot publish to site {site_name!r}: {exc}; nothing was published") from None
        # one physical location, one catalog file (identity/locations.py)
        targets = [PublishTarget(p.template, p.real if p.in_place else None) for p in placed]
        refuse_taken_paths(self.store, machine, prow.id, key, site_name, targets)
        facts = self._hash_in_place(placed, spec, provider)
        to_copy = [p for p in placed if not p.in_place]
        if to_copy:
            for p in to_copy:
                try:
                    found = copy_target(
                        self.store, prow.id, key, spec, provider, p.template, p.source, DEFAULT_ALGORITHM
                    )
                    facts[p.template] = found if found is not None else copy_into_site(p, spec, provider)
                except StorageError as exc:
                    raise InvalidInputError(f"could not copy {p.source} into site {site_name!r}: {exc}") from None
            try:
                provider.flush()
            except StorageError as exc:
                raise InvalidInputError(f"could not store the copies on site {site_name!r}: {exc}") from None
        ordered = [facts[p.template] for p in placed]
        from sitesync.engine.planner import publish_targets

        result = self.store.publish(
            prow.id,
            key,
            ordered,
            site_name,
            publish_targets(view, site_name),
            self.actor,
            priority,
            also_present=spec.alternatives,
        )
        if link_ids is not None:
            self.store.set_links(result.representation_id, link_ids, self.actor)
        if result.queued_sites or result.requeued_sites:
            self.wake()
        return result

    @staticmethod
    def _hash_in_place(placed: Sequence[PlacedFile], spec: SiteSpec, provider: Provider) -> dict[str, FileFacts]:
        """Hash the files registered in place, with the storage's fingerprint of each (taken after
        hashing and compared with the size and time seen before: a file that changed meanwhile is
        refused, its hash would not be its content)."""
        facts = hash_in_place(placed)
        in_place = [p for p in placed if p.in_place]
        entries = provider.stat_many([spec.resolve(p.template) for p in in_place])
        for p, now in zip(in_place, entries, strict=True):
            if now is None or (now.size, now.mtime) != (p.size, p.mtime) or now.size != facts[p.template].size:
                raise InvalidInputError(f"{p.source} changed while it was being published; publish it again")
            facts[p.template] = dataclasses.replace(facts[p.template], mtime=now.mtime, ref=now.ref)
        return facts

    def status(
        self,
        project: str | None = None,
        *,
        representation: int | None = None,
        site: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> dict[str, Any]:
        if representation is not None:
            return self.representation_detail(representation)
        check_count(limit, "--limit")
        check_count(offset, "--offset")
        if project is None:
            return {"projects": self.projects()}
        prow = self.store.project(project)
        view = self.project_view(project)
        if site is not None:
            site = self.view().normalize_site(site)
            view.site(site)
        shown = [site] if site else list(dict.fromkeys([view.active_site, view.remote_site]))
        total, reps = self.store.representation_page(prow.id, limit=limit, offset=offset)
        summaries = self.store.summarize(reps, shown)
        return {
            "project": project,
            "active_site": view.active_site,
            "remote_site": view.remote_site,
            "sites_shown": shown,
            "sites": [asdict(x) for x in self.store.project_site_summaries(prow.id)],
            "total": total,
            "representations": [_summary_dict(x, shown) for x in summaries],
        }

    def representation_detail(self, rep_id: int) -> dict[str, Any]:
        rep = self.representation(rep_id)
        detail = self.store.representation_detail(rep.id)
        rep_sites = self.store.representation_sites(rep.id)
        return {
            "representation": _rep_dict(rep),
            **self.links(rep.id),
            "sites": {
                site: {
                    "priority": v["priority"],
                    "paused": bool(v["paused"]),
                    "requested_by": v["requested_by"],
                }
                for site, v in rep_sites.items()
            },
            "files": [
                {
                    "id": f.id,
                    "path": f.path,
                    "size": f.size,
                    "hash": f"{f.hash_algo}:{f.hash}",
                    "replicas": [
                        {
                            "site": r.site,
                            "status": r.status,
                            "progress": 1.0 if r.status == "present" else (r.bytes_done / f.size if f.size else 0.0),
                            "attempts": r.attempts,
                            "last_error": r.last_error,
                            "paused": r.paused,
                            "priority": r.priority,
                            "updated_at": r.updated_at,
                            "source_site": r.source_site,
                            "next_attempt_at": r.next_attempt_at if r.status == "queued" and r.attempts else None,
                        }
                        for r in replicas
                    ],
                }
                for f, replicas in detail
            ],
        }

    def resolve_path(self, template: str, project: str, site: str | None = None) -> str:
        """Where a catalog path lives on a site (default: this machine's active site)."""
        view = self.project_view(project)
        site_name = view.active_site if site is None else self.view().normalize_site(site)
        return view.site(site_name).resolve(template)

    def dirmap(self, project: str, source: str = STUDIO, target: str | None = None) -> dict[str, str]:
        """Root locations of ``source`` (default: studio) -> the same roots on ``target`` (default:
        this machine's active site), for roots both define: what a DCC's directory mapping needs to
        open studio paths from the local copies."""
        view = self.project_view(project)
        src = view.site(self.view().normalize_site(source))
        dst = view.site(view.active_site if target is None else self.view().normalize_site(target))
        return {base: dst.roots[root] for root, base in sorted(src.roots.items()) if root in dst.roots}

    def whereis(self, target: str) -> Whereabouts:
        """Where a representation (by id) or a file (by catalog path or OS path) has verified copies."""
        text = str(target).strip()
        if text.isdigit():
            return self._whereis_representation(int(text))
        if text.startswith("{root["):
            RootedPath.parse(text)
            files = self.store.files_by_path(text)
        else:
            files = []
            abspath = os.path.abspath(os.path.expanduser(text))
            view = self.view()
            for p in self.store.projects():
                try:
                    project_view = view.project(p.name)
                except SitesyncError:
                    continue
                for spec in project_view.sites.values():
                    if spec.provider != "local_drive":
                        continue
                    for root, base in spec.roots.items():
                        rel = relative_to_base(abspath, base)
                        if rel is not None:
                            files.extend(self.store.files_by_path(f"{{root[{root}]}}/{rel}"))
            files = list({f.id: f for f in files}.values())  # each file once, in the order found
        if not files:
            raise NotFoundError(
                f"no published file matches {text!r}; give a representation id, a catalog path or a path under a site root"
            )
        replicas = self.store.replicas_for_files([f.id for f in files])
        reps = self.store.representations_by_ids(sorted({f.representation_id for f in files}))
        out = []
        view = self.view()
        for f in files:
            rep = reps[f.representation_id]
            pv: ProjectView | None
            try:
                pv = view.project(rep.project)
            except SitesyncError:
                pv = None
            copies = [
                Copy(r.site, r.status, _location(pv, r.site, f.path))
                for r in sorted(replicas.get(f.id, []), key=lambda x: x.site)
            ]
            out.append(FileWhereabouts(f.path, rep.id, rep.project, copies))
        return FilesWhereabouts(out)

    def _whereis_representation(self, rep_id: int) -> RepresentationWhereabouts:
        rep = self.representation(rep_id)
        pv = self.project_view(rep.project)
        summary = self.store.summarize([rep])[0]
        files = self.store.files_of(rep.id)
        first = files[0].path if files else None
        sites = []
        for name, state in sorted(summary.sites.items()):
            location = _location(pv, name, first) if first else None
            if location and len(files) > 1:
                location = os.path.dirname(location) if "/" in location or os.sep in location else location
            status = summarize_site_state(state, rep.file_count)
            sites.append(SiteWhereabouts(name, status, state.counts.get("present", 0), rep.file_count, location))
        return RepresentationWhereabouts(_rep_dict(rep), sites)
