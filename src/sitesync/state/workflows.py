"""State store, workflows side: what validate and fsck read and record, the batch requests of
preferred-content rules, and the read models of ``wait`` and ``clear`` (links: ``links.py``).

Recording a copy as missing or corrupt is ``lose_copies`` (``physical.py``): optimistic (it applies
only if the replica is still the same ``present`` record that was checked, same ``present_since``,
so a transfer or re-publish that landed meanwhile is never undone); the copy is queued again where
another verified copy exists (outside its own storage: alternatives are the same storage),
otherwise it is ``missing``: the file is lost on that site. Either way it stops counting toward
``min_copies`` at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sitesync.errors import NotFoundError
from sitesync.state import schema as s
from sitesync.state.base import chunked, event
from sitesync.state.catalog import REPLICA_INSERT_COLUMNS, CatalogMixin, path_key
from sitesync.state.summaries import refresh_representations


@dataclass(frozen=True, slots=True)
class SiteFile:
    """A catalog file and its replica on one site (``status`` None: no record there)."""

    file_id: int
    representation_id: int
    project_id: int
    path: str
    size: int
    hash_algo: str
    hash: str
    status: str | None
    present_since: float | None


@dataclass(frozen=True, slots=True)
class RuleCandidate:
    """What a preferred-content rule looks at (see ``workflows.rules.Facts``)."""

    id: int
    folder: str
    product: str
    version: int
    name: str
    created_at: float


class WorkflowsMixin(CatalogMixin):
    # ------------------------------------------------------------------ validate and fsck: reading

    def files_at_paths(self, paths: Sequence[str], site: str) -> list[SiteFile]:
        """Catalog files (of every project) at these catalog paths, with their replica on ``site``."""
        f, rep, r = s.files, s.representations, s.replicas
        out: list[SiteFile] = []
        wanted = set(paths)
        with self._read() as conn:
            for part in chunked(sorted({path_key(p) for p in wanted})):
                rows = conn.execute(
                    sa.select(
                        f.c.id,
                        f.c.representation_id,
                        rep.c.project_id,
                        f.c.path,
                        f.c.size,
                        f.c.hash_algo,
                        f.c.hash,
                        r.c.status,
                        r.c.present_since,
                    )
                    .join(rep, rep.c.id == f.c.representation_id)
                    .outerjoin(r, sa.and_(r.c.file_id == f.c.id, r.c.site == site))
                    .where(f.c.path_key.in_(part))
                ).all()
                out.extend(SiteFile(*row) for row in rows if row.path in wanted)
        return out

    def max_replica_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(s.replicas.c.id), 0))).scalar_one())

    def present_on_site(self, project_id: int, site: str, after_id: int, up_to: int) -> list[Any]:
        """The site's verified copies in the project whose replica id is in (after_id, up_to]:
        rows of (replica_id, file_id, representation_id, path, size, hash_algo, hash, present_since).
        Callers walk the table in bounded id windows: each query reads one primary-key range, on
        either database, without sorting everything the site holds."""
        r, f = s.replicas, s.files
        with self._read() as conn:
            rows = conn.execute(
                sa.select(
                    r.c.id.label("replica_id"),
                    r.c.file_id,
                    r.c.representation_id,
                    f.c.path,
                    f.c.size,
                    f.c.hash_algo,
                    f.c.hash,
                    r.c.present_since,
                )
                .join(f, f.c.id == r.c.file_id)
                .where(
                    r.c.id > after_id,
                    r.c.id <= up_to,
                    r.c.project_id == project_id,
                    r.c.site == site,
                    r.c.status == s.PRESENT,
                )
                .order_by(r.c.id)
            ).all()
        return list(rows)

    def present_windows(self, project_id: int, site: str, window: int = 10_000) -> Iterator[list[Any]]:
        """Every verified copy of the project on the site (as of now), one id window at a time."""
        top = self.max_replica_id()
        for start in range(0, top, window):
            rows = self.present_on_site(project_id, site, start, min(top, start + window))
            if rows:
                yield rows

    def present_totals(self, project_id: int, site: str) -> tuple[int, int]:
        """(files, bytes) the catalog records as verified copies on the site in the project."""
        r, f = s.replicas, s.files
        with self._read() as conn:
            n, size = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(f.c.size), 0))
                .select_from(r)
                .join(f, f.c.id == r.c.file_id)
                .where(r.c.project_id == project_id, r.c.site == site, r.c.status == s.PRESENT)
            ).one()
        return int(n), int(size)

    # ------------------------------------------------------------------ validate and fsck: recording

    def register_present(
        self,
        site: str,
        alternatives: Sequence[str],
        files: Sequence[SiteFile],
        actor: str,
        how: str,
        fingerprints: dict[int, tuple[float | None, str | None]] | None = None,
    ) -> int:
        """Record copies found on ``site`` (size and hash checked by the caller) as verified, on the
        site and its alternatives, with the storage fingerprint of each (file id -> mtime, ref).
        Only records without a copy (absent, queued, failed, waiting, lost) change: a running
        transfer or removal is left alone. Returns how many files became present on ``site``."""
        if not files:
            return 0
        r, f, rep = s.replicas, s.files, s.representations
        now = time.time()
        registered = 0
        by_rep: dict[tuple[int, int], int] = {}
        touched_reps = {x.representation_id for x in files}
        with self._write() as conn:
            for part in chunked(list(files)):
                ids = [x.file_id for x in part]
                for target in [site, *alternatives]:
                    changed = conn.execute(
                        r.update()
                        .where(r.c.file_id.in_(ids), r.c.site == target, r.c.status.in_(s.NOT_HELD))
                        .values(**self._present_values(now))
                        .returning(r.c.id, r.c.file_id)
                    ).all()
                    sel = (
                        sa.select(
                            f.c.id,
                            f.c.representation_id,
                            rep.c.project_id,
                            sa.literal(target),
                            sa.literal(s.PRESENT),
                            sa.literal(s.DEFAULT_PRIORITY),
                            sa.literal(False),
                            sa.literal(0),
                            sa.literal(now),
                            sa.literal(0),
                            sa.literal(now),
                            sa.literal(now, type_=sa.Float),
                            f.c.size,
                            f.c.hash_algo + ":" + f.c.hash,
                        )
                        .join(rep, rep.c.id == f.c.representation_id)
                        .where(
                            f.c.id.in_(ids),
                            ~sa.exists().where(r.c.file_id == f.c.id, r.c.site == target),
                        )
                    )
                    inserted = conn.execute(
                        r.insert().from_select(REPLICA_INSERT_COLUMNS, sel).returning(r.c.id, r.c.file_id)
                    ).all()
                    if fingerprints:
                        self._record_fingerprints(
                            conn,
                            [(rid, *fingerprints[fid]) for rid, fid in [*changed, *inserted] if fid in fingerprints],
                        )
                    if target == site:
                        done = {fid for _rid, fid in [*changed, *inserted]}
                        registered += len(done)
                        for x in part:
                            if x.file_id in done:
                                key = (x.project_id, x.representation_id)
                                by_rep[key] = by_rep.get(key, 0) + 1
            self._events(
                conn,
                (
                    event(
                        "registered",
                        actor,
                        project_id=pid,
                        representation_id=rid,
                        site=site,
                        message=f"{n} files found on {site} and registered without copying ({how})",
                    )
                    for (pid, rid), n in sorted(by_rep.items())
                ),
            )
            self._settle_sources(conn, [x.file_id for x in files], now)
            refresh_representations(conn, touched_reps)
        return registered

    # ------------------------------------------------------------------ preferred content

    def max_representation_id(self, project_id: int) -> int:
        rep = s.representations
        with self._read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(rep.c.id), 0)).where(rep.c.project_id == project_id)
                ).scalar_one()
            )

    def rule_candidates(self, project_id: int, after_id: int, limit: int) -> list[RuleCandidate]:
        """A page of the project's representations in publish order (``ix_representations_project_id_id``)."""
        rep = s.representations
        with self._read() as conn:
            rows = conn.execute(
                sa.select(rep.c.id, rep.c.folder, rep.c.product, rep.c.version, rep.c.name, rep.c.created_at)
                .where(rep.c.project_id == project_id, rep.c.id > after_id)
                .order_by(rep.c.id)
                .limit(limit)
            ).all()
        return [RuleCandidate(*row) for row in rows]

    def count_representations(self, project_id: int, after_id: int, up_to: int) -> int:
        """How many of the project's representations have an id in (after_id, up_to]."""
        rep = s.representations
        with self._read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(rep)
                    .where(rep.c.project_id == project_id, rep.c.id > after_id, rep.c.id <= up_to)
                ).scalar_one()
            )

    def representation_ids(self, project_id: int, after_id: int, up_to: int) -> list[int]:
        rep = s.representations
        with self._read() as conn:
            return list(
                conn.execute(
                    sa.select(rep.c.id)
                    .where(rep.c.project_id == project_id, rep.c.id > after_id, rep.c.id <= up_to)
                    .order_by(rep.c.id)
                ).scalars()
            )

    def rule_candidates_by_ids(self, rep_ids: Sequence[int]) -> list[RuleCandidate]:
        rep = s.representations
        out: list[RuleCandidate] = []
        with self._read() as conn:
            for part in chunked(list(rep_ids)):
                out.extend(
                    RuleCandidate(*row)
                    for row in conn.execute(
                        sa.select(rep.c.id, rep.c.folder, rep.c.product, rep.c.version, rep.c.name, rep.c.created_at)
                        .where(rep.c.id.in_(part))
                        .order_by(rep.c.id)
                    )
                )
        return out

    def latest_versions(self, project_id: int, products: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The highest numbered (non-hero) version of each (folder, product)."""
        rep = s.representations
        pairs = set(products)
        out: dict[tuple[str, str], int] = {}
        if not pairs:
            return out
        folders = sorted({p[0] for p in pairs})
        with self._read() as conn:
            for part in chunked(folders, 500):
                names = sorted({p[1] for p in pairs if p[0] in set(part)})
                for row in conn.execute(
                    sa.select(rep.c.folder, rep.c.product, sa.func.max(rep.c.version).label("v"))
                    .where(
                        rep.c.project_id == project_id,
                        rep.c.folder.in_(list(part)),
                        rep.c.product.in_(names),
                        rep.c.version >= 0,
                    )
                    .group_by(rep.c.folder, rep.c.product)
                ):
                    if (row.folder, row.product) in pairs:
                        out[(row.folder, row.product)] = int(row.v)
        return out

    def wanted_on_site(self, rep_ids: Sequence[int], site: str) -> set[int]:
        t = s.representation_sites
        out: set[int] = set()
        with self._read() as conn:
            for part in chunked(list(rep_ids)):
                out.update(
                    conn.execute(
                        sa.select(t.c.representation_id).where(t.c.representation_id.in_(part), t.c.site == site)
                    ).scalars()
                )
        return out

    def want_many(
        self,
        rep_ids: Sequence[int],
        site: str,
        actor: str,
        *,
        priority: int,
        alternatives: Sequence[str] = (),
        reason: str,
    ) -> list[int]:
        """Want each representation on ``site`` unless it already is: queue its missing files.
        Unlike ``want`` this never retries failed files, so running it again and again is harmless.
        Returns the representations newly wanted."""
        t, rep = s.representation_sites, s.representations
        now = time.time()
        added: list[int] = []
        with self._write() as conn:
            for part in chunked(list(rep_ids)):
                already = set(
                    conn.execute(
                        sa.select(t.c.representation_id).where(t.c.representation_id.in_(part), t.c.site == site)
                    ).scalars()
                )
                projects = {
                    row.id: row.project_id
                    for row in conn.execute(sa.select(rep.c.id, rep.c.project_id).where(rep.c.id.in_(part)))
                }
                for rid in part:
                    if rid in already or rid not in projects:
                        continue
                    prio, paused = self._ensure_rep_site(conn, rid, site, actor, now, priority)
                    self._queue_missing(conn, rid, projects[rid], site, prio, paused, now)
                    self._adopt_alternatives(conn, rid, site, alternatives, now)
                    added.append(rid)
                if added:
                    self._settle_sources(conn, None, now, rep_ids=[x for x in part if x in set(added)])
                self._events(
                    conn,
                    (
                        event(
                            "request",
                            actor,
                            project_id=projects[rid],
                            representation_id=rid,
                            site=site,
                            message=f"wanted on {site}: {reason}"[:4000],
                        )
                        for rid in part
                        if rid in added
                    ),
                )
            refresh_representations(conn, added)
        return added

    # ------------------------------------------------------------------ wait and clear

    def site_progress(self, rep_ids: Sequence[int], site: str) -> dict[int, dict[str, Any]]:
        """Per representation: its file count and size, and its files' status counts and verified
        bytes on ``site``, plus how many of its files no site holds a verified copy of (and none
        is being copied): those can never arrive."""
        r, f, rep = s.replicas, s.files, s.representations
        out: dict[int, dict[str, Any]] = {}
        with self._read() as conn:
            for part in chunked(list(rep_ids)):
                for row in conn.execute(
                    sa.select(rep.c.id, rep.c.file_count, rep.c.total_size).where(rep.c.id.in_(part))
                ):
                    out[row.id] = {
                        "files": row.file_count,
                        "size": row.total_size,
                        "counts": {},
                        "bytes_present": 0,
                        "without_copy": 0,
                        "errors": [],
                    }
                for row in conn.execute(
                    sa.select(
                        r.c.representation_id,
                        r.c.status,
                        sa.func.count().label("n"),
                        sa.func.sum(f.c.size).label("size"),
                        sa.func.max(r.c.last_error).label("error"),
                    )
                    .join(f, f.c.id == r.c.file_id)
                    .where(r.c.representation_id.in_(part), r.c.site == site)
                    .group_by(r.c.representation_id, r.c.status)
                ):
                    entry = out[row.representation_id]
                    entry["counts"][row.status] = row.n
                    if row.status == s.PRESENT:
                        entry["bytes_present"] = int(row.size or 0)
                    if row.status == s.FAILED and row.error:
                        entry["errors"].append(row.error)
                alive = sa.exists().where(r.c.file_id == f.c.id, r.c.status.in_((s.PRESENT, s.IN_PROGRESS)))
                for row in conn.execute(
                    sa.select(f.c.representation_id, sa.func.count().label("n"))
                    .where(f.c.representation_id.in_(part), ~alive)
                    .group_by(f.c.representation_id)
                ):
                    out[row.representation_id]["without_copy"] = row.n
        missing = [i for i in rep_ids if i not in out]
        if missing:
            raise NotFoundError(f"unknown representation {missing[0]}; see `sitesync status PROJECT`")
        return out

    def representations_on_site(self, project_id: int, site: str) -> list[int]:
        """Representations of the project with any record (copy or request) on ``site``."""
        r, t = s.replicas, s.representation_sites
        with self._read() as conn:
            ids = set(
                conn.execute(
                    sa.select(r.c.representation_id).where(r.c.project_id == project_id, r.c.site == site).distinct()
                ).scalars()
            )
            ids.update(
                conn.execute(
                    sa.select(t.c.representation_id)
                    .join(s.representations, s.representations.c.id == t.c.representation_id)
                    .where(s.representations.c.project_id == project_id, t.c.site == site)
                ).scalars()
            )
        return sorted(ids)


__all__ = ["RuleCandidate", "SiteFile", "WorkflowsMixin"]
