"""One workfile sync pass for one project on this machine (``work sync``; the worker loop runs it
for every project with ``workfiles.enabled``):

1. **scan** this machine's work areas (``scan.py``) against the last scan's facts and record what
   changed as versions (``state/workfiles.py``: a compare-and-swap per path; conflicts kept);
2. **keep** every version's content this machine can read in the versions area of the remote site
   (``<project>/.sitesync-versions/<path>/<number>-<hash8><ext>``) before anything replaces it;
3. **propagate** the head of each workfile to every workfile site this machine reaches (uploads to
   the remote site, downloads from it, recorded deletions), each under a lease on (workfile,
   site), through ``placing.place`` (the target must still hold what sitesync last put or saw
   there, checked by hash in the write's commit check); a path in conflict is not propagated, its
   two contents are placed beside the file instead (``<stem>.conflict-<site>-<time><ext>``);
4. **prune** kept versions replaced more than ``keep_versions_days`` ago.

Failures are judged by ``errors.decide`` with the project's retry policy and recorded on the
(workfile, site) row; nothing here raises for one file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from sitesync.engine.worker import new_worker_id
from sitesync.errors import RetryPolicy, SitesyncError, TargetOccupiedError, decide
from sitesync.identity.storage import usable_site
from sitesync.machine_view import ProjectView, ProviderPool
from sitesync.providers.base import CAP_LOCAL_PATH, Provider
from sitesync.state.store import StateStore
from sitesync.state.workfiles import Change, VersionRow, WorkfileRow
from sitesync.state.workfiles_ops import ConflictRow
from sitesync.workfiles.placing import ChangedUnderUs, place, remove_checked
from sitesync.workfiles.records import WorkSyncResult
from sitesync.workfiles.scan import FileFacts, ScanResult, WorkAreaSelector, scan_paths, scan_work_area
from sitesync.workfiles.versions import in_versions_area, is_conflict_copy, kept_name

log = logging.getLogger("sitesync.workfiles")
LEASE_SECONDS = 600.0


@dataclass
class _Loc:
    """A readable location of some content: a site's provider and the provider path."""

    site: str
    provider: Provider
    path: str


class WorkfileStep:
    def __init__(
        self,
        store: StateStore,
        view: ProjectView,
        project_id: int,
        pool: ProviderPool,
        site_id: str,
        actor: str,
        user: str,
        machine: str,
        *,
        settle_seconds: float = 2.0,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.view = view
        self.project_id = project_id
        self.pool = pool
        self.site_id = site_id
        self.actor = actor
        self.user = user
        self.machine = machine
        self.settle_seconds = settle_seconds
        self.owner = owner or new_worker_id(site_id)
        self.settings = view.workfiles
        self.policy = RetryPolicy(view.settings.retry_count, view.settings.retry_backoff)
        self.providers: dict[str, Provider] = {}
        self.unusable: dict[str, str] = {}  # site -> why it is left alone this pass
        self.unsettled: dict[tuple[str, str], list[str]] = {}  # (site, root) -> paths still being written
        for name in self.settings.sites:
            spec = view.sites.get(name)
            if spec is None or not spec.reachable or not spec.enabled:
                continue
            try:
                provider = pool.get(spec)
                usable_site(store, spec, provider, self.owner, project_id)  # reachable, its own storage
            except SitesyncError as exc:
                self.unusable[name] = str(exc)
                log.warning("workfile site %s not usable from here: %s", name, exc)
            else:
                self.providers[name] = provider

    # ------------------------------------------------------------------ paths

    def template(self, root: str, rel: str) -> str:
        return f"{{root[{root}]}}/{self.view.name}/{rel}"

    def where(self, site: str, template: str) -> str:
        return self.view.sites[site].resolve(template)

    def project_folder(self, site: str, root: str) -> str | None:
        spec = self.view.sites[site]
        if root not in spec.roots:
            return None
        return spec.resolve(self.template(root, "x"))[:-2]

    # ------------------------------------------------------------------ the pass

    def run(self, hints: Mapping[tuple[str, str], Collection[str]] | None = None) -> WorkSyncResult:
        """One pass. ``hints`` (the worker's watchers): scan only these relative paths of each
        (site, root), nothing elsewhere (``{}``: no scan at all, propagation only); None: full scans.
        Paths still being written are in ``result.unstable`` and, by (site, root), in ``unsettled``."""
        result = WorkSyncResult(project=self.view.name)
        result.errors += [f"site {site} left alone: {why}" for site, why in self.unusable.items()]
        for site in self.scan_sites():
            try:
                self.scan_site(site, result, hints)
            except SitesyncError as exc:
                result.errors.append(f"scan of {site}: {exc}")
        self.propagate(result)
        try:
            self.prune(result)
        except SitesyncError as exc:
            result.errors.append(f"pruning: {exc}")
        return result

    def scan_sites(self) -> list[str]:
        """This machine's own site when it carries work areas; otherwise (a studio or cloud worker)
        the disk sites among the workfile sites it reaches (where artists may edit in place)."""
        if self.site_id in self.providers:
            return [self.site_id]
        return [n for n, p in self.providers.items() if CAP_LOCAL_PATH in p.capabilities]

    def scan_site(
        self, site: str, result: WorkSyncResult, hints: Mapping[tuple[str, str], Collection[str]] | None = None
    ) -> None:
        provider = self.providers[site]
        selector = WorkAreaSelector(self.settings.paths, self.settings.ignore)
        for root in self.settings.roots:
            base = self.project_folder(site, root)
            if base is None:
                continue
            paths = None if hints is None else hints.get((site, root))
            if hints is not None and not paths:
                continue  # a hinted pass: nothing heard here
            previous = self.store.load_scan_facts(site, self.project_id, root)
            if paths is None:
                scan = scan_work_area(provider, base, selector, previous, settle_seconds=self.settle_seconds)
            else:
                scan = scan_paths(provider, base, selector, previous, paths, settle_seconds=self.settle_seconds)
            result.unstable += scan.unstable
            if scan.unstable:
                self.unsettled.setdefault((site, root), []).extend(scan.unstable)
            changes = list(self._changes(root, scan))
            recorded = self.store.record_workfile_changes(
                self.project_id, site, changes, user=self.user, machine=self.machine, actor=self.actor
            )
            self.store.save_scan_facts(site, self.project_id, root, previous, scan.facts)
            result.scanned[site] = result.scanned.get(site, 0) + len(scan.facts)
            result.new += len(scan.new)
            result.modified += len(scan.modified)
            result.deleted += len(scan.deleted)
            result.renamed += len(scan.renamed)
            result.versions += sum(1 for r in recorded if r.version is not None)
            result.conflicts += sum(1 for r in recorded if r.conflict_id is not None)

    @staticmethod
    def _changes(root: str, scan: ScanResult) -> Iterator[Change]:
        def tracked(path: str) -> bool:
            return not is_conflict_copy(path) and not in_versions_area(path)

        for facts in [*scan.new, *scan.modified, *(new for _old, new in scan.renamed)]:
            if tracked(facts.path) and facts.hash is not None:
                yield Change(root, facts.path, facts.hash, facts.size, facts.mtime_ns / 1e9)
        for facts in [*scan.deleted, *(old for old, _new in scan.renamed)]:
            if tracked(facts.path):
                yield Change(root, facts.path, None)

    # ------------------------------------------------------------------ propagation

    def propagate(self, result: WorkSyncResult) -> None:
        rows = self.store.workfiles_needing_work(self.project_id, list(self.providers))
        ids = [w.id for w in rows]
        versions = self.store.workfile_versions(ids)
        copies = self.store.workfile_copies(ids)
        conflicts: dict[int, list[ConflictRow]] = {}
        for c, _root, _path in self.store.workfile_conflicts(self.project_id):
            if c.conflict_path is not None:
                conflicts.setdefault(c.workfile_id, []).append(c)
        placed = self.store.workfile_conflict_copies([c.id for cs in conflicts.values() for c in cs])
        for w in rows:
            by_id = {v.id: v for v in versions[w.id]}
            held = {site: by_id.get(copy["version_id"]) for site, copy in copies[w.id].items()}
            try:
                self._keep(w, by_id, held, result)
                if w.in_conflict:
                    for c in conflicts.get(w.id, []):
                        self._conflict_copies(w, c, by_id, held, placed.get(c.id, {}), result)
                elif w.head_version_id is not None:
                    self._bring_head(w, by_id[w.head_version_id], by_id, held, result)
            except SitesyncError as exc:  # a catalog problem for this file: the next pass retries
                result.errors.append(f"{w.path}: {exc}")

    def _sources(
        self,
        w: WorkfileRow,
        content_hash: str,
        by_id: dict[int, VersionRow],
        held: dict[str, VersionRow | None],
        not_site: str | None = None,
    ) -> list[_Loc]:
        """Where this machine can read ``content_hash`` of ``w``: sites holding it at the path,
        then kept copies in the versions area."""
        out = []
        for site, v in held.items():
            if v is not None and v.hash == content_hash and site in self.providers and site != not_site:
                out.append(_Loc(site, self.providers[site], self.where(site, self.template(w.root, w.path))))
        for v in by_id.values():
            if v.hash == content_hash and v.kept_at and v.kept_site in self.providers:
                out.append(_Loc(v.kept_site, self.providers[v.kept_site], self.where(v.kept_site, v.kept_at)))
        return out

    def _kept(self, content_hash: str | None, by_id: dict[int, VersionRow]) -> bool:
        return content_hash is None or any(v.hash == content_hash and v.kept_at for v in by_id.values())

    def _keep(
        self, w: WorkfileRow, by_id: dict[int, VersionRow], held: dict[str, VersionRow | None], result: WorkSyncResult
    ) -> None:
        """Every content version that a reachable site holds goes to the versions area on the
        remote site first: nothing is replaced before its content is kept there."""
        remote = self.view.remote_site
        if remote not in self.providers:
            return
        for v in by_id.values():
            if v.hash is None or v.kept_at or self._kept(v.hash, by_id):
                continue
            sources = self._sources(w, v.hash, by_id, held)
            if not sources:
                continue
            kept = self.template(w.root, kept_name(w.path, v.number, v.hash))
            done = self._transfer(w, remote, sources[0], kept, v, None, result)
            if done:
                self.store.set_version_kept(v.id, remote, kept)
                by_id[v.id] = VersionRow(
                    **{**{k: getattr(v, k) for k in VersionRow.__slots__}, "kept_at": kept, "kept_site": remote}
                )

    def _bring_head(
        self,
        w: WorkfileRow,
        head: VersionRow,
        by_id: dict[int, VersionRow],
        held: dict[str, VersionRow | None],
        result: WorkSyncResult,
    ) -> None:
        for site in self.providers:
            cur = held.get(site)
            if cur is not None and cur.id == head.id:
                continue
            cur_hash = cur.hash if cur is not None else None
            if cur_hash == head.hash:  # same content (or both nothing): bookkeeping only
                if self.store.claim_workfile_site(w.id, site, self.owner, LEASE_SECONDS):
                    self.store.release_workfile_site(w.id, site, self.owner, version_id=head.id, set_version=True)
                continue
            if cur_hash is not None and not self._kept(cur_hash, by_id):
                continue  # its content is not kept yet: never replace the only copy
            path = self.where(site, self.template(w.root, w.path))
            if head.hash is None:
                self._delete(w, site, path, head, cur_hash, result)
                continue
            sources = self._sources(w, head.hash, by_id, held, not_site=site)
            if sources:
                self._transfer(w, site, sources[0], self.template(w.root, w.path), head, cur_hash, result, record=True)

    def _claim(self, w: WorkfileRow, site: str) -> bool:
        return self.store.claim_workfile_site(w.id, site, self.owner, LEASE_SECONDS)

    def _transfer(
        self,
        w: WorkfileRow,
        site: str,
        source: _Loc,
        template: str,
        version: VersionRow,
        expect: str | None,
        result: WorkSyncResult,
        *,
        record: bool = False,
    ) -> bool:
        """Put ``version``'s content at ``template`` on ``site`` under a lease; ``record``: the site
        then holds ``version`` at the workfile's path."""
        assert version.hash is not None and version.size is not None
        if not self._claim(w, site):
            return False
        target = self.providers[site]
        try:
            moved = place(
                source.provider, source.path, target, self.where(site, template), version.size, version.hash, expect
            )
        except ChangedUnderUs as exc:
            if record:  # the workfile itself changed there: that site's edit, recorded (kept)
                self.store.release_workfile_site(w.id, site, self.owner)
                self._changed(w, site, exc, result)
            else:  # a file sitesync did not write is at a conflict copy's or a kept version's name
                occupied = TargetOccupiedError(
                    f"a different file is already at {exc.path} on site {site}; sitesync will not replace it: "
                    "move it away",
                    site=site,
                )
                self._failed(w, site, occupied, result)
            return False
        except SitesyncError as exc:
            self._failed(w, site, exc, result)
            return False
        self.store.release_workfile_site(w.id, site, self.owner, version_id=version.id, set_version=record)
        if record:
            self._remember(w, site, version.hash)
        result.transfers += 1 if moved else 0
        result.bytes += moved
        if moved:
            self.store.add_event(
                "workfile_transfer",
                self.actor,
                project_id=self.project_id,
                site=site,
                source_site=source.site,
                nbytes=moved,
                message=f"{w.root}:{template.split('/', 2)[-1]} version {version.number} to {site}",
            )
        return True

    def _delete(
        self, w: WorkfileRow, site: str, path: str, head: VersionRow, cur_hash: str | None, result: WorkSyncResult
    ) -> None:
        if not self._claim(w, site):
            return
        try:
            gone = cur_hash is None or remove_checked(self.providers[site], path, cur_hash)
        except ChangedUnderUs as exc:
            self.store.release_workfile_site(w.id, site, self.owner)
            self._changed(w, site, exc, result)
            return
        except SitesyncError as exc:
            self._failed(w, site, exc, result)
            return
        self.store.release_workfile_site(w.id, site, self.owner, version_id=head.id, set_version=True)
        self._remember(w, site, None)
        result.deletions += 1 if gone else 0

    def _remember(self, w: WorkfileRow, site: str, content_hash: str | None) -> None:
        """What sitesync just put (or deleted) at a path of a site this machine scans goes into the
        scan facts, so the next scan neither re-hashes it nor misses a deletion that follows."""
        if site not in self.scan_sites():
            return
        entry = self.providers[site].stat(self.where(site, self.template(w.root, w.path))) if content_hash else None
        facts = None
        if entry is not None:
            ref = entry.ref or ""
            file_id = int(ref[4:]) if ref.startswith("ino:") and ref[4:].isdigit() else 0
            facts = FileFacts(w.path, entry.size, int((entry.mtime or 0.0) * 1e9), file_id, content_hash)
        self.store.put_scan_fact(site, self.project_id, w.root, w.path, facts)

    def _changed(self, w: WorkfileRow, site: str, exc: ChangedUnderUs, result: WorkSyncResult) -> None:
        """The target held content sitesync did not record: record it as that site's change (a
        conflict when the head moved on); nothing was replaced."""
        recorded = self.store.record_workfile_changes(
            self.project_id,
            site,
            [Change(w.root, w.path, exc.found_hash, exc.found_size, time.time())],
            user=self.user,
            machine=self.machine,
            actor=self.actor,
        )
        result.versions += sum(1 for r in recorded if r.version is not None)
        result.conflicts += sum(1 for r in recorded if r.conflict_id is not None)

    def _failed(self, w: WorkfileRow, site: str, exc: SitesyncError, result: WorkSyncResult) -> None:
        copy = self.store.workfile_copies([w.id])[w.id].get(site, {})
        verdict = decide(exc, int(copy.get("attempts") or 0), self.policy, site)
        delay = verdict.delay if verdict.kind == "retry" else self.view.settings.site_retry_backoff
        if verdict.kind == "failed":
            delay = 3600.0
        self.store.release_workfile_site(
            w.id, site, self.owner, error=str(exc), attempts=verdict.attempts, retry_after=delay
        )
        result.errors.append(f"{w.path} on {site}: {exc}")

    def _conflict_copies(
        self,
        w: WorkfileRow,
        c: ConflictRow,
        by_id: dict[int, VersionRow],
        held: dict[str, VersionRow | None],
        placed: dict[str, str],
        result: WorkSyncResult,
    ) -> None:
        """Both contents kept: the conflicting site's beside the file on every other site, the
        other content beside the file on the conflicting site."""
        local = by_id.get(c.local_version_id) if c.local_version_id else None
        incoming = by_id.get(c.incoming_version_id) if c.incoming_version_id else None
        for site in self.providers:
            if site in placed:
                continue
            if site == c.site:
                version, name = incoming, c.incoming_path
            else:
                version, name = local, c.conflict_path
            if version is None or version.hash is None or name is None:
                continue
            sources = self._sources(w, version.hash, by_id, held)
            if not sources:
                continue
            if self._transfer(w, site, sources[0], self.template(w.root, name), version, None, result):
                self.store.conflict_copy_placed(c.id, site, name, version.id)

    # ------------------------------------------------------------------ pruning

    def prune(self, result: WorkSyncResult) -> None:
        remote = self.view.remote_site
        if remote not in self.providers:
            return
        older = time.time() - self.settings.keep_versions_days * 86400
        for v in self.store.prunable_workfile_versions(self.project_id, older):
            if v.kept_site != remote or not v.kept_at or v.hash is None:
                continue
            try:  # only the content kept there, checked now (DESIGN §7a)
                remove_checked(self.providers[remote], self.where(remote, v.kept_at), v.hash)
            except ChangedUnderUs:
                result.errors.append(f"{v.kept_at} on {remote} is not the kept version any more; left alone")
                continue
            self.store.version_pruned(v.id)
            result.pruned += 1


__all__ = ["WorkfileStep"]
