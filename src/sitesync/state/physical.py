"""State store, physical side: the catalog kept true to what the storage holds.

* ``storage_markers``: the marker id last seen at each site root location (``identity/storage.py``).
* ``lose_copies``: copies found gone or changed (by validate, fsck, a failed source read or a
  removal) stop being verified copies at once, on their site and its alternatives (one storage):
  each is queued again where another storage holds a verified copy, otherwise it is ``missing``
  (the file is lost on that site), with the reason recorded in the replica and the history.
* ``settle_sources``: a wanted file no site holds a verified copy of waits as ``no_source``
  instead of ``queued`` (attempts untouched), and goes back to ``queued`` (a ``missing`` one too) as
  soon as some site holds it again. Every transaction that adds or takes away verified copies, or
  queues files, ends by settling the files it touched.
* ``holders``: where the catalog says verified copies of files are, with what was last verified
  there (a removal's drop proof checks them at the storage).
* ``locations_taken``: which catalog files already own given catalog paths (publish refuses a
  second record of one physical file).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import xxhash
from sqlalchemy.engine import Connection

from sitesync.state import schema as s
from sitesync.state.base import StoreBase, chunked, event
from sitesync.state.database import upsert_insert

Observed = tuple[int, float | None, str | None]  # a stored file as a check saw it: size, mtime, ref


def location_key(location: str) -> str:
    return xxhash.xxh3_128_hexdigest(location.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class Holder:
    """A verified copy the catalog records: its site and what was last verified there."""

    file_id: int
    site: str
    seen_size: int | None
    seen_hash: str | None
    seen_mtime: float | None
    provider_ref: str | None


@dataclass(frozen=True, slots=True)
class Lost:
    """Outcome of ``lose_copies``: file ids queued again (another storage holds them) and those
    now ``missing`` on the site (no other verified copy: lost there)."""

    requeued: tuple[int, ...]
    missing: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TakenPath:
    """A catalog file at a catalog path, and its representation."""

    path: str
    file_id: int
    representation_id: int
    project_id: int
    label: str  # folder/product/version/name


_FINGERPRINTS_PG = sa.text(
    "UPDATE replicas AS r SET seen_mtime = v.m, provider_ref = v.ref FROM unnest("
    "CAST(:ids AS integer[]), CAST(:mtimes AS double precision[]), CAST(:refs AS varchar[])) AS v(id, m, ref) "
    "WHERE r.id = v.id"
)
_FINGERPRINTS_SQLITE = sa.text(
    "UPDATE replicas SET seen_mtime = json_extract(v.value, '$[1]'), provider_ref = json_extract(v.value, '$[2]') "
    "FROM json_each(:rows) AS v WHERE replicas.id = json_extract(v.value, '$[0]')"
)


class PhysicalMixin(StoreBase):
    # ------------------------------------------------------------------ storage markers

    def storage_marker(self, site: str, location: str) -> str | None:
        t = s.storage_markers
        with self._read() as conn:
            return conn.execute(
                sa.select(t.c.marker_id).where(t.c.site == site, t.c.location_key == location_key(location))
            ).scalar_one_or_none()

    def record_storage_marker(
        self, site: str, location: str, marker_id: str, actor: str, *, replace: bool = True
    ) -> str:
        """Remember the marker id of a site root location and return the id recorded now.
        ``replace=False`` (first use): an id another process recorded meanwhile stays, and is returned."""
        t = s.storage_markers
        key = location_key(location)
        with self._write() as conn:
            where = sa.and_(t.c.site == site, t.c.location_key == key)
            q = sa.select(t.c.marker_id).where(where)
            previous = conn.execute(q.with_for_update() if self.is_postgres else q).scalar_one_or_none()
            if previous == marker_id or (previous is not None and not replace):
                return previous
            values = {"marker_id": marker_id, "location": location, "recorded_at": time.time(), "recorded_by": actor}
            if previous is None:
                insert = upsert_insert("postgresql" if self.is_postgres else "sqlite", t)
                inserted = conn.execute(
                    insert.values(site=site, location_key=key, **values)
                    .on_conflict_do_nothing()
                    .returning(t.c.marker_id)
                ).scalar_one_or_none()
                if inserted is None:  # another process inserted it between our look and our insert
                    winner = conn.execute(q).scalar_one()
                    if not replace:
                        return str(winner)
                    conn.execute(t.update().where(where).values(**values))
            else:
                conn.execute(t.update().where(where).values(**values))
            self._events(
                conn,
                [
                    event(
                        "storage_marked",
                        actor,
                        site=site,
                        message=f"root {location}: marker {marker_id}"
                        + (f" (was {previous})" if previous else " (first use)"),
                    )
                ],
            )
            return marker_id

    def present_sample(self, project_id: int, site: str, roots: Sequence[str], limit: int = 20) -> list[str]:
        """Catalog paths of up to ``limit`` verified copies of the project on the site below the
        named roots (the first and the most recent ones)."""
        r, f = s.replicas, s.files
        prefixes = [f"{{root[{root}]}}/" for root in roots]
        out: list[str] = []
        with self._read() as conn:
            for order in (r.c.id.asc(), r.c.id.desc()):
                q = (
                    sa.select(f.c.path)
                    .join(f, f.c.id == r.c.file_id)
                    .where(r.c.project_id == project_id, r.c.site == site, r.c.status == s.PRESENT)
                    .where(sa.or_(*(f.c.path.startswith(p, autoescape=True) for p in prefixes)))
                    .order_by(order)
                    .limit(max(1, limit // 2))
                )
                out += [p for p in conn.execute(q).scalars() if p not in out]
        return out

    # ------------------------------------------------------------------ where the verified copies are

    def holders(self, file_ids: Sequence[int], exclude_sites: Collection[str] = ()) -> dict[int, list[Holder]]:
        """The verified copies of these files, outside ``exclude_sites``."""
        r = s.replicas
        out: dict[int, list[Holder]] = {}
        with self._read() as conn:
            for part in chunked(list(file_ids)):
                q = sa.select(
                    r.c.file_id, r.c.site, r.c.seen_size, r.c.seen_hash, r.c.seen_mtime, r.c.provider_ref
                ).where(r.c.file_id.in_(part), r.c.status == s.PRESENT)
                if exclude_sites:
                    q = q.where(r.c.site.notin_(list(exclude_sites)))
                for row in conn.execute(q):
                    out.setdefault(row.file_id, []).append(Holder(*row))
        return out

    def replica_seen(self, file_id: int, site: str) -> Holder | None:
        """The replica of a file on a site, with what was last verified there (None: no record)."""
        r = s.replicas
        with self._read() as conn:
            row = conn.execute(
                sa.select(r.c.file_id, r.c.site, r.c.seen_size, r.c.seen_hash, r.c.seen_mtime, r.c.provider_ref).where(
                    r.c.file_id == file_id, r.c.site == site
                )
            ).first()
        return Holder(*row) if row else None

    def locations_taken(self, templates: Sequence[str], project_ids: Collection[int] | None = None) -> list[TakenPath]:
        """Catalog files at these catalog paths (of ``project_ids``, or any project)."""
        from sitesync.state.catalog import path_key
        from sitesync.state.records import version_label

        f, rep = s.files, s.representations
        wanted = set(templates)
        out: list[TakenPath] = []
        with self._read() as conn:
            for part in chunked(sorted({path_key(t) for t in wanted})):
                q = (
                    sa.select(
                        f.c.path,
                        f.c.id,
                        f.c.representation_id,
                        rep.c.project_id,
                        rep.c.folder,
                        rep.c.product,
                        rep.c.version,
                        rep.c.name,
                    )
                    .join(rep, rep.c.id == f.c.representation_id)
                    .where(f.c.path_key.in_(part))
                )
                if project_ids is not None:
                    q = q.where(rep.c.project_id.in_(list(project_ids)))
                for row in conn.execute(q):
                    if row.path in wanted:
                        label = f"{row.folder}/{row.product}/{version_label(row.version)}/{row.name}"
                        out.append(TakenPath(row.path, row.id, row.representation_id, row.project_id, label))
        return out

    # ------------------------------------------------------------------ copies found gone or changed

    def lose_copies(
        self,
        site: str,
        alternatives: Sequence[str],
        lost: Iterable[tuple[int, float | None, str]],
        actor: str,
        kind: str,
        *,
        check_since: bool = True,
        observed: Mapping[int, Observed] | None = None,
    ) -> Lost:
        """The site's copies of these files (file id, ``present_since`` when checked, what is
        wrong) are gone or damaged. ``check_since``: only a record still the same ``present`` one
        (same ``present_since``) changes, so a copy that landed meanwhile is never undone.
        ``observed``: file id -> (size, mtime, ref) of the damaged file the check saw there; it
        becomes what sitesync last saw at that location, so the re-fetch replaces exactly that
        file (never one written there afterwards). Without it nothing there may be replaced."""
        with self._write() as conn:
            result, reps = self._lose_copies(
                conn, site, alternatives, lost, actor, kind, check_since=check_since, observed=observed
            )
            self._refresh_files_sites(conn, reps)
        return result

    def _lose_copies(
        self,
        conn: Connection,
        site: str,
        alternatives: Sequence[str],
        lost: Iterable[tuple[int, float | None, str]],
        actor: str,
        kind: str,
        *,
        check_since: bool = True,
        observed: Mapping[int, Observed] | None = None,
    ) -> tuple[Lost, set[int]]:
        r = s.replicas
        now = time.time()
        group = [site, *alternatives]
        checked_at = {fid: since for fid, since, _ in lost}
        reasons = {fid: reason for fid, _, reason in lost}
        requeued: list[int] = []
        missing: list[int] = []
        touched_reps: set[int] = set()
        for part in chunked(list(checked_at)):
            q = sa.select(r.c.id, r.c.file_id, r.c.representation_id, r.c.project_id, r.c.present_since).where(
                r.c.file_id.in_(part), r.c.site == site, r.c.status == s.PRESENT
            )
            if self.is_postgres:
                q = q.order_by(r.c.id).with_for_update()
            rows = [row for row in conn.execute(q) if not check_since or row.present_since == checked_at[row.file_id]]
            if not rows:
                continue
            touched_reps.update(row.representation_id for row in rows)
            fids = [row.file_id for row in rows]
            # a copy being removed is still there, and is only deleted if enough others are proven
            elsewhere = set(
                conn.execute(
                    sa.select(r.c.file_id)
                    .where(r.c.file_id.in_(fids), r.c.site.notin_(group), r.c.status.in_((s.PRESENT, s.REMOVING)))
                    .distinct()
                ).scalars()
            )
            messages: dict[int, str] = {}
            for row in rows:
                # what sitesync saw there now (the damaged file, or nothing): a re-fetch replaces
                # exactly that, never a file someone puts there afterwards
                seen = (observed or {}).get(row.file_id)
                values = {
                    "seen_size": seen[0] if seen else None,
                    "seen_hash": None,
                    "seen_mtime": seen[1] if seen else None,
                    "provider_ref": seen[2] if seen else None,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "present_since": None,
                    "bytes_done": 0,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "updated_at": now,
                }
                if row.file_id in elsewhere:
                    message = f"{reasons[row.file_id]}; queued again from another verified copy"
                    values.update(status=s.QUEUED, last_error=message[:4000], last_failed_at=None)
                    requeued.append(row.file_id)
                else:
                    message = (
                        f"{reasons[row.file_id]}; no other site holds a verified copy: the file is lost on "
                        f"{site}. Restore it there and run `sitesync validate {site}`, or publish it again"
                    )
                    values.update(status=s.MISSING, last_error=message[:4000], last_failed_at=now)
                    missing.append(row.file_id)
                messages[row.file_id] = message
                conn.execute(
                    r.update()
                    .where(r.c.file_id == row.file_id, r.c.site.in_(group), r.c.status == s.PRESENT)
                    .values(**values)
                )
            self._events(
                conn,
                (
                    event(
                        kind,
                        actor,
                        project_id=row.project_id,
                        representation_id=row.representation_id,
                        file_id=row.file_id,
                        site=site,
                        message=messages[row.file_id][:4000],
                    )
                    for row in rows
                ),
            )
            touched_reps.update(rep for rep, _site in self._settle_sources(conn, fids, now, lost_on=site))
        return Lost(tuple(requeued), tuple(missing)), touched_reps

    def remember_fingerprints(
        self, site: str, alternatives: Sequence[str], seen: Iterable[tuple[int, float | None, Observed]]
    ) -> None:
        """Copies a check verified (file id, ``present_since`` when checked, (size, mtime, ref) of
        the stored file): their storage fingerprint is recorded, so later checks (a removal, a
        replacement) need not read them again. Only records still the same ``present`` one change."""
        r = s.replicas
        rows = [
            {"b_fid": fid, "b_since": since, "b_mtime": obs[1], "b_ref": obs[2]}
            for fid, since, obs in seen
            if since is not None and (obs[1] is not None or obs[2] is not None)
        ]
        if not rows:
            return
        with self._write() as conn:
            for target in (site, *alternatives):
                conn.execute(
                    r.update()
                    .where(
                        r.c.file_id == sa.bindparam("b_fid"),
                        r.c.site == target,
                        r.c.status == s.PRESENT,
                        r.c.present_since == sa.bindparam("b_since"),
                    )
                    .values(seen_mtime=sa.bindparam("b_mtime"), provider_ref=sa.bindparam("b_ref"))
                    .execution_options(synchronize_session=False),
                    rows,
                )

    # ------------------------------------------------------------------ files without a source

    def _settle_sources(
        self,
        conn: Connection,
        file_ids: Sequence[int] | None,
        now: float,
        *,
        rep_ids: Sequence[int] | None = None,
        lost_on: str | None = None,
        gained_only: bool = False,
    ) -> set[tuple[int, str]]:
        """Queued files no site holds a verified copy of wait as ``no_source`` (attempts kept);
        ``no_source`` and ``missing`` files some site holds again are queued. By file ids, or by
        representation ids. ``gained_only``: the files only gained verified copies (transfers
        landed), so only the second half can apply. Returns the (representation, site) pairs that
        changed (their summaries are the caller's to refresh)."""
        r = s.replicas
        held = r.alias("held")
        holder = sa.exists().where(held.c.file_id == r.c.file_id, held.c.status == s.PRESENT)
        scopes: list[Any] = []
        if file_ids is not None:
            scopes += [r.c.file_id.in_(list(part)) for part in chunked(list(file_ids))]
        if rep_ids is not None:
            scopes += [r.c.representation_id.in_(list(part)) for part in chunked(list(rep_ids))]
        why = (
            f"no source: the only verified copy (on {lost_on}) is lost; waiting until a site holds the file again"
            if lost_on
            else "no source: no site holds a verified copy of this file; waiting until one does"
        )
        if gained_only and file_ids is not None and not self._waiting_in(conn, file_ids):
            return set()  # the usual case: nothing waits for these files
        changed: set[tuple[int, str]] = set()
        wait = (
            r.update().where(r.c.status == s.QUEUED, ~holder).values(status=s.NO_SOURCE, last_error=why, updated_at=now)
        )
        wake = (
            r.update()
            .where(r.c.status.in_((s.NO_SOURCE, s.MISSING)), holder)
            .values(status=s.QUEUED, attempts=0, next_attempt_at=now, updated_at=now)
        )
        for scope in scopes:
            for stmt in (wake,) if gained_only else (wait, wake):
                stmt = stmt.where(scope)
                changed.update(
                    (row[0], row[1]) for row in conn.execute(stmt.returning(r.c.representation_id, r.c.site))
                )
        return changed

    @staticmethod
    def _waiting_in(conn: Connection, file_ids: Sequence[int]) -> bool:
        """Whether any replica of the representations of these files waits for a source or is lost,
        read from the summaries (one primary-key probe per representation) instead of the replicas."""
        f, t = s.files, s.site_states
        for part in chunked(list(file_ids)):
            reps = sa.select(f.c.representation_id).where(f.c.id.in_(list(part))).distinct().scalar_subquery()
            waiting = conn.execute(
                sa.select(t.c.representation_id)
                .where(t.c.representation_id.in_(reps), (t.c.files_no_source > 0) | (t.c.files_missing > 0))
                .limit(1)
            ).first()
            if waiting is not None:
                return True
        return False

    def _refresh_files_sites(self, conn: Connection, rep_ids: Iterable[int]) -> None:
        """Summaries of every site of these representations (a settled source touches any site)."""
        from sitesync.state.summaries import refresh_representations

        refresh_representations(conn, set(rep_ids))

    # ------------------------------------------------------------------ recording fingerprints

    @staticmethod
    def _record_fingerprints(conn: Connection, rows: Sequence[tuple[int, float | None, str | None]]) -> None:
        """The storage's fingerprint (modification time, provider ref) of newly verified copies:
        (replica id, mtime, ref). One statement for the batch (``UPDATE ... FROM`` a list passed as
        one parameter: unnest on PostgreSQL, json_each on SQLite)."""
        rows = [row for row in rows if row[1] is not None or row[2] is not None]
        if not rows:
            return
        if conn.dialect.name == "postgresql":
            conn.execute(
                _FINGERPRINTS_PG,
                {"ids": [r[0] for r in rows], "mtimes": [r[1] for r in rows], "refs": [r[2] for r in rows]},
            )
        else:
            conn.execute(_FINGERPRINTS_SQLITE, {"rows": json.dumps(rows)})


__all__ = ["Holder", "Lost", "PhysicalMixin", "TakenPath", "location_key"]
