"""Registering representations read from OpenPype or AYON in the catalog.

The other systems never recorded what a file's bytes are (OpenPype's ``hash`` is name, mtime and
size), and sitesync verifies every copy against the catalog's content hash. So each new file is
hashed once, read from a site that holds it and that this machine can read: the ``--hash-from``
sites in the order given, else the studio, this machine's own site and other mounted (local_drive)
sites. The other sites recorded as holding it are registered present as recorded; `sitesync
validate SITE` (and `fsck`) then checks them against the catalog. A representation already in the
catalog with the same files is merged without hashing again, so a second run changes nothing.
A representation that cannot be taken over (a bad context, a path outside the roots, no readable
copy) is reported with the reason and left out; the others go on.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sitesync.errors import SitesyncError, UserError
from sitesync.hashing import DEFAULT_ALGORITHM
from sitesync.machine_view import ProjectView, ProviderPool
from sitesync.migration.records import ImportedRepresentation, ImportedSite, Report
from sitesync.paths import RootedPath
from sitesync.providers.base import Provider
from sitesync.publishing import check_key
from sitesync.settings.models import LOCAL, SITE_NAME_RE, STUDIO
from sitesync.state.imports import RepresentationImport, SiteImport
from sitesync.state.records import FileFacts, RepresentationKey
from sitesync.state.schema import DEFAULT_PRIORITY
from sitesync.state.store import StateStore
from sitesync.workflows.checks_common import ByteCounter, ProgressFn, Reporter, describe_error, hash_copy

PRIORITY_MIN, PRIORITY_MAX = 1, 1000
WRITE_BATCH = 100  # representations registered per transaction


@dataclass
class Options:
    dry_run: bool = False
    hash_from: Sequence[str] | None = None
    site_map: Mapping[str, str] | None = None
    jobs: int = 4


class RepresentationImporter:
    def __init__(
        self,
        store: StateStore,
        view: ProjectView,
        project_id: int,
        pool: ProviderPool,
        actor: str,
        source: str,
        options: Options,
        progress: ProgressFn | None = None,
    ) -> None:
        self.store = store
        self.view = view
        self.project_id = project_id
        self.pool = pool
        self.actor = actor
        self.source = source
        self.options = options
        self.report_progress = Reporter(progress)
        self.counter = ByteCounter()
        self.counts: Counter[str] = Counter()
        self.replicas: dict[str, Counter[str]] = {}
        self._usable: dict[str, tuple[Provider | None, str | None]] = {}
        self._foreign: set[str] = set()

    # ------------------------------------------------------------------ sites

    def _readers(self) -> list[str]:
        if self.options.hash_from:
            return list(self.options.hash_from)
        mounted = sorted(n for n, spec in self.view.sites.items() if spec.provider == "local_drive" and n != STUDIO)
        return [STUDIO, *mounted]

    def _reader(self, site: str) -> tuple[Provider | None, str | None]:
        """The provider to read ``site`` with, or why it cannot be read from here (checked once)."""
        if site not in self._usable:
            spec = self.view.sites.get(site)
            if spec is None or not spec.reachable:
                self._usable[site] = (None, f"site {site} is not reachable from this machine")
            else:
                try:
                    provider = self.pool.get(spec)
                    provider.check()
                    self._usable[site] = (provider, None)
                except SitesyncError as exc:
                    self._usable[site] = (None, str(exc))
                except Exception as exc:  # a provider bug: this site is not used, the import goes on
                    self._usable[site] = (None, describe_error(exc))
        return self._usable[site]

    # ------------------------------------------------------------------ one representation

    def _prepare(
        self, rep: ImportedRepresentation, report: Report
    ) -> tuple[RepresentationKey, dict[str, ImportedSite]] | None:
        try:
            key = check_key(rep.folder, rep.product, rep.version, rep.name)
        except UserError as exc:
            report.problem(rep.source_id, f"{rep.label}: {str(exc).replace('--', '')}")
            return None
        for f in rep.files:
            try:
                RootedPath.parse(f.path)
            except UserError as exc:
                report.problem(rep.source_id, f"{rep.label}: {exc}")
                return None
        sites: dict[str, ImportedSite] = {}
        for name, imported in rep.sites.items():
            target = (self.options.site_map or {}).get(name, name)
            if target == LOCAL:
                report.problem(
                    rep.source_id,
                    f"{rep.label}: a record for the placeholder site 'local'; map it with --site-map local=SITE",
                )
                return None
            if not SITE_NAME_RE.match(target):
                report.problem(
                    rep.source_id, f"{rep.label}: site name {target!r} is not valid here; map it with --site-map"
                )
                return None
            if target not in self.view.sites and target not in self._foreign:
                self._foreign.add(target)
            merged = sites.setdefault(target, ImportedSite())
            merged.files.update(imported.files)
            merged.paused = merged.paused or imported.paused
            if imported.priority is not None:
                merged.priority = max(imported.priority, merged.priority or imported.priority)
        return key, sites

    def _hash(
        self, rep: ImportedRepresentation, sites: Mapping[str, ImportedSite], pool: cf.Executor
    ) -> list[FileFacts] | str:
        """Each file's facts, read from the first readable holder; or why that failed."""
        holders_of = {
            f.path: [
                s
                for s in self._readers()
                if sites.get(s) and (r := sites[s].files.get(f.path)) and r.status == "present"
            ]
            for f in rep.files
        }

        def one(f: Any) -> FileFacts | str:
            tried = []
            for site in holders_of[f.path]:
                provider, why = self._reader(site)
                if provider is None:
                    tried.append(why or site)
                    continue
                try:
                    location = self.view.sites[site].resolve(f.path)
                    entry = provider.stat(location)
                    if entry is None:
                        tried.append(f"not on {site} ({location})")
                        continue
                    if self.options.dry_run:
                        return FileFacts(f.path, entry.size, DEFAULT_ALGORITHM, "")
                    result = hash_copy(provider, location, DEFAULT_ALGORITHM, self.counter)
                    return FileFacts(f.path, result.size, DEFAULT_ALGORITHM, result.digest)
                except Exception as exc:
                    tried.append(f"{site}: {describe_error(exc)}")
            recorded = sorted(s for s, imp in sites.items() if (r := imp.files.get(f.path)) and r.status == "present")
            if not recorded:
                return f"{f.path}: no site holds it according to the export"
            return f"{f.path}: no readable copy (recorded on {', '.join(recorded)}; " + "; ".join(tried[:3]) + ")"

        results = list(pool.map(one, rep.files))
        errors = [r for r in results if isinstance(r, str)]
        if errors:
            return errors[0] + (f" (and {len(errors) - 1} more files)" if len(errors) > 1 else "")
        return [r for r in results if isinstance(r, FileFacts)]

    def _prepared(
        self,
        rep: ImportedRepresentation,
        key: RepresentationKey,
        facts: list[FileFacts],
        sites: Mapping[str, ImportedSite],
        report: Report,
    ) -> RepresentationImport:
        wanted: dict[str, SiteImport] = {}
        for name, imported in sites.items():
            priority = imported.priority if imported.priority is not None else DEFAULT_PRIORITY
            if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
                report.not_mapped("priority", f"outside {PRIORITY_MIN}-{PRIORITY_MAX}: clamped")
                priority = min(PRIORITY_MAX, max(PRIORITY_MIN, priority))
            wanted[name] = SiteImport(priority, imported.paused, dict(imported.files))
        summary = ", ".join(
            f"{site} {', '.join(sorted({r.status for r in imp.files.values()}))}" for site, imp in sorted(sites.items())
        )
        return RepresentationImport(key, facts, wanted, f"imported from {self.source} {rep.source_id} ({summary})")

    def _write(self, batch: list[tuple[ImportedRepresentation, RepresentationImport]], report: Report) -> None:
        if not batch:
            return
        outcomes = self.store.import_representations(self.project_id, [item for _rep, item in batch], self.actor)
        for (rep, item), outcome in zip(batch, outcomes, strict=True):
            if outcome.conflict:
                report.problem(rep.source_id, f"{rep.label}: {outcome.conflict}")
                continue
            self.counts["created" if outcome.created else "merged" if outcome.changed else "unchanged"] += 1
            if outcome.created:
                self.counts["files"] += len(item.files)
                self.counts["bytes"] += sum(x.size for x in item.files)
        batch.clear()

    def run(self, reps: Iterable[ImportedRepresentation], report: Report) -> dict[str, Any]:
        batch: list[tuple[ImportedRepresentation, RepresentationImport]] = []
        with cf.ThreadPoolExecutor(max(1, self.options.jobs), thread_name_prefix="sitesync-import") as pool:
            for rep in reps:
                self.counts["read"] += 1
                prepared = self._prepare(rep, report)
                if prepared is None:
                    continue
                key, sites = prepared
                existing = self.store.existing_files(self.project_id, key)
                if existing is not None and set(existing) == {f.path for f in rep.files}:
                    facts = [FileFacts(p, size, algo, digest) for p, (size, algo, digest) in existing.items()]
                else:
                    hashed = self._hash(rep, sites, pool)
                    if isinstance(hashed, str):
                        report.problem(rep.source_id, f"{rep.label}: {hashed}")
                        continue
                    facts = hashed
                    for f, got in zip(rep.files, facts, strict=True):
                        if f.size != got.size:
                            report.notes.append(
                                f"{rep.label}: {f.path} is {got.size} bytes where it was read, the export says "
                                f"{f.size}; the catalog takes what was read (validate the other sites)"
                            )
                for name, imported in sites.items():
                    tally = self.replicas.setdefault(name, Counter())
                    for r in imported.files.values():
                        tally[r.status] += 1
                if self.options.dry_run:
                    self.counts["would_import" if existing is None else "already_in_catalog"] += 1
                    continue
                batch.append((rep, self._prepared(rep, key, facts, sites, report)))
                if len(batch) >= WRITE_BATCH:
                    self._write(batch, report)
                self.report_progress("hash", self.counter.value, None, "bytes")
            self._write(batch, report)
        self.report_progress("hash", self.counter.value, None, "bytes", force=True)
        for name in sorted(self._foreign):
            report.notes.append(
                f"site {name} is not defined in sitesync: its records are kept as another machine's own site; "
                f"on that machine set SITESYNC_SITE_ID={name}, or define the site, or import again with --site-map {name}=SITE"
            )
        return {
            "representations": {
                "in_export": report.documents,
                "read": self.counts["read"],
                "created": self.counts["created"],
                "merged": self.counts["merged"],
                "unchanged": self.counts["unchanged"],
                "would_import": self.counts["would_import"],
                "already_in_catalog": self.counts["already_in_catalog"],
                "not_imported": len(report.problems),
            },
            "files_created": self.counts["files"],
            "bytes_created": self.counts["bytes"],
            "bytes_hashed": self.counter.value,
            "sites": {name: dict(c) for name, c in sorted(self.replicas.items())},
        }


__all__ = ["Options", "RepresentationImporter"]
